//! The running relay: [`Relay::spawn`] binds the UDP socket, serves QUIC, and
//! [`Relay::shutdown`] drains it. Connection handling lives in `net/`.

use crate::config::{ListenTcp, RelayConfig, UDP_BUFFER_BYTES};
use crate::core_tasks::{self, CoreTask, CoreTaskFailed, FaultHook};
use crate::fleet::{FleetError, FleetMember, PeerDirectory};
use crate::net::{self, Shared};
use crate::presence::{MemoryPresence, Presence};
use crate::state::{StateDir, StateError};
use crate::store::{StoreError, StoreHandle};
use crate::tls;
use parking_lot::Mutex;
use proto::handshake::MAX_CLOCK_SKEW_MS;
use proto::message::CloseReason;
use proto::replay::{DEFAULT_REPLAY_CAPACITY, ReplayWindow};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Errors starting the relay.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The state directory is missing or broken.
    #[error(transparent)]
    State(#[from] StateError),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The UDP socket could not be bound.
    #[error(
        "cannot bind UDP {addr}: {source} (is another relay running, or is the port below 1024 without CAP_NET_BIND_SERVICE?)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TCP listener (`listen_tcp`) could not be bound.
    #[error(
        "cannot bind TCP {addr}: {source} (is another program using it, or is the port below 1024 without CAP_NET_BIND_SERVICE? set listen_tcp to another address, or to \"off\")"
    )]
    BindTcp {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The password-check threads could not be started.
    #[error("cannot start the password-check threads: {0}")]
    PasswordWorkers(std::io::Error),
    /// This relay cannot join its fleet (`[fleet]` in relay.toml).
    #[error(transparent)]
    Fleet(#[from] FleetError),
}

/// Why [`run`] ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The relay could not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A core task kept failing, so the relay stopped.
    #[error(transparent)]
    CoreTask(#[from] CoreTaskFailed),
    /// This relay was retired from its fleet (or its registration removed) while it ran, so
    /// it stopped (its agents reconnect to the other relays).
    #[error(
        "relay {0:?} was retired from the fleet (or its registration removed), so it stopped and its agents moved to the other relays; to bring it back run `cm-relay cluster add --id {0} --peer-addr HOST:7444`"
    )]
    RemovedFromFleet(String),
}

/// How the core-task supervisor ended.
type CoreOutcome = JoinHandle<Result<(), CoreTaskFailed>>;

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    local_addr: SocketAddr,
    pin: String,
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    /// The endpoint on the TCP listener and its address (`None`: no TCP path).
    tcp: Option<(quinn::Endpoint, SocketAddr)>,
    /// The supervisor of the core tasks (accept loop, sweeper, queue); `None` once it ended.
    core: Option<CoreOutcome>,
    faults: FaultHook,
    /// This relay's part in its fleet (`None`: the single relay).
    fleet: Option<FleetMember<quinn::Connection>>,
}

/// The relay's core tasks, each rebuilt from `shared` on a restart.
fn core_tasks(
    shared: &Arc<Shared>,
    endpoint: &quinn::Endpoint,
    tcp_endpoint: Option<&quinn::Endpoint>,
) -> Vec<CoreTask> {
    let (s, e) = (Arc::clone(shared), endpoint.clone());
    let accept = CoreTask {
        name: "accept",
        factory: Box::new(move || Box::pin(net::endpoint::accept_loop(e.clone(), Arc::clone(&s)))),
    };
    let accept_tcp = tcp_endpoint.map(|e| {
        let (s, e) = (Arc::clone(shared), e.clone());
        CoreTask {
            name: "accept-tcp",
            factory: Box::new(move || {
                Box::pin(net::endpoint::accept_loop(e.clone(), Arc::clone(&s)))
            }),
        }
    });
    let s = Arc::clone(shared);
    let sweeper = CoreTask {
        name: "sweeper",
        factory: Box::new(move || Box::pin(net::sweeper::run(Arc::clone(&s)))),
    };
    let s = Arc::clone(shared);
    let queue = CoreTask {
        name: "queue",
        factory: Box::new(move || Box::pin(net::queue::run(Arc::clone(&s)))),
    };
    let s = Arc::clone(shared);
    let notify = CoreTask {
        name: "notify",
        factory: Box::new(move || Box::pin(net::notify_ops::run(Arc::clone(&s)))),
    };
    [accept, sweeper, queue, notify]
        .into_iter()
        .chain(accept_tcp)
        .collect()
}

/// Binds the TCP listener (QUIC tunnelled in TLS over TCP, issue #21) and its quinn endpoint,
/// with `quic`'s server configuration (tunnel transport settings). `None` when `listen_tcp` is
/// off, or when its default (the UDP address) cannot be bound: then the relay runs on UDP
/// alone and says so; an explicit address that cannot be bound is an error.
async fn bind_tcp_endpoint(
    config: &RelayConfig,
    udp_addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    quic: &quinn::ServerConfig,
) -> Result<Option<(quinn::Endpoint, SocketAddr)>, SpawnError> {
    // The default follows the bound UDP address (its port too when `listen` asked for port 0).
    let (addr, explicit) = match config.listen_tcp {
        ListenTcp::Off => return Ok(None),
        ListenTcp::SameAsUdp if config.listen.port() == 0 => (config.listen, false),
        ListenTcp::SameAsUdp => (udp_addr, false),
        ListenTcp::At(addr) => (addr, true),
    };
    let bind_err = |source| SpawnError::BindTcp { addr, source };
    let (socket, local) = match cm_client::tunnel::bind_tunnel_listener(
        addr,
        tls,
        config.tcp_limits,
    )
    .await
    {
        Ok(bound) => bound,
        Err(source) if explicit => return Err(bind_err(source)),
        Err(source) => {
            tracing::warn!(
                "{}; the relay runs without its TCP path, so clients on networks that drop UDP cannot reach it",
                bind_err(source)
            );
            return Ok(None);
        }
    };
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        cm_client::tunnel::config::endpoint_config(),
        Some(tls::tunnel_server_config(quic, config.idle_timeout)),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(bind_err)?;
    Ok(Some((endpoint, local)))
}

fn bind_socket(addr: SocketAddr) -> Result<std::net::UdpSocket, SpawnError> {
    let bind_err = |source| SpawnError::Bind { addr, source };
    let socket = std::net::UdpSocket::bind(addr).map_err(bind_err)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into()).map_err(bind_err)?;
    // Larger buffers stop the kernel from dropping bursts (see docs/performance.md); failure
    // only costs throughput, so it is logged, not fatal.
    if let Err(e) = state.set_send_buffer_size((&socket).into(), UDP_BUFFER_BYTES) {
        tracing::warn!(error = %e, "could not raise the UDP send buffer");
    }
    if let Err(e) = state.set_recv_buffer_size((&socket).into(), UDP_BUFFER_BYTES) {
        tracing::warn!(error = %e, "could not raise the UDP receive buffer");
    }
    tracing::info!(
        recv_buffer = state.recv_buffer_size((&socket).into()).unwrap_or(0),
        max_gso_segments = state.max_gso_segments(),
        gro_segments = state.gro_segments(),
        "udp socket ready"
    );
    Ok(socket)
}

/// Binds the relay-to-relay endpoint (`[fleet] peer_listen`, this relay's peer identity) and
/// starts serving and dialling peers. Nothing to do without a peer directory.
fn start_peer_endpoint(
    shared: &Arc<Shared>,
    fleet: &crate::fleet::FleetConfig,
) -> Result<(), SpawnError> {
    let Some(directory) = shared.peers.clone() else {
        return Ok(());
    };
    let dir = StateDir::new(&shared.config.state_dir);
    let (certs, key, pin) = crate::fleet::identity::load(&dir)?;
    let identity = crate::fleet::peer_tls::PeerIdentity { certs, key };
    let idle = crate::fleet::peer_tls::PEER_IDLE_TIMEOUT;
    let server_config =
        crate::fleet::peer_tls::server_config(identity.clone(), Arc::clone(&directory), idle)?;
    let addr = fleet.peer_listen;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config),
        bind_socket(addr)?,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| SpawnError::Bind { addr, source })?;
    let pool = crate::fleet::peer_pool::PeerPool::new(endpoint.clone(), identity, directory, idle);
    net::peer_streams::start(shared, endpoint, pool);
    tracing::info!(id = %fleet.id, %addr, %pin, "relay-to-relay endpoint listening");
    Ok(())
}

/// Joins the fleet when `[fleet]` is set (blocking work, off the runtime's threads).
async fn join_fleet(
    config: &RelayConfig,
    store: &StoreHandle,
    sweep_now: &Arc<tokio::sync::Notify>,
    notifier: &Arc<crate::notify::Notifier>,
) -> Result<Option<FleetMember<quinn::Connection>>, SpawnError> {
    let Some(fleet) = config.fleet.clone() else {
        return Ok(None);
    };
    let crate::config::StoreConfig::Postgres(pg) = config.store.clone() else {
        return Err(FleetError::NeedsPostgres.into());
    };
    let dir = StateDir::new(&config.state_dir);
    let (timeout, sweep, grants) = (
        config.heartbeat_timeout,
        Arc::clone(sweep_now),
        store.clone(),
    );
    // A user's TUI on another relay shows a session: hold back notifications about it here.
    let notifier = Arc::clone(notifier);
    let focus = Box::new(move |f: crate::fleet::notify::FocusNotice| {
        tracing::debug!(user = %f.user, host = %f.host, session = %f.session, "focus from the fleet");
        notifier.focus(
            &f.user,
            &f.host,
            &f.workspace,
            &f.session,
            crate::time::now_ms(),
        );
    });
    let member = tokio::task::spawn_blocking(move || {
        FleetMember::start(
            &pg,
            &fleet,
            &dir,
            timeout,
            sweep,
            Box::new(move || grants.grants_changed_elsewhere()),
            focus,
        )
    })
    .await
    .map_err(|e| StateError::from(StoreError::Task(e.to_string())))??;
    Ok(Some(member))
}

impl Relay {
    /// Loads the state directory, binds, and starts serving.
    ///
    /// # Errors
    /// Missing state, bad TLS material, or a port that cannot be bound.
    pub async fn spawn(config: RelayConfig) -> Result<Self, SpawnError> {
        Self::spawn_with_peers(config, None).await
    }

    /// [`Self::spawn`] for a relay of a fleet whose other relays `peers` describes; with
    /// `[fleet]` in `config` it also serves and dials relay-to-relay streams.
    ///
    /// # Errors
    /// As [`Self::spawn`], or a missing peer identity or unbindable `peer_listen`.
    pub async fn spawn_with_peers(
        config: RelayConfig,
        peers: Option<Arc<dyn crate::fleet::PeerDirectory>>,
    ) -> Result<Self, SpawnError> {
        Self::start(config, peers, Arc::new(crate::tamper::NoTamper)).await
    }

    /// TEST-ONLY HOOKS: [`Self::spawn`] for a relay that plays a compromised one through
    /// `tamper` (issue #20's malicious-relay harness: rewritten or replayed headers, withheld
    /// revocations, forged trust bundles, a copy of every forwarded byte). Nothing in
    /// `relay.toml` or the CLI reaches this; a production relay always runs
    /// [`NoTamper`](crate::tamper::NoTamper).
    ///
    /// # Errors
    /// As [`Self::spawn`].
    pub async fn spawn_with_tamper(
        config: RelayConfig,
        tamper: Arc<dyn crate::tamper::Tamper>,
    ) -> Result<Self, SpawnError> {
        Self::start(config, None, tamper).await
    }

    async fn start(
        config: RelayConfig,
        peers: Option<Arc<dyn crate::fleet::PeerDirectory>>,
        tamper: Arc<dyn crate::tamper::Tamper>,
    ) -> Result<Self, SpawnError> {
        let dir = StateDir::new(&config.state_dir).with_store(config.store.clone());
        let (certs, key, pin) = dir.load_tls()?;
        // Opening connects (PostgreSQL) and migrates: blocking work, off the runtime's threads.
        let backend = tokio::task::spawn_blocking(move || dir.open_backend())
            .await
            .map_err(|e| StateError::from(StoreError::Task(e.to_string())))??;
        let store = StoreHandle::with_backend(backend);
        let sweep_now = Arc::new(tokio::sync::Notify::new());
        let notifier = Arc::new(crate::notify::Notifier::new(
            crate::notify::policy::PolicyConfig::default(),
            crate::notify::OFFLINE_AFTER_MS,
            config.notify.targets.clone(),
            crate::notify::sealing::Sealer::from_file(config.notify_key_path()),
        ));
        // A directory given by the caller (tests) replaces the fleet's own membership.
        let fleet = if peers.is_some() {
            None
        } else {
            join_fleet(&config, &store, &sweep_now, &notifier).await?
        };
        let tunnel_tls = tls::tunnel_tls_config(certs.clone(), key.clone_key())?;
        let server_config = tls::listener_config(certs, key, config.idle_timeout)?;
        let socket = bind_socket(config.listen)?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server_config.clone()),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| SpawnError::Bind {
            addr: config.listen,
            source,
        })?;
        let local_addr = endpoint.local_addr().map_err(|source| SpawnError::Bind {
            addr: config.listen,
            source,
        })?;
        let tcp = bind_tcp_endpoint(&config, local_addr, tunnel_tls, &server_config).await?;
        let heartbeat_timeout_ms =
            u64::try_from(config.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
        let password_checks =
            net::password_workers::PasswordWorkers::start(net::password_slots::slots(
                config.max_password_checks,
                net::password_slots::available_memory(),
            ))
            .map_err(SpawnError::PasswordWorkers)?;
        let (presence, member_peers): (Arc<dyn Presence<quinn::Connection>>, _) = match &fleet {
            Some(member) => (
                Arc::clone(&member.presence) as _,
                Some(Arc::clone(&member.presence) as Arc<dyn PeerDirectory>),
            ),
            None => (Arc::new(MemoryPresence::new(heartbeat_timeout_ms)), None),
        };
        let peers = peers.or(member_peers);
        let shared = Arc::new(Shared {
            presence,
            peers,
            peer_pool: std::sync::OnceLock::new(),
            sweep_now,
            replay: Mutex::new(ReplayWindow::new(
                DEFAULT_REPLAY_CAPACITY,
                2 * MAX_CLOCK_SKEW_MS,
            )),
            limiter: Mutex::new(net::limiter::FailureLimiter::new(
                net::limiter::ADDR_MAX_FAILURES,
                net::limiter::ADDR_WINDOW_MS,
            )),
            user_lockout: Mutex::new(net::limiter::FailureLimiter::new(
                net::limiter::USER_MAX_FAILURES,
                net::limiter::USER_WINDOW_MS,
            )),
            password_checks,
            refusals: Mutex::default(),
            live: Mutex::default(),
            stream_quota: Arc::default(),
            store,
            config,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            tamper,
            revocation_cache: Mutex::default(),
            notifier,
        });
        if let Some(fleet) = &shared.config.fleet {
            start_peer_endpoint(&shared, fleet)?;
        }
        // Tracked: shutdown waits for the supervisor, which waits for its tasks.
        let faults = FaultHook::default();
        let core = shared.tracker.spawn(core_tasks::supervise(
            core_tasks(&shared, &endpoint, tcp.as_ref().map(|(e, _)| e)),
            shared.cancel.clone(),
            faults.clone(),
        ));
        let tcp_addr = tcp
            .as_ref()
            .map_or_else(|| "off".to_owned(), |(_, a)| a.to_string());
        tracing::info!(%local_addr, %tcp_addr, %pin, "relay listening");
        Ok(Self {
            local_addr,
            pin,
            shared,
            endpoint,
            tcp,
            core: Some(core),
            faults,
            fleet,
        })
    }

    /// Makes a core task panic (`"accept"`, `"sweeper"`, `"queue"`): a drill proving the
    /// supervision restarts it. Nothing calls this in normal operation.
    pub fn faults(&self) -> &FaultHook {
        &self.faults
    }

    /// Resolves when a core task kept failing and the relay must stop; never otherwise.
    pub async fn core_failure(&mut self) -> CoreTaskFailed {
        let Some(core) = self.core.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = core.await;
        self.core = None;
        match outcome {
            Ok(Err(failed)) => failed,
            Ok(Ok(())) => std::future::pending().await,
            Err(e) => CoreTaskFailed {
                task: "core-task supervisor",
                failures: 1,
                window: core_tasks::FAILURE_WINDOW,
                last: e.to_string(),
            },
        }
    }

    /// Resolves once this relay was retired from its fleet (or its registration removed)
    /// while it ran: it must stop ([`Self::shutdown`] tells its agents "restarting", and they
    /// reconnect to the relays peers still trust). Never resolves for a single relay.
    pub fn removed_from_fleet(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let removed = self.fleet.as_ref().map(FleetMember::removed);
        async move {
            match removed {
                Some(removed) => removed.await,
                None => std::future::pending().await,
            }
        }
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound TCP address (QUIC in TLS over TCP), `None` when the TCP path is off.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|(_, addr)| *addr)
    }

    /// The relay's key pin.
    pub fn pin(&self) -> &str {
        &self.pin
    }

    /// Stops accepting, tells every peer "restarting, reconnect now", and waits (bounded) for
    /// connections to finish.
    pub async fn shutdown(self) {
        tracing::info!("relay shutting down");
        self.shared.cancel.cancel();
        let reason = CloseReason::Restarting;
        let endpoints: Vec<&quinn::Endpoint> = std::iter::once(&self.endpoint)
            .chain(self.tcp.as_ref().map(|(e, _)| e))
            .collect();
        for endpoint in &endpoints {
            endpoint.close(reason.code().into(), b"relay restarting");
        }
        self.shared.tracker.close();
        let drain = self.shared.config.drain_timeout;
        if tokio::time::timeout(drain, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(?drain, "connections did not finish in time");
        }
        let idle = futures::future::join_all(endpoints.iter().map(|e| e.wait_idle()));
        if tokio::time::timeout(drain, idle).await.is_err() {
            tracing::warn!(?drain, "endpoint did not become idle in time");
        }
        // Refusals counted but not yet written (their window had not ended) are written now.
        let summaries = self.shared.refusals.lock().sweep(u64::MAX);
        net::conn::audit_refusal_summaries(&self.shared, &summaries);
        if let Err(e) = self.shared.store.audit().flush().await {
            tracing::error!(error = %e, "audit rows queued at shutdown could not be written");
        }
        if let Some(member) = self.fleet {
            // Bounded: a database that went away silently must not hold the shutdown (the
            // threads end by themselves; peers count this relay gone within its liveness).
            match tokio::time::timeout(drain, tokio::task::spawn_blocking(move || member.stop()))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("leaving the fleet failed (see above)"),
                Err(_) => tracing::warn!(
                    ?drain,
                    "leaving the fleet did not finish in time (the database does not answer)"
                ),
            }
        }
        tracing::info!("relay stopped");
    }
}

/// Runs a relay until `shutdown` resolves, then drains it.
///
/// # Errors
/// As [`Relay::spawn`], or [`RunError::CoreTask`] when a core task kept failing (the relay is
/// drained and stopped first).
pub async fn run(
    config: RelayConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let id = config
        .fleet
        .as_ref()
        .map(|f| f.id.0.clone())
        .unwrap_or_default();
    let mut relay = Relay::spawn(config).await?;
    let removed = relay.removed_from_fleet();
    let failed = tokio::select! {
        () = shutdown => None,
        failed = relay.core_failure() => Some(failed.into()),
        () = removed => Some(RunError::RemovedFromFleet(id)),
    };
    relay.shutdown().await;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
