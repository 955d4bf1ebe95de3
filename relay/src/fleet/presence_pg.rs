//! The fleet's presence: this relay's own agents in memory (routes, as the single relay has
//! them), written through to PostgreSQL for the other relays, plus what the other relays hold
//! (the [`RemoteView`] that `presence_sync` keeps fresh). Implements both [`Presence`] (every
//! caller in `net/` is unchanged) and [`PeerDirectory`] (relay-to-relay forwarding).
//!
//! Nothing here blocks: writes go to the sync thread over a channel, reads use the cached view.

use super::directory::{PeerDirectory, PeerInfo, RelayId};
use super::presence_sync::SyncJob;
use super::remote_view::{RemoteStatus, RemoteView};
use crate::presence::{MemoryPresence, Presence, StatusChange};
use crate::time::now_ms;
use parking_lot::{Mutex, RwLock};
use proto::ids::{ConnId, HostId};
use proto::message::{HostInfo, HostStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use tokio::sync::watch;

/// How long a relay reported unreachable is tried after the others.
const UNREACHABLE_FOR_MS: u64 = 10_000;

/// How often one peer's unreachability is recorded in the database at most.
const REPORT_EVERY_MS: u64 = 1_000;

/// How often a host's status is written for the other relays at most when only its moving
/// figures (uptime, load, available memory) changed: each write notifies every relay, and
/// every agent heart-beats every few seconds. What a host is (name, version, workspaces) is
/// written at once.
pub const VOLATILE_WRITE_EVERY_MS: u64 = 30_000;

/// The shared presence of one relay of the fleet.
pub struct FleetPresence<R> {
    id: RelayId,
    local: MemoryPresence<R>,
    /// A relay is alive while its heartbeat is this recent.
    liveness_ms: u64,
    view: Arc<RwLock<RemoteView>>,
    version: Arc<watch::Sender<u64>>,
    sync: Mutex<Sender<SyncJob>>,
    unreachable: Mutex<HashMap<RelayId, u64>>,
    /// When each host's status was last sent to be written (by this relay's clock).
    status_written: Mutex<HashMap<HostId, u64>>,
}

impl<R> std::fmt::Debug for FleetPresence<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetPresence")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<R> FleetPresence<R> {
    /// Relay `id`'s presence: hosts are online for `heartbeat_timeout_ms` after their last
    /// heartbeat here, other relays' rows count while their relay heart-beat within
    /// `liveness_ms`. `view` and `version` are shared with the sync thread that `sync` feeds.
    pub fn new(
        id: RelayId,
        heartbeat_timeout_ms: u64,
        liveness_ms: u64,
        view: Arc<RwLock<RemoteView>>,
        version: Arc<watch::Sender<u64>>,
        sync: Sender<SyncJob>,
    ) -> Self {
        Self {
            id,
            local: MemoryPresence::with_version(heartbeat_timeout_ms, Arc::clone(&version)),
            liveness_ms,
            view,
            version,
            sync: Mutex::new(sync),
            unreachable: Mutex::default(),
            status_written: Mutex::default(),
        }
    }
}

fn send(sync: &Sender<SyncJob>, job: SyncJob) {
    if sync.send(job).is_err() {
        tracing::debug!("the fleet's presence thread has stopped; change kept locally");
    }
}

impl<R: Clone + Send + Sync> Presence<R> for FleetPresence<R> {
    fn connect(&self, host: &HostId, conn: ConnId, route: R, now_ms: u64) -> Option<R> {
        // Under the channel's lock: rows are written in the order the table changed.
        let sync = self.sync.lock();
        let job = SyncJob::Connect {
            host: host.0.clone(),
            conn: conn.0.clone(),
            connected_ms: now_ms,
        };
        let old = self.local.connect(host, conn, route, now_ms);
        self.status_written.lock().remove(host);
        send(&sync, job);
        old
    }

    fn heartbeat(&self, host: &HostId, conn: &ConnId, status: HostStatus, now_ms: u64) -> bool {
        let sync = self.sync.lock();
        let Some(change) = self
            .local
            .heartbeat_changed(host, conn, status.clone(), now_ms)
        else {
            return false;
        };
        let write = {
            let mut written = self.status_written.lock();
            let due = match change {
                StatusChange::None => false,
                StatusChange::Stable => true,
                StatusChange::Volatile => written
                    .get(host)
                    .is_none_or(|at| now_ms.saturating_sub(*at) >= VOLATILE_WRITE_EVERY_MS),
            };
            if due {
                written.insert(host.clone(), now_ms);
            }
            due
        };
        if write {
            send(
                &sync,
                SyncJob::Status {
                    host: host.0.clone(),
                    conn: conn.0.clone(),
                    status,
                },
            );
        }
        true
    }

    fn disconnect(&self, host: &HostId, conn: &ConnId, now_ms: u64) {
        let sync = self.sync.lock();
        self.local.disconnect(host, conn, now_ms);
        if self.local.route(host).is_none() {
            self.status_written.lock().remove(host);
        }
        // The sync thread removes the row only if it is still this connection's.
        send(
            &sync,
            SyncJob::Disconnect {
                host: host.0.clone(),
                conn: conn.0.clone(),
            },
        );
    }

    fn route(&self, host: &HostId) -> Option<R> {
        self.local.route(host)
    }

    fn snapshot(&self, hosts: &[HostId], now_ms: u64) -> Vec<HostInfo> {
        let mut out = self.local.snapshot(hosts, now_ms);
        let view = self.view.read();
        for info in out.iter_mut().filter(|i| !i.online) {
            let holds = view.holding(&info.host, &self.id, now_ms, self.liveness_ms);
            if let Some(held) = holds.into_iter().find(|h| h.status.is_some()) {
                info.online = true;
                info.status = held.status.map(RemoteStatus::to_host_status);
                info.last_heartbeat_ms = view.heartbeat_ms(held.relay);
            }
        }
        out
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// Whether `id` comes first among the `alive` relays (it may not be among them yet).
fn is_lowest(id: &RelayId, alive: &std::collections::BTreeSet<RelayId>) -> bool {
    alive.first().is_none_or(|first| id <= first)
}

impl<R: Send + Sync> PeerDirectory for FleetPresence<R> {
    fn local_id(&self) -> &RelayId {
        &self.id
    }

    fn relays_holding(&self, host: &HostId) -> Vec<RelayId> {
        let now = now_ms();
        let mut relays: Vec<RelayId> = self
            .view
            .read()
            .holding(host, &self.id, now, self.liveness_ms)
            .into_iter()
            .map(|h| h.relay.clone())
            .collect();
        relays.dedup();
        let unreachable = self.unreachable.lock();
        let recently = |id: &RelayId| {
            unreachable
                .get(id)
                .is_some_and(|at| now.saturating_sub(*at) < UNREACHABLE_FOR_MS)
        };
        // Stable: the best reachable first, then the recently unreachable in the same order.
        relays.sort_by_key(|id| recently(id));
        relays
    }

    fn peer(&self, id: &RelayId) -> Option<PeerInfo> {
        self.view.read().peer(id, &self.id)
    }

    fn announce_focus(&self, focus: &crate::fleet::notify::FocusNotice) {
        send(&self.sync.lock(), SyncJob::Announce(focus.payload()));
    }

    fn reports_offline_hosts(&self) -> bool {
        let alive = self.view.read().alive(now_ms(), self.liveness_ms);
        is_lowest(&self.id, &alive)
    }

    fn peers(&self) -> Vec<PeerInfo> {
        self.view.read().peers(&self.id)
    }

    fn is_registered_peer(&self, id: &RelayId, pin: &str) -> bool {
        self.view.read().is_peer_with_pin(id, &self.id, pin)
    }

    fn unreachable(&self, id: &RelayId) {
        let now = now_ms();
        let before = self.unreachable.lock().insert(id.clone(), now);
        // Recorded (and logged) at most once per second per peer.
        if before.is_none_or(|at| now.saturating_sub(at) >= REPORT_EVERY_MS) {
            tracing::warn!(relay = %id, "peer relay unreachable; routing around it");
            send(&self.sync.lock(), SyncJob::Unreachable(id.0.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PresenceRow, RelayRow};
    use std::sync::mpsc;

    fn relay(id: &str) -> RelayRow {
        RelayRow {
            id: id.into(),
            peer_addr: format!("{id}:7444"),
            peer_pin: format!("sha256:{id}"),
            added_ms: 0,
            retired_ms: None,
            heartbeat_age_ms: Some(0),
            hosts: 1,
            unreachable: None,
        }
    }

    fn fleet() -> (FleetPresence<u32>, mpsc::Receiver<SyncJob>) {
        let (tx, rx) = mpsc::channel();
        let mut view = RemoteView::default();
        let now = now_ms();
        view.set_relays(vec![relay("a"), relay("b"), relay("c")], now);
        view.set_all_hosts(vec![
            PresenceRow {
                host: "far".into(),
                relay_id: "b".into(),
                conn_id: "x".into(),
                connected_ms: 1,
                status: Some(serde_json::to_string(&HostStatus::default()).unwrap()),
            },
            PresenceRow {
                host: "far".into(),
                relay_id: "c".into(),
                conn_id: "y".into(),
                connected_ms: 2,
                status: Some(serde_json::to_string(&HostStatus::default()).unwrap()),
            },
        ]);
        let p = FleetPresence::new(
            RelayId::from("a"),
            60_000,
            60_000,
            Arc::new(RwLock::new(view)),
            Arc::new(watch::channel(0).0),
            tx,
        );
        (p, rx)
    }

    #[test]
    fn the_lowest_alive_relay_reports_offline_hosts_and_focus_is_announced() {
        let (p, rx) = fleet();
        assert!(p.reports_offline_hosts(), "a is the lowest of a, b, c");
        let alive: std::collections::BTreeSet<RelayId> =
            ["b", "c"].into_iter().map(RelayId::from).collect();
        assert!(!is_lowest(&RelayId::from("c"), &alive));
        assert!(is_lowest(&RelayId::from("a"), &alive), "not yet among them");
        assert!(is_lowest(&RelayId::from("b"), &alive));
        let focus = crate::fleet::notify::FocusNotice {
            user: "alice".into(),
            host: "far".into(),
            workspace: "api".into(),
            session: "ses_1".into(),
        };
        p.announce_focus(&focus);
        assert!(
            matches!(rx.try_recv(), Ok(SyncJob::Announce(payload)) if payload == focus.payload())
        );
    }

    #[test]
    fn a_host_held_by_another_live_relay_is_online_but_has_no_local_route() {
        let (p, rx) = fleet();
        let now = now_ms();
        let snap = p.snapshot(&[HostId::from("far"), HostId::from("near")], now);
        assert!(snap[0].online, "{snap:?}");
        assert!(!snap[1].online);
        assert_eq!(p.route(&HostId::from("far")), None);
        assert_eq!(
            p.relays_holding(&HostId::from("far")),
            [RelayId::from("c"), RelayId::from("b")]
        );
        p.unreachable(&RelayId::from("c"));
        assert_eq!(
            p.relays_holding(&HostId::from("far")),
            [RelayId::from("b"), RelayId::from("c")],
            "an unreachable relay is tried last"
        );
        // Recorded for `cluster status`.
        let recorded: Vec<String> = rx
            .try_iter()
            .filter_map(|j| match j {
                SyncJob::Unreachable(id) => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(recorded, ["c"]);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn local_changes_are_written_through_in_order_and_status_only_when_it_changes() {
        let (p, rx) = fleet();
        let (h, c) = (HostId::from("near"), ConnId::from("c1"));
        assert!(p.connect(&h, c.clone(), 7, 1).is_none());
        assert!(p.heartbeat(&h, &c, HostStatus::default(), 2));
        assert!(p.heartbeat(&h, &c, HostStatus::default(), 3));
        assert!(!p.heartbeat(&h, &ConnId::from("old"), HostStatus::default(), 3));
        p.disconnect(&h, &c, 4);
        let jobs: Vec<&'static str> = rx
            .try_iter()
            .map(|j| match j {
                SyncJob::Connect { .. } => "connect",
                SyncJob::Status { .. } => "status",
                SyncJob::Disconnect { .. } => "disconnect",
                _ => "other",
            })
            .collect();
        assert_eq!(jobs, ["connect", "status", "disconnect"]);
    }

    fn jobs(rx: &mpsc::Receiver<SyncJob>) -> Vec<&'static str> {
        rx.try_iter()
            .map(|j| match j {
                SyncJob::Status { .. } => "status",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn heartbeats_that_only_move_uptime_load_or_memory_do_not_write_to_the_database_each_time() {
        let (p, rx) = fleet();
        let (h, c) = (HostId::from("near"), ConnId::from("c1"));
        p.connect(&h, c.clone(), 7, 0);
        let mut status = HostStatus {
            hostname: "near".into(),
            mem_total_kib: 1_000,
            ..HostStatus::default()
        };
        assert!(p.heartbeat(&h, &c, status.clone(), 1));
        assert_eq!(
            jobs(&rx),
            ["other", "status"],
            "the first heartbeat is written"
        );
        // Every heartbeat's moving figures change: no write, no notice to every relay.
        for beat in 2..10 {
            status.uptime_s = beat;
            status.load = [0.1 * beat as f64; 3];
            status.mem_available_kib = beat;
            assert!(p.heartbeat(&h, &c, status.clone(), beat * 1_000));
        }
        assert!(jobs(&rx).is_empty());
        // What the host is changes: written at once.
        status.workspaces = vec!["web".into()];
        assert!(p.heartbeat(&h, &c, status.clone(), 10_000));
        assert_eq!(jobs(&rx), ["status"]);
        // The moving figures are refreshed for the other relays now and then.
        status.uptime_s = 99;
        assert!(p.heartbeat(&h, &c, status.clone(), 10_000 + VOLATILE_WRITE_EVERY_MS - 1));
        assert!(jobs(&rx).is_empty());
        status.uptime_s = 100;
        assert!(p.heartbeat(&h, &c, status, 10_000 + VOLATILE_WRITE_EVERY_MS));
        assert_eq!(jobs(&rx), ["status"]);
    }
}
