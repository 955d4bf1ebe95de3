//! The thread that keeps the fleet's presence in step with PostgreSQL, on a connection of its
//! own (blocking, never on the async threads): it writes this relay's presence rows in the
//! order the local table changed, heart-beats the relay every [`BEAT`], and reads the rest of
//! the fleet into the shared [`RemoteView`]: the relays at every beat, the hosts a notice
//! named at once, everything every [`FULL_RELOAD`] (the safety net under `LISTEN/NOTIFY`).
//!
//! When the database is away, local presence keeps working; the first beat that succeeds
//! afterwards rewrites this relay's rows from its own copy (what was written meanwhile may
//! have been lost).

use super::remote_view::RemoteView;
use crate::store::{PgStore, PresenceWrite, StoreError};
use crate::time::now_ms;
use parking_lot::RwLock;
use proto::message::HostStatus;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the relay's heartbeat row is refreshed (and the relays re-read).
pub const BEAT: Duration = Duration::from_secs(1);
/// How often everything is re-read even without a notice (a safety net only: the relays are
/// re-read every beat, the hosts a notice names at once, and everything when the notice
/// connection was lost).
pub const FULL_RELOAD: Duration = Duration::from_secs(30);
/// Most jobs taken at once (a flood of agents connecting does not hold up the heartbeat).
const MAX_BATCH: usize = 2_000;
/// How long a change of this relay's presence waits for others to be written with it (one
/// transaction, and a host's connection and first status as one row): a flood of agents
/// connecting costs the database a few transactions a second instead of several per agent.
pub const GATHER: Duration = Duration::from_millis(50);
/// Most hosts waiting to be re-read; past it everything is re-read instead.
pub const MAX_PENDING_HOSTS: usize = 10_000;

/// Hosts that notices named, waiting for the presence thread: each host once, and one
/// [`SyncJob::ReloadHosts`] in its channel however many notices came (the notice thread never
/// grows the channel while the presence thread is busy with a slow database).
#[derive(Debug, Default)]
pub struct HostReloads {
    pending: parking_lot::Mutex<PendingHosts>,
}

#[derive(Debug, Default)]
struct PendingHosts {
    hosts: BTreeSet<String>,
    /// More than [`MAX_PENDING_HOSTS`] came: read everything.
    overflow: bool,
    /// A [`SyncJob::ReloadHosts`] is in the channel and not yet taken.
    queued: bool,
}

impl HostReloads {
    /// Notes that `host` changed; true if the presence thread must be woken (no wake-up job is
    /// waiting yet).
    pub fn note(&self, host: String) -> bool {
        let mut p = self.pending.lock();
        if !p.overflow {
            p.hosts.insert(host);
            if p.hosts.len() > MAX_PENDING_HOSTS {
                p.hosts.clear();
                p.overflow = true;
            }
        }
        !std::mem::replace(&mut p.queued, true)
    }

    /// Takes the hosts to re-read (`None`: too many, read everything).
    pub fn take(&self) -> Option<BTreeSet<String>> {
        let mut p = self.pending.lock();
        p.queued = false;
        let hosts = std::mem::take(&mut p.hosts);
        (!std::mem::take(&mut p.overflow)).then_some(hosts)
    }
}

/// The jobs to handle together: `first` and what else is waiting, and when `first` changes
/// this relay's rows, what comes within [`GATHER`] too (but not past `deadline`, the next
/// beat or full read).
fn gather(first: Option<SyncJob>, jobs: &Receiver<SyncJob>, deadline: Instant) -> Vec<SyncJob> {
    let writes_rows = |job: &SyncJob| {
        matches!(
            job,
            SyncJob::Connect { .. } | SyncJob::Status { .. } | SyncJob::Disconnect { .. }
        )
    };
    let mut batch: Vec<SyncJob> = first.into_iter().collect();
    let gathering = batch.first().is_some_and(writes_rows);
    batch.extend(jobs.try_iter().take(MAX_BATCH));
    if !gathering {
        return batch;
    }
    let until = (Instant::now() + GATHER).min(deadline);
    while batch.len() < MAX_BATCH {
        let Some(wait) = until.checked_duration_since(Instant::now()) else {
            break;
        };
        match jobs.recv_timeout(wait) {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// `writes` with every change of a host before its last [`PresenceWrite::Put`] left out: a put
/// writes the whole row, so what came before it cannot change the outcome.
fn coalesce(writes: &[PresenceWrite]) -> Vec<PresenceWrite> {
    let host = |w: &PresenceWrite| match w {
        PresenceWrite::Put { host, .. } | PresenceWrite::Remove { host, .. } => host.clone(),
    };
    let mut put_later = std::collections::HashSet::new();
    let mut kept: Vec<PresenceWrite> = writes
        .iter()
        .rev()
        .filter(|w| {
            let h = host(w);
            if put_later.contains(&h) {
                return false;
            }
            if matches!(w, PresenceWrite::Put { .. }) {
                put_later.insert(h);
            }
            true
        })
        .cloned()
        .collect();
    kept.reverse();
    kept
}

/// Work for the sync thread.
#[derive(Debug)]
pub enum SyncJob {
    /// A notice for every relay of the fleet (a `cm_fleet` payload), e.g. a user's focus.
    Announce(String),
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
    /// Other relays changed the presence of the hosts in [`HostReloads`] (notices).
    ReloadHosts,
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
    /// The hosts notices named.
    host_reloads: Arc<HostReloads>,
    /// This relay's rows as they should be in the database.
    mine: HashMap<String, Mine>,
    /// A write failed: rewrite every row once the database answers again.
    resync: bool,
    /// Whether the last database call failed (errors are logged on the change only).
    failing: bool,
    /// Set once the database says this relay is retired or no longer registered.
    removed: Arc<watch::Sender<bool>>,
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
            host_reloads: Arc::default(),
            mine: HashMap::new(),
            resync: false,
            failing: false,
            removed: Arc::new(watch::channel(false).0),
        }
    }

    /// Becomes true once this relay is retired or its registration removed (`cluster remove`,
    /// or its row deleted): it must stop, so its agents move to the relays peers trust.
    pub fn removed(&self) -> watch::Receiver<bool> {
        self.removed.subscribe()
    }

    /// Where the notice thread leaves the hosts to re-read.
    pub fn host_reloads(&self) -> Arc<HostReloads> {
        Arc::clone(&self.host_reloads)
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
            let batch = gather(first, jobs, next_beat.min(next_full));
            for job in batch {
                match job {
                    SyncJob::Stop => {
                        self.flush(&writes);
                        self.stop();
                        return;
                    }
                    SyncJob::ReloadHosts => match self.host_reloads.take() {
                        Some(named) => hosts.extend(named),
                        None => all = true,
                    },
                    SyncJob::ReloadRelays => relays = true,
                    SyncJob::ReloadAll => all = true,
                    SyncJob::Announce(payload) => {
                        let r = self.store.fleet_announce(&payload);
                        self.outcome("announce to the fleet", r);
                    }
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
        let writes = coalesce(writes);
        let written = self.store.presence_write(&self.id, &writes);
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
        self.store.presence_replace(&self.id, &writes)
    }

    fn beat(&mut self) {
        let beat = self.store.relay_heartbeat(&self.id).map(|registered| {
            if !registered && !*self.removed.borrow() {
                tracing::error!(relay = %self.id, "this relay is retired (or no longer registered): peers refuse it, so it stops and its agents move to the other relays; `cm-relay cluster add` registers it again");
                self.removed.send_replace(true);
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

    /// Reads the whole fleet into a new view, row by row as the database sends them, and
    /// installs it. Only the other relays' rows are read: this relay's own agents are in its
    /// local presence (they would be a third of the view, with three relays).
    fn reload_all(&self) -> Result<(), StoreError> {
        let relays = self.store.list_relays()?;
        let loaded = now_ms();
        let mut next = self.view.read().successor();
        next.set_relays(relays, loaded);
        self.store
            .presence_rows_each(None, &self.id, |row| next.add(row))?;
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
            let mut rows = Vec::new();
            self.store
                .presence_rows_each(Some(&hosts), &self.id, |row| rows.push(row))?;
            Some(rows)
        };
        let now = now_ms();
        let changed = {
            let mut view = self.view.write();
            let alive = view.alive(now, self.liveness_ms);
            let registrations = view.registrations();
            if let Some(rows) = relay_rows {
                view.set_relays(rows, now);
            }
            let hosts_changed = host_rows.is_some_and(|rows| view.set_hosts(&hosts, rows));
            hosts_changed
                || alive != view.alive(now, self.liveness_ms)
                || registrations != view.registrations()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn put(host: &str, conn: &str, status: Option<&str>) -> PresenceWrite {
        PresenceWrite::Put {
            host: host.into(),
            conn: conn.into(),
            connected_ms: 1,
            status: status.map(str::to_owned),
        }
    }

    fn remove(host: &str, conn: &str) -> PresenceWrite {
        PresenceWrite::Remove {
            host: host.into(),
            conn: conn.into(),
        }
    }

    #[test]
    fn a_hosts_connection_and_first_status_in_one_batch_are_written_as_one_row() {
        let writes = [
            put("a", "c1", None),
            put("b", "c2", None),
            put("a", "c1", Some("{}")),
        ];
        assert_eq!(
            coalesce(&writes),
            [put("b", "c2", None), put("a", "c1", Some("{}"))]
        );
    }

    #[test]
    fn a_removal_after_the_last_put_of_its_host_is_kept_in_order() {
        // A connection replaced then ended: the old connection's removal before the new put
        // cannot matter; the new one's removal after it does.
        let writes = [
            put("a", "c1", None),
            remove("a", "c0"),
            put("a", "c2", None),
            remove("a", "c2"),
            remove("b", "c3"),
        ];
        assert_eq!(
            coalesce(&writes),
            [put("a", "c2", None), remove("a", "c2"), remove("b", "c3")]
        );
    }
}
