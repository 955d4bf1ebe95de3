//! This relay as a running member of the fleet: at start it checks that it is registered (and
//! that its peer identity is the registered one), clears what an earlier run left, reads the
//! fleet, and starts the presence thread and the notice listener; at shutdown it stops them,
//! removing its presence rows and clearing its heartbeat so peers count it gone at once.

use super::config::FleetConfig;
use super::identity;
use super::notify::{self, Targets};
use super::presence_pg::FleetPresence;
use super::presence_sync::{PresenceSync, SyncJob};
use super::remote_view::RemoteView;
use crate::state::{StateDir, StateError};
use crate::store::{PgConfig, PgListener, PgStore, StoreError};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// The shortest liveness window of a relay: several of its one-second heartbeats (and reads)
/// fit in it, so a slow database round trip does not make a live relay look dead.
pub const MIN_LIVENESS: Duration = Duration::from_secs(5);

/// How long a relay's heartbeat counts: the hosts' heartbeat timeout, at least
/// [`MIN_LIVENESS`].
pub fn liveness_ms(heartbeat_timeout: Duration) -> u64 {
    u64::try_from(heartbeat_timeout.max(MIN_LIVENESS).as_millis()).unwrap_or(u64::MAX)
}

/// Why this relay cannot join its fleet.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `[fleet]` without PostgreSQL.
    #[error(
        "a fleet shares one PostgreSQL: set [store] backend = \"postgres\" and url in relay.toml"
    )]
    NeedsPostgres,
    /// Not registered.
    #[error(
        "relay {0:?} is not registered in the fleet: on this machine run `cm-relay cluster add --id {0} --peer-addr HOST:7444` first"
    )]
    NotRegistered(String),
    /// Retired.
    #[error(
        "relay {0:?} was retired (`cm-relay cluster remove`); to bring it back run `cm-relay cluster add --id {0} --peer-addr HOST:7444`"
    )]
    Retired(String),
    /// Its peer identity is not the registered one.
    #[error(
        "peer.crt of relay {id:?} has pin {local}, but the fleet registered {registered}: run `cm-relay cluster add --id {id} --peer-addr HOST:7444` on this machine (after `cm-relay cluster remove --id {id}` if another machine had this id)"
    )]
    PinMismatch {
        /// The relay.
        id: String,
        /// The pin of `peer.crt`.
        local: String,
        /// The pin in `relays`.
        registered: String,
    },
    /// The peer identity is missing or broken.
    #[error(transparent)]
    Identity(#[from] StateError),
    /// The database failed.
    #[error("the fleet's tables: {0}")]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start the fleet's threads: {0}")]
    Thread(std::io::Error),
}

/// Checks that relay `id` may run: registered, not retired, with `peer.crt` of `dir` as its
/// registered identity.
///
/// # Errors
/// As [`FleetError`].
pub fn check_registered(store: &PgStore, dir: &StateDir, id: &str) -> Result<(), FleetError> {
    let row = store
        .list_relays()?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| FleetError::NotRegistered(id.to_owned()))?;
    if row.retired_ms.is_some() {
        return Err(FleetError::Retired(id.to_owned()));
    }
    let (_, _, local) = identity::load(dir)?;
    if local != row.peer_pin {
        return Err(FleetError::PinMismatch {
            id: id.to_owned(),
            local,
            registered: row.peer_pin,
        });
    }
    Ok(())
}

/// The running member: its presence (for `Shared`) and its threads.
#[derive(Debug)]
pub struct FleetMember<R> {
    /// The fleet's presence, also the relay's [`super::PeerDirectory`].
    pub presence: Arc<FleetPresence<R>>,
    sync: Sender<SyncJob>,
    sync_thread: Option<JoinHandle<()>>,
    listen_stop: Arc<AtomicBool>,
    listen_thread: Option<JoinHandle<()>>,
}

impl<R: Send + Sync + 'static> FleetMember<R> {
    /// Joins the fleet. Blocking (it connects and reads): call it off the async threads.
    ///
    /// # Errors
    /// As [`FleetError`]: the relay must not start.
    pub fn start(
        pg: &PgConfig,
        fleet: &FleetConfig,
        dir: &StateDir,
        heartbeat_timeout: Duration,
        sweep: Arc<tokio::sync::Notify>,
        grants_changed: Box<dyn Fn() + Send>,
    ) -> Result<Self, FleetError> {
        let id = fleet.id.0.clone();
        let store = PgStore::connect(pg)?;
        check_registered(&store, dir, &id)?;
        let liveness = liveness_ms(heartbeat_timeout);
        let view = Arc::new(RwLock::new(RemoteView::default()));
        let version = Arc::new(watch::channel(0).0);
        let mut sync = PresenceSync::new(
            store,
            id.clone(),
            liveness,
            Arc::clone(&view),
            Arc::clone(&version),
        );
        sync.start()?;
        let listener = PgListener::connect(pg)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let sync_thread = std::thread::Builder::new()
            .name("fleet-presence".into())
            .spawn(move || sync.run(&rx))
            .map_err(FleetError::Thread)?;
        let listen_stop = Arc::new(AtomicBool::new(false));
        let targets = Targets {
            sweep,
            grants_changed,
            presence: tx.clone(),
        };
        let (config, stop) = (pg.clone(), Arc::clone(&listen_stop));
        let listen_thread = std::thread::Builder::new()
            .name("fleet-notices".into())
            .spawn(move || notify::run(&config, listener, &targets, &stop));
        let listen_thread = match listen_thread {
            Ok(t) => t,
            Err(e) => {
                let _ = tx.send(SyncJob::Stop);
                let _ = sync_thread.join();
                return Err(FleetError::Thread(e));
            }
        };
        let heartbeat_timeout_ms = u64::try_from(heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
        let presence = Arc::new(FleetPresence::new(
            fleet.id.clone(),
            heartbeat_timeout_ms,
            liveness,
            view,
            version,
            tx.clone(),
        ));
        tracing::info!(relay = %fleet.id, "joined the fleet");
        Ok(Self {
            presence,
            sync: tx,
            sync_thread: Some(sync_thread),
            listen_stop,
            listen_thread: Some(listen_thread),
        })
    }

    /// Stops the threads (the presence thread removes this relay's rows and clears its
    /// heartbeat first). Blocking: call it off the async threads.
    pub fn stop(mut self) {
        self.listen_stop.store(true, Ordering::Release);
        let _ = self.sync.send(SyncJob::Stop);
        for t in [self.sync_thread.take(), self.listen_thread.take()]
            .into_iter()
            .flatten()
        {
            if t.join().is_err() {
                tracing::error!("a fleet thread panicked (see above)");
            }
        }
        tracing::info!("left the fleet");
    }
}

impl<R> Drop for FleetMember<R> {
    /// Without [`FleetMember::stop`] (a relay that failed to start): the threads end by
    /// themselves.
    fn drop(&mut self) {
        self.listen_stop.store(true, Ordering::Release);
        let _ = self.sync.send(SyncJob::Stop);
    }
}
