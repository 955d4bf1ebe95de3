//! The two paths under test. [`Relayed`]: an in-process relay (relay runtime), a fake agent
//! connected to it (agent runtime), and operator sessions (operator runtime). [`Direct`]: the
//! same far-end code as a plain quinn server (agent runtime) with the relay's TLS settings.

use crate::events::EventHub;
use crate::netutil;
use crate::peer::{self, Mode};
use crate::roles::{Roles, on};
use anyhow::{Context, Result};
use bytes::Bytes;
use cm_client::framed::{FramedRecv, send_frame};
use cm_client::{self as client, Session};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN, to_frame};
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::{Control, HostList, HostStatus};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// The fake agent's host name.
pub const HOST: &str = "bench-agent";

/// Upper bound on any wait for readiness (a hang guard, not a timing).
pub const WAIT: Duration = Duration::from_secs(60);

/// The framed stream header for `op` in `mode`, addressed to the fake agent.
///
/// # Errors
/// Encoding failure (not expected).
pub fn header(op: Op, mode: Mode) -> Result<Bytes> {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from(HOST));
    h.workspace = Some(mode.workspace());
    Ok(to_frame(&h, MAX_HEADER_LEN)?.freeze())
}

/// A relay in this process with the fake agent online and the owner logged in.
#[derive(Debug)]
pub struct Relayed {
    _tmp: TempDir,
    relay: Option<Relay>,
    /// The relay's address.
    pub addr: SocketAddr,
    /// The owner's credential.
    pub cred: IssuedCredential,
    op_ep: quinn::Endpoint,
    agent_ep: quinn::Endpoint,
}

/// A fresh relay state directory.
///
/// # Errors
/// Init failures.
pub fn init_state(tmp: &TempDir) -> Result<(StateDir, state::InitOutput)> {
    let dir = StateDir::new(tmp.path().join("relay"));
    let out = state::init(&dir, "127.0.0.1:7443", &UserId::from("owner"))?;
    Ok((dir, out))
}

/// Logs in with the owner's init invite.
///
/// # Errors
/// The relay refuses or is unreachable.
pub async fn login_owner(
    addr: SocketAddr,
    pin: &str,
    init: &state::InitOutput,
) -> Result<IssuedCredential> {
    let req = LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: init.invite.user.clone(),
        method: LoginMethod::Invite {
            secret: init.invite.secret,
            new_password: None,
        },
        ttl_s: None,
        label: Some("cm-bench".into()),
        device_key: None,
    };
    Ok(client::login(&addr.to_string(), pin, req).await?)
}

/// Sends a heartbeat every `interval` (the first at once) and drains the acks, until the
/// connection ends. While `vary` is set the status changes on every beat, as a real agent's
/// uptime does.
pub async fn heartbeat_loop(
    mut send: quinn::SendStream,
    mut recv: FramedRecv,
    interval: Duration,
    vary: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(interval);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                let status = HostStatus { uptime_s: if vary.load(Ordering::Relaxed) { seq } else { 0 }, ..HostStatus::default() };
                if send_frame(&mut send, &Control::Heartbeat { seq, status }, MAX_FRAME_LEN).await.is_err() {
                    return;
                }
            }
            ack = recv.next::<Control>() => if !matches!(ack, Ok(Some(_))) { return },
        }
    }
}

/// Watches the host list until `pred` holds; returns that list.
///
/// # Errors
/// The watch fails or [`WAIT`] passes.
pub async fn watch_until(
    conn: &quinn::Connection,
    pred: impl Fn(&HostList) -> bool,
) -> Result<HostList> {
    let mut watch = client::HostWatch::open(conn, ReqId(7)).await?;
    tokio::time::timeout(WAIT, async {
        loop {
            let list = watch
                .next()
                .await?
                .context("the relay ended the host watch")?;
            if pred(&list) {
                return Ok::<_, anyhow::Error>(list);
            }
        }
    })
    .await
    .context("timed out watching the host list")?
}

/// Number of online hosts in `list`.
pub fn online(list: &HostList) -> usize {
    list.hosts.iter().filter(|h| h.online).count()
}

/// The fake agent [`HOST`] (far-end code of [`peer::serve_agent`]) connected to the relay at
/// `addr` with the host secret `secret`, heart-beating every 3 s, on the agent runtime. Its
/// endpoint: closing it disconnects the agent.
///
/// # Errors
/// Connection or authentication failures.
pub async fn fake_agent(
    roles: &Roles,
    hub: &EventHub,
    pin: &str,
    addr: SocketAddr,
    secret: proto::handshake::Key,
) -> Result<quinn::Endpoint> {
    let (pin, hub) = (pin.to_owned(), hub.clone());
    on(&roles.agent, async move {
        let ep = netutil::client_endpoint(&pin)?;
        let conn = netutil::connect(&ep, addr).await?;
        let s = client::authenticate(conn, PeerKind::Agent, &CredId(HOST.into()), &secret).await?;
        tokio::spawn(heartbeat_loop(
            s.control_send,
            s.control_recv,
            Duration::from_secs(3),
            Arc::default(),
        ));
        tokio::spawn(peer::serve_agent(s.conn, hub));
        Ok(ep)
    })
    .await
}

impl Relayed {
    /// Starts the relay and the fake agent, logs the owner in, waits until the agent is online.
    /// Runs on the operator runtime.
    ///
    /// # Errors
    /// Any setup step failing.
    pub async fn start(roles: &Roles, hub: &EventHub, tmp: TempDir) -> Result<Self> {
        let (dir, init) = init_state(&tmp)?;
        let mut config = RelayConfig::new(dir.root().to_owned());
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.drain_timeout = Duration::from_secs(1);
        let relay = on(&roles.relay, async move { Ok(Relay::spawn(config).await?) }).await?;
        let addr = relay.local_addr();
        let pin = relay.pin().to_owned();
        let cred = login_owner(addr, &pin, &init).await?;
        let token = cm_relay::cli::host_add(&dir, HOST, Some(addr.to_string()))?;
        let agent_ep = fake_agent(roles, hub, &pin, addr, token.secret).await?;
        let op_ep = netutil::client_endpoint(&pin)?;
        let world = Self {
            _tmp: tmp,
            relay: Some(relay),
            addr,
            cred,
            op_ep,
            agent_ep,
        };
        let probe = world.operator().await?;
        watch_until(&probe.conn, |l| online(l) == 1).await?;
        Ok(world)
    }

    /// A new authenticated operator session (its own connection). Keep it alive: dropping it
    /// ends the connection's control stream, and the relay then ends the connection.
    ///
    /// # Errors
    /// Connection or authentication failures.
    pub async fn operator(&self) -> Result<Session> {
        let conn = netutil::connect(&self.op_ep, self.addr).await?;
        Ok(client::authenticate(
            conn,
            PeerKind::Operator,
            &self.cred.cred_id,
            &self.cred.secret,
        )
        .await?)
    }

    /// Closes the clients and drains the relay.
    ///
    /// # Errors
    /// The relay task panicked.
    pub async fn stop(mut self, roles: &Roles) -> Result<()> {
        self.op_ep.close(0u32.into(), b"done");
        self.agent_ep.close(0u32.into(), b"done");
        if let Some(relay) = self.relay.take() {
            on(&roles.relay, async move {
                relay.shutdown().await;
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

/// A plain quinn server running the far-end code, with the relay's TLS settings.
#[derive(Debug)]
pub struct Direct {
    _tmp: TempDir,
    /// The server's address.
    pub addr: SocketAddr,
    server: quinn::Endpoint,
    client: quinn::Endpoint,
}

impl Direct {
    /// Starts the server (agent runtime). Runs on the operator runtime.
    ///
    /// # Errors
    /// Setup failures.
    pub async fn start(roles: &Roles, hub: &EventHub, tmp: TempDir) -> Result<Self> {
        let (dir, init) = init_state(&tmp)?;
        let hub = hub.clone();
        let server = on(&roles.agent, async move {
            let ep = netutil::server_endpoint(&dir)?;
            tokio::spawn(peer::serve_direct(ep.clone(), hub));
            Ok(ep)
        })
        .await?;
        Ok(Self {
            _tmp: tmp,
            addr: server.local_addr()?,
            server,
            client: netutil::client_endpoint(&init.pin)?,
        })
    }

    /// A new connection to the server.
    ///
    /// # Errors
    /// Handshake failure.
    pub async fn connect(&self) -> Result<quinn::Connection> {
        netutil::connect(&self.client, self.addr).await
    }

    /// Closes both endpoints.
    pub fn stop(self) {
        self.client.close(0u32.into(), b"done");
        self.server.close(0u32.into(), b"done");
    }
}
