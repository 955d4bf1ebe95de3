//! What this relay knows about the rest of the fleet, as last read from PostgreSQL: the
//! registered relays (with how long ago each heart-beat) and which of them holds which host.
//! Pure data and rules; `presence_sync` fills it, `presence_pg` answers from it.
//!
//! A relay counts as alive while its heartbeat (read as an age, by the database's clock) plus
//! the time since the read is within the liveness window; a presence row counts only while its
//! relay is alive and not retired. So a dead relay's hosts go offline within the window even
//! though nobody deletes its rows.
//!
//! The view itself ages only while it is fresh: it is re-read every second, so once its last
//! successful read is [`STALE_AFTER_MS`] old the reads are failing (the database is away), and
//! time stops counting against the relays it shows. Otherwise every peer would look dead after
//! the window though they still serve their agents; the last-known holders are kept (a relay
//! that died meanwhile answers nothing, and forwarding routes around it).

use super::directory::{PeerInfo, RelayId};
use crate::store::{PresenceRow, RelayRow};
use proto::ids::HostId;
use proto::message::HostStatus;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How old the last successful read may be before the view counts as stale and stops ageing
/// (a few of the sync thread's one-second reads).
pub const STALE_AFTER_MS: u64 = 3_000;

/// One registered relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayState {
    /// How to reach and recognise it.
    pub info: PeerInfo,
    /// Retired by `cm-relay cluster remove`.
    pub retired: bool,
    /// Its heartbeat's age when read (`None`: never heart-beat, or stopped cleanly).
    pub heartbeat_age_ms: Option<u64>,
}

/// One relay's hold on a host's agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The relay.
    pub relay: RelayId,
    /// The connection's id there.
    pub conn: String,
    /// When the connection authenticated (that relay's clock).
    pub connected_ms: u64,
    /// The host's status, once it heart-beat on that connection.
    pub status: Option<HostStatus>,
}

/// The fleet as last read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteView {
    /// This relay's wall clock when the relays (and their ages) were read.
    pub loaded_ms: u64,
    /// Every registered relay, retired ones too.
    pub relays: BTreeMap<RelayId, RelayState>,
    /// The other relays' presence rows, by host (this relay's own are left out).
    pub hosts: HashMap<HostId, Vec<Held>>,
}

fn held_of(row: PresenceRow) -> (HostId, Held) {
    let status = row
        .status
        .as_deref()
        .and_then(|s| serde_json::from_str::<HostStatus>(s).ok())
        .map(HostStatus::bounded);
    (
        HostId(row.host),
        Held {
            relay: RelayId(row.relay_id),
            conn: row.conn_id,
            connected_ms: row.connected_ms,
            status,
        },
    )
}

impl RemoteView {
    /// Replaces the relays, read at `loaded_ms`.
    pub fn set_relays(&mut self, rows: Vec<RelayRow>, loaded_ms: u64) {
        self.loaded_ms = loaded_ms;
        self.relays = rows
            .into_iter()
            .map(|r| {
                let id = RelayId(r.id);
                let state = RelayState {
                    info: PeerInfo {
                        id: id.clone(),
                        peer_addr: r.peer_addr,
                        peer_pin: r.peer_pin,
                    },
                    retired: r.retired_ms.is_some(),
                    heartbeat_age_ms: r.heartbeat_age_ms,
                };
                (id, state)
            })
            .collect();
    }

    /// Replaces every host's rows.
    pub fn set_all_hosts(&mut self, rows: Vec<PresenceRow>) {
        self.hosts.clear();
        self.hosts.reserve(rows.len());
        for row in rows {
            self.add(row);
        }
    }

    /// Adds one row to its host's holds, growing them by exactly one: a host is held by one
    /// or two relays, and a `Vec` growing by itself would make room for four (about 1 KiB per
    /// host of the fleet, on every relay).
    fn add(&mut self, row: PresenceRow) {
        let (host, held) = held_of(row);
        let holds = self.hosts.entry(host).or_default();
        holds.reserve_exact(1);
        holds.push(held);
    }

    /// Replaces the rows of `hosts` with `rows` (read for exactly those hosts).
    pub fn set_hosts(&mut self, hosts: &[String], rows: Vec<PresenceRow>) {
        for h in hosts {
            self.hosts.remove(&HostId(h.clone()));
        }
        for row in rows {
            self.add(row);
        }
    }

    /// Whether relay `id` is registered, not retired, and heart-beat within `window_ms` of
    /// `now_ms` (of the last read, once the view is stale).
    pub fn is_alive(&self, id: &RelayId, now_ms: u64, window_ms: u64) -> bool {
        self.relays.get(id).is_some_and(|r| {
            !r.retired
                && r.heartbeat_age_ms.is_some_and(|age| {
                    let since_read = now_ms.saturating_sub(self.loaded_ms).min(STALE_AFTER_MS);
                    age.saturating_add(since_read) <= window_ms
                })
        })
    }

    /// The relays alive at `now_ms` (a change of this set is a presence change).
    pub fn alive(&self, now_ms: u64, window_ms: u64) -> BTreeSet<RelayId> {
        self.relays
            .keys()
            .filter(|id| self.is_alive(id, now_ms, window_ms))
            .cloned()
            .collect()
    }

    /// When relay `id` last heart-beat, by this relay's clock (estimated from its age).
    pub fn heartbeat_ms(&self, id: &RelayId) -> Option<u64> {
        let age = self.relays.get(id)?.heartbeat_age_ms?;
        Some(self.loaded_ms.saturating_sub(age))
    }

    /// The holds on `host` that count (alive, not retired relays other than `local`), best
    /// first: a connection that heart-beat before one that did not, then the newest.
    pub fn holding(
        &self,
        host: &HostId,
        local: &RelayId,
        now_ms: u64,
        window_ms: u64,
    ) -> Vec<&Held> {
        let mut out: Vec<&Held> = self
            .hosts
            .get(host)
            .map(|v| {
                v.iter()
                    .filter(|h| &h.relay != local && self.is_alive(&h.relay, now_ms, window_ms))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| {
            b.status
                .is_some()
                .cmp(&a.status.is_some())
                .then(b.connected_ms.cmp(&a.connected_ms))
                .then(a.relay.cmp(&b.relay))
        });
        out
    }

    /// A registered, not retired relay other than `local`.
    pub fn peer(&self, id: &RelayId, local: &RelayId) -> Option<PeerInfo> {
        (id != local)
            .then(|| self.relays.get(id))
            .flatten()
            .filter(|r| !r.retired)
            .map(|r| r.info.clone())
    }

    /// Every registered, not retired relay other than `local`.
    pub fn peers(&self, local: &RelayId) -> Vec<PeerInfo> {
        self.relays
            .values()
            .filter(|r| !r.retired && &r.info.id != local)
            .map(|r| r.info.clone())
            .collect()
    }

    /// Whether what `other` shows differs from this view in anything a host list or routing
    /// depends on (rows, relays, which relays are alive at `now_ms`), ages aside.
    pub fn differs_from(&self, other: &Self, now_ms: u64, window_ms: u64) -> bool {
        self.hosts != other.hosts
            || self.registrations() != other.registrations()
            || self.alive(now_ms, window_ms) != other.alive(now_ms, window_ms)
    }

    /// The relays as registered (who, where, which pin, retired), heartbeats aside.
    pub fn registrations(&self) -> Vec<(PeerInfo, bool)> {
        self.relays
            .values()
            .map(|r| (r.info.clone(), r.retired))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(id: &str, age: Option<u64>, retired: bool) -> RelayRow {
        RelayRow {
            id: id.into(),
            peer_addr: format!("{id}.example:7444"),
            peer_pin: format!("sha256:{id}"),
            added_ms: 0,
            retired_ms: retired.then_some(1),
            heartbeat_age_ms: age,
            hosts: 0,
            unreachable: None,
        }
    }

    fn row(host: &str, relay: &str, connected_ms: u64, status: bool) -> PresenceRow {
        PresenceRow {
            host: host.into(),
            relay_id: relay.into(),
            conn_id: format!("{relay}-{host}"),
            connected_ms,
            status: status.then(|| serde_json::to_string(&HostStatus::default()).unwrap()),
        }
    }

    fn view() -> RemoteView {
        let mut v = RemoteView::default();
        v.set_relays(
            vec![
                relay("a", Some(100), false),
                relay("b", Some(200), false),
                relay("dead", Some(60_000), false),
                relay("gone", Some(100), true),
                relay("never", None, false),
            ],
            1_000,
        );
        v.set_all_hosts(vec![
            row("box", "a", 5, true),
            row("box", "b", 9, true),
            row("box", "dead", 10, true),
            row("box", "gone", 10, true),
            row("box", "never", 10, true),
            row("box", "me", 10, true),
            row("quiet", "a", 5, false),
        ]);
        v
    }

    #[test]
    fn a_dead_or_retired_relays_rows_do_not_count() {
        let v = view();
        let me = RelayId::from("me");
        let held: Vec<&str> = v
            .holding(&HostId::from("box"), &me, 1_000, 5_000)
            .iter()
            .map(|h| h.relay.0.as_str())
            .collect();
        // Newest first among live relays; the dead, retired and never-seen relays and this
        // relay itself are left out.
        assert_eq!(held, ["b", "a"]);
        // Time passing without a fresh read: b's heartbeat (200 ms old at the read) leaves a
        // 3 s window first.
        let later: Vec<&str> = v
            .holding(&HostId::from("box"), &me, 1_000 + 2_850, 3_000)
            .iter()
            .map(|h| h.relay.0.as_str())
            .collect();
        assert_eq!(later, ["a"]);
        assert!(
            v.holding(&HostId::from("box"), &me, 1_000 + 2_901, 3_000)
                .is_empty()
        );
    }

    #[test]
    fn a_view_the_database_stopped_refreshing_does_not_age_its_relays_out() {
        let v = view();
        let me = RelayId::from("me");
        // The last successful read was a minute ago (the database is away): the relays alive
        // at that read still count, so hosts held elsewhere stay reachable.
        let held: Vec<&str> = v
            .holding(&HostId::from("box"), &me, 1_000 + 60_000, 5_000)
            .iter()
            .map(|h| h.relay.0.as_str())
            .collect();
        assert_eq!(held, ["b", "a"]);
        assert!(v.is_alive(&RelayId::from("a"), 1_000 + 600_000, 5_000));
        assert!(!v.is_alive(&RelayId::from("dead"), 1_000 + 60_000, 5_000));
    }

    #[test]
    fn a_connection_that_heart_beat_comes_before_a_newer_silent_one() {
        let mut v = view();
        v.set_hosts(
            &["box".into()],
            vec![row("box", "a", 5, true), row("box", "b", 9, false)],
        );
        let order: Vec<&str> = v
            .holding(&HostId::from("box"), &RelayId::from("me"), 1_000, 5_000)
            .iter()
            .map(|h| h.relay.0.as_str())
            .collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn a_retired_relay_is_no_peer_and_this_relay_is_not_its_own_peer() {
        let v = view();
        let me = RelayId::from("a");
        let peers: Vec<String> = v.peers(&me).into_iter().map(|p| p.id.0).collect();
        assert_eq!(peers, ["b", "dead", "never"]);
        assert!(v.peer(&RelayId::from("gone"), &me).is_none());
        assert!(v.peer(&me, &me).is_none());
        assert_eq!(
            v.peer(&RelayId::from("b"), &me).unwrap().peer_pin,
            "sha256:b"
        );
    }

    #[test]
    fn a_hosts_holds_take_no_more_room_than_its_rows() {
        let v = view();
        let holds = |host: &str| v.hosts.get(&HostId::from(host)).unwrap();
        assert_eq!(holds("quiet").capacity(), 1);
        assert_eq!(holds("box").capacity(), holds("box").len());
    }

    #[test]
    fn a_relay_dying_is_a_change_though_no_row_changed() {
        let v = view();
        let same = v.clone();
        assert!(!v.differs_from(&same, 1_000, 5_000));
        let mut aged = v.clone();
        aged.set_relays(
            vec![
                relay("a", Some(100), false),
                relay("b", Some(9_000), false),
                relay("dead", Some(60_000), false),
                relay("gone", Some(100), true),
                relay("never", None, false),
            ],
            1_000,
        );
        assert!(aged.differs_from(&v, 1_000, 5_000));
        let mut fresher = v.clone();
        fresher.set_relays(
            vec![
                relay("a", Some(300), false),
                relay("b", Some(10), false),
                relay("dead", Some(60_000), false),
                relay("gone", Some(100), true),
                relay("never", None, false),
            ],
            1_000,
        );
        assert!(!fresher.differs_from(&v, 1_000, 5_000), "ages alone");
    }
}
