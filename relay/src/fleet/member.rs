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
    removed: watch::Receiver<bool>,
}

impl<R> FleetMember<R> {
    /// Resolves once this relay was retired or its registration removed while it ran (it must
    /// stop: peers refuse it, so its agents are better served by the other relays). Never
    /// resolves otherwise.
    pub fn removed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut removed = self.removed.clone();
        async move {
            if removed.wait_for(|r| *r).await.is_err() {
                // The presence thread ended (the relay is stopping anyway).
                std::future::pending::<()>().await;
            }
        }
    }
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
        focus: Box<dyn Fn(super::notify::FocusNotice) + Send>,
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
        let host_reloads = sync.host_reloads();
        let removed = sync.removed();
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
            host_reloads,
            focus,
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
            removed,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{PeerDirectory, RelayId};
    use crate::pg_server::PgServer;
    use crate::presence::Presence;
    use crate::store::test_db::pg_config;
    use proto::ids::{ConnId, HostId};
    use proto::message::HostStatus;

    /// Relay `id` registered (with a peer identity in a state dir of its own) and started.
    fn joined(pg: &PgConfig, root: &std::path::Path, id: &str) -> FleetMember<u32> {
        let dir = StateDir::new(root.join(id));
        std::fs::create_dir_all(dir.root()).unwrap();
        let store = PgStore::open(pg).unwrap();
        super::super::cluster::add(&dir, &store, id, &format!("{id}:7444"), 1).unwrap();
        let fleet = FleetConfig {
            id: RelayId::from(id),
            peer_listen: "127.0.0.1:0".parse().unwrap(),
        };
        FleetMember::start(
            pg,
            &fleet,
            &dir,
            Duration::from_secs(1),
            Arc::new(tokio::sync::Notify::new()),
            Box::new(|| {}),
            Box::new(|_| {}),
        )
        .unwrap()
    }

    /// Waits (bounded, a hang guard) until `pred` holds, re-checking on every presence change.
    async fn until(p: &FleetPresence<u32>, what: &str, pred: impl Fn(&FleetPresence<u32>) -> bool) {
        let mut changes = p.changes();
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while !pred(p) {
                changes.changed().await.unwrap();
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting for: {what}");
    }

    #[test]
    fn a_relay_joins_only_registered_unretired_and_with_its_registered_identity() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let pg = pg_config(&server);
        let tmp = tempfile::tempdir().unwrap();
        let store = PgStore::open(&pg).unwrap();
        let (mine, other) = (
            StateDir::new(tmp.path().join("mine")),
            StateDir::new(tmp.path().join("other")),
        );
        let said = |dir: &StateDir| check_registered(&store, dir, "a").unwrap_err().to_string();
        assert!(
            said(&mine).contains("cluster add --id a"),
            "{}",
            said(&mine)
        );
        super::super::cluster::add(&mine, &store, "a", "a:7444", 1).unwrap();
        check_registered(&store, &mine, "a").unwrap();
        // Another machine's peer identity under the same id is refused.
        identity::create(&{
            std::fs::create_dir_all(other.root()).unwrap();
            other.clone()
        })
        .unwrap();
        let e = said(&other);
        assert!(
            e.contains("peer.crt") && e.contains("cluster remove --id a"),
            "{e}"
        );
        super::super::cluster::remove(&store, "a", 2).unwrap();
        assert!(said(&mine).contains("was retired"), "{}", said(&mine));
        let ops: Vec<String> = crate::store::StoreRead::audit_tail(&store, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.event.op)
            .collect();
        assert!(
            ops.contains(&"cluster_add".to_owned()) && ops.contains(&"cluster_remove".to_owned()),
            "{ops:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_fleets_presence_recovers_by_itself_after_the_database_restarts() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let pg = pg_config(&server);
        let tmp = tempfile::tempdir().unwrap();
        let (p, t) = (pg.clone(), tmp.path().to_owned());
        let (a, b) =
            tokio::task::spawn_blocking(move || (joined(&p, &t, "a"), joined(&p, &t, "b")))
                .await
                .unwrap();
        let server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .unwrap();
        // Every connection of both relays was closed: writes, reads and LISTEN come back.
        let (host, conn) = (HostId::from("box"), ConnId::from("c1"));
        a.presence
            .connect(&host, conn.clone(), 1, crate::time::now_ms());
        assert!(
            a.presence
                .heartbeat(&host, &conn, HostStatus::default(), crate::time::now_ms())
        );
        until(&b.presence, "box online at b after the restart", |p| {
            p.snapshot(&[HostId::from("box")], crate::time::now_ms())[0].online
        })
        .await;
        tokio::task::spawn_blocking(move || {
            a.stop();
            b.stop();
            drop(server);
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_relays_agent_shows_online_and_a_retired_relay_drops_out_of_the_peers() {
        let Some(server) = PgServer::start() else {
            return;
        };
        let pg = pg_config(&server);
        let tmp = tempfile::tempdir().unwrap();
        let (p, t) = (pg.clone(), tmp.path().to_owned());
        let (a, b) =
            tokio::task::spawn_blocking(move || (joined(&p, &t, "a"), joined(&p, &t, "b")))
                .await
                .unwrap();
        let host = HostId::from("box");
        let conn = ConnId::from("c1");
        a.presence
            .connect(&host, conn.clone(), 1, crate::time::now_ms());
        assert!(
            a.presence
                .heartbeat(&host, &conn, HostStatus::default(), crate::time::now_ms())
        );
        let online = |p: &FleetPresence<u32>| {
            p.snapshot(&[HostId::from("box")], crate::time::now_ms())[0].online
        };
        until(&b.presence, "box online at b", online).await;
        assert_eq!(b.presence.relays_holding(&host), [RelayId::from("a")]);
        assert_eq!(b.presence.route(&host), None, "no local route at b");
        assert!(b.presence.peer(&RelayId::from("a")).is_some());

        // A's agent leaves: b sees it go.
        a.presence.disconnect(&host, &conn, crate::time::now_ms());
        until(&b.presence, "box offline at b", |p| !online(p)).await;

        // Retired: b stops trusting a at once (the relays notice).
        a.presence
            .connect(&host, ConnId::from("c2"), 2, crate::time::now_ms());
        let p = pg.clone();
        tokio::task::spawn_blocking(move || PgStore::connect(&p).unwrap().retire_relay("a", 5))
            .await
            .unwrap()
            .unwrap();
        until(&b.presence, "a retired at b", |p| {
            p.peer(&RelayId::from("a")).is_none() && p.peers().is_empty()
        })
        .await;
        // The retired relay learns it at its next heartbeat: it must stop (its agents move).
        let removed = tokio::time::timeout(Duration::from_secs(30), a.removed()).await;
        assert!(removed.is_ok(), "a was not told it was retired");
        assert!(b.presence.relays_holding(&host).is_empty());
        let rows = tokio::task::spawn_blocking(move || {
            a.stop();
            b.stop();
            PgStore::connect(&pg).unwrap().list_relays().unwrap()
        })
        .await
        .unwrap();
        // A clean stop clears the heartbeat: the relay is not alive for anyone.
        assert!(
            rows.iter()
                .all(|r| r.heartbeat_age_ms.is_none() && r.hosts == 0),
            "{rows:?}"
        );
    }
}
