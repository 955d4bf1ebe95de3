//! The thread that keeps the fleet's presence in step with PostgreSQL, on a connection of its
//! own (blocking, never on the async threads): it writes this relay's presence rows in the
//! order the local table changed, heart-beats the relay every [`BEAT`], and reads the rest of
//! the fleet into the shared [`RemoteView`]: the relays at every beat, the hosts a notice
//! named at once, everything every [`FULL_RELOAD`] (the safety net under `LISTEN/NOTIFY`).
//!
//! When the database is away, local presence keeps working; the first beat that succeeds
//! afterwards rewrites this relay's rows from its own copy (what was written meanwhile may
//! have been lost).

use super::remote_view::{Held, RemoteView};
use crate::store::{PgStore, PresenceWrite, StoreError};
use crate::time::now_ms;
use parking_lot::RwLock;
use proto::ids::HostId;
use proto::message::HostStatus;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the relay's heartbeat row is refreshed (and the relays re-read).
pub const BEAT: Duration = Duration::from_secs(1);
/// How often everything is re-read even without a notice.
pub const FULL_RELOAD: Duration = Duration::from_secs(2);
/// Most jobs taken at once (a flood of agents connecting does not hold up the heartbeat).
const MAX_BATCH: usize = 2_000;

/// Work for the sync thread.
#[derive(Debug)]
pub enum SyncJob {
    /// An agent connection authenticated here.
    Connect {
        /// Its host.
        host: String,
        /// The connection.
        conn: String,
        /// When (this relay's clock).
        connected_ms: u64,
    },
    /// The host's status changed (or it heart-beat for the first time on `conn`).
    Status {
        /// Its host.
        host: String,
        /// The connection.
        conn: String,
        /// The new status.
        status: HostStatus,
    },
    /// An agent connection ended.
    Disconnect {
        /// Its host.
        host: String,
        /// The connection.
        conn: String,
    },
    /// Another relay changed `host`'s presence (a notice).
    ReloadHost(String),
    /// The relays changed (a notice).
    ReloadRelays,
    /// This relay could not reach that peer relay (recorded for `cluster status`).
    Unreachable(String),
    /// Notices may have been missed (the listening connection was lost): read everything.
    ReloadAll,
    /// The relay is stopping: remove its rows, clear its heartbeat, end.
    Stop,
}

#[derive(Debug, Clone)]
struct Mine {
    conn: String,
    connected_ms: u64,
    status: Option<String>,
}

/// The sync thread's state.
pub struct PresenceSync {
    store: PgStore,
    id: String,
    liveness_ms: u64,
    view: Arc<RwLock<RemoteView>>,
    version: Arc<watch::Sender<u64>>,
    /// This relay's rows as they should be in the database.
    mine: HashMap<String, Mine>,
    /// A write failed: rewrite every row once the database answers again.
    resync: bool,
    /// Whether the last database call failed (errors are logged on the change only).
    failing: bool,
}

impl std::fmt::Debug for PresenceSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceSync")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl PresenceSync {
    /// The sync state of relay `id` over its own connection `store`.
    pub fn new(
        store: PgStore,
        id: String,
        liveness_ms: u64,
        view: Arc<RwLock<RemoteView>>,
        version: Arc<watch::Sender<u64>>,
    ) -> Self {
        Self {
            store,
            id,
            liveness_ms,
            view,
            version,
            mine: HashMap::new(),
            resync: false,
            failing: false,
        }
    }

    /// At start: removes the rows an earlier run of this relay left, heart-beats, and reads
    /// the fleet.
    ///
    /// # Errors
    /// Database failures (the relay does not start).
    pub fn start(&mut self) -> Result<(), StoreError> {
        let stale = self.store.presence_clear(&self.id)?;
        if stale > 0 {
            tracing::info!(
                rows = stale,
                "removed the presence rows of this relay's last run"
            );
        }
        self.store.relay_heartbeat(&self.id)?;
        self.reload_all()
    }

    /// Runs until [`SyncJob::Stop`] or until every sender is gone.
    pub fn run(mut self, jobs: &Receiver<SyncJob>) {
        let mut next_beat = Instant::now() + BEAT;
        let mut next_full = Instant::now() + FULL_RELOAD;
        loop {
            let wait = next_beat
                .min(next_full)
                .saturating_duration_since(Instant::now());
            let first = match jobs.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.stop();
                    return;
                }
            };
            let mut hosts = BTreeSet::new();
            let mut writes = Vec::new();
            let (mut relays, mut all) = (false, false);
            for job in first.into_iter().chain(jobs.try_iter().take(MAX_BATCH)) {
                match job {
                    SyncJob::Stop => {
                        self.flush(&writes);
                        self.stop();
                        return;
                    }
                    SyncJob::ReloadHost(h) => {
                        hosts.insert(h);
                    }
                    SyncJob::ReloadRelays => relays = true,
                    SyncJob::ReloadAll => all = true,
                    SyncJob::Unreachable(peer) => {
                        let r = self.store.relay_unreachable(&peer, &self.id);
                        self.outcome("record an unreachable peer", r);
                    }
                    write => self.stage(write, &mut writes),
                }
            }
            self.flush(&writes);
            let now = Instant::now();
            if now >= next_beat {
                next_beat = now + BEAT;
                self.beat();
                relays = true;
            }
            if now >= next_full {
                next_full = now + FULL_RELOAD;
                all = true;
            }
            let read = if all {
                self.reload_all()
            } else {
                self.reload_some(relays, &hosts)
            };
            self.outcome("read the fleet's presence", read);
        }
    }

    fn outcome(&mut self, what: &str, r: Result<(), StoreError>) {
        match r {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("the fleet's presence is written and read again");
            }
            Ok(()) => {}
            Err(e) => {
                if !self.failing {
                    tracing::error!(error = %e, "cannot {what}; other relays may see this relay's hosts wrongly until the database answers");
                }
                self.failing = true;
            }
        }
    }

    /// Applies a change to this relay's own copy and stages its database write.
    fn stage(&mut self, job: SyncJob, writes: &mut Vec<PresenceWrite>) {
        let put = |host: &str, m: &Mine| PresenceWrite::Put {
            host: host.to_owned(),
            conn: m.conn.clone(),
            connected_ms: m.connected_ms,
            status: m.status.clone(),
        };
        match job {
            SyncJob::Connect {
                host,
                conn,
                connected_ms,
            } => {
                let mine = Mine {
                    conn,
                    connected_ms,
                    status: None,
                };
                writes.push(put(&host, &mine));
                self.mine.insert(host, mine);
            }
            SyncJob::Status { host, conn, status } => {
                if let Some(m) = self.mine.get_mut(&host).filter(|m| m.conn == conn) {
                    m.status = serde_json::to_string(&status).ok();
                    writes.push(put(&host, m));
                }
            }
            SyncJob::Disconnect { host, conn }
                if self.mine.get(&host).is_some_and(|m| m.conn == conn) =>
            {
                self.mine.remove(&host);
                writes.push(PresenceWrite::Remove { host, conn });
            }
            _ => {}
        }
    }

    /// Writes the staged changes in one transaction.
    fn flush(&mut self, writes: &[PresenceWrite]) {
        let written = self.store.presence_write(&self.id, writes);
        if written.is_err() {
            self.resync = true;
        }
        self.outcome("write this relay's presence", written);
    }

    fn rewrite_all(&self) -> Result<(), StoreError> {
        let writes: Vec<PresenceWrite> = self
            .mine
            .iter()
            .map(|(host, m)| PresenceWrite::Put {
                host: host.clone(),
                conn: m.conn.clone(),
                connected_ms: m.connected_ms,
                status: m.status.clone(),
            })
            .collect();
        self.store.presence_clear(&self.id)?;
        self.store.presence_write(&self.id, &writes)
    }

    fn beat(&mut self) {
        let beat = self.store.relay_heartbeat(&self.id).map(|registered| {
            if !registered {
                tracing::error!(relay = %self.id, "this relay is retired (or no longer registered): peers refuse it; `cm-relay cluster add` registers it again");
            }
        });
        let beat = beat.and_then(|()| {
            if self.resync {
                self.rewrite_all()?;
                self.resync = false;
                tracing::info!(
                    hosts = self.mine.len(),
                    "this relay's presence rows rewritten"
                );
            }
            Ok(())
        });
        self.outcome("heart-beat this relay", beat);
    }

    fn install(&self, next: RemoteView) {
        let now = now_ms();
        let changed = {
            let mut view = self.view.write();
            let changed = view.differs_from(&next, now, self.liveness_ms);
            *view = next;
            changed
        };
        if changed {
            self.version.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn reload_all(&self) -> Result<(), StoreError> {
        let relays = self.store.list_relays()?;
        let loaded = now_ms();
        let rows = self.store.presence_rows(None)?;
        let mut next = RemoteView::default();
        next.set_relays(relays, loaded);
        next.set_all_hosts(rows);
        self.install(next);
        Ok(())
    }

    /// Re-reads the relays and/or some hosts into the view in place (no copy of the rest).
    fn reload_some(&self, relays: bool, hosts: &BTreeSet<String>) -> Result<(), StoreError> {
        let relay_rows = if relays {
            Some(self.store.list_relays()?)
        } else {
            None
        };
        let hosts: Vec<String> = hosts.iter().cloned().collect();
        let host_rows = if hosts.is_empty() {
            None
        } else {
            Some(self.store.presence_rows(Some(&hosts))?)
        };
        let now = now_ms();
        let changed = {
            let mut view = self.view.write();
            let alive = view.alive(now, self.liveness_ms);
            let registrations = view.registrations();
            let before: Vec<Option<Vec<Held>>> = hosts
                .iter()
                .map(|h| view.hosts.get(&HostId(h.clone())).cloned())
                .collect();
            if let Some(rows) = relay_rows {
                view.set_relays(rows, now);
            }
            if let Some(rows) = host_rows {
                view.set_hosts(&hosts, rows);
            }
            alive != view.alive(now, self.liveness_ms)
                || registrations != view.registrations()
                || hosts
                    .iter()
                    .zip(&before)
                    .any(|(h, b)| view.hosts.get(&HostId(h.clone())) != b.as_ref())
        };
        if changed {
            self.version.send_modify(|v| *v = v.wrapping_add(1));
        }
        Ok(())
    }

    fn stop(&mut self) {
        let r = self
            .store
            .presence_clear(&self.id)
            .and_then(|_| self.store.relay_stopped(&self.id));
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not remove this relay's presence rows at shutdown (they expire with its heartbeat)");
        }
    }
}
