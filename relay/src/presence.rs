//! Presence and routing: which host is connected where, and when it last heart-beat.
//!
//! Everything else in the relay goes through the [`Presence`] trait, never the table itself,
//! so the fleet's shared presence (`fleet::presence_pg`: this table plus the PostgreSQL rows
//! of the other relays) replaces the in-memory default without touching callers. Online =
//! connected *and* heart-beating within the timeout.

use parking_lot::Mutex;
use proto::ids::{ConnId, HostId};
use proto::message::{HostInfo, HostStatus};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The presence and routing interface. `R` is how to reach a host's connection (a
/// `quinn::Connection` in the embedded relay).
pub trait Presence<R: Clone>: Send + Sync {
    /// A host's connection authenticated. Returns the route it replaces, if any (the caller
    /// closes it: the newest connection of a host wins).
    fn connect(&self, host: &HostId, conn: ConnId, route: R, now_ms: u64) -> Option<R>;
    /// A heartbeat arrived on `conn`. Returns false if `conn` is no longer the host's current
    /// connection (it was replaced).
    fn heartbeat(&self, host: &HostId, conn: &ConnId, status: HostStatus, now_ms: u64) -> bool;
    /// `conn` ended. Ignored if the host already has a newer connection.
    fn disconnect(&self, host: &HostId, conn: &ConnId, now_ms: u64);
    /// The route to a host's current connection, if it is connected.
    fn route(&self, host: &HostId) -> Option<R>;
    /// Presence of `hosts` (known hosts from the store) as seen at `now_ms`.
    fn snapshot(&self, hosts: &[HostId], now_ms: u64) -> Vec<HostInfo>;
    /// A receiver that changes whenever presence changes (connect, disconnect, status).
    fn changes(&self) -> watch::Receiver<u64>;
}

#[derive(Debug)]
struct Entry<R> {
    conn: Option<(ConnId, R)>,
    /// Whether the current connection has sent a heartbeat yet (online needs one).
    heartbeat_on_conn: bool,
    last_heartbeat_ms: Option<u64>,
    status: Option<HostStatus>,
}

/// The embedded, in-memory presence table.
#[derive(Debug)]
pub struct MemoryPresence<R> {
    heartbeat_timeout_ms: u64,
    table: Mutex<HashMap<HostId, Entry<R>>>,
    version: Arc<watch::Sender<u64>>,
}

impl<R> MemoryPresence<R> {
    /// A table where a host counts as online for `heartbeat_timeout_ms` after its last sign of
    /// life.
    pub fn new(heartbeat_timeout_ms: u64) -> Self {
        Self::with_version(heartbeat_timeout_ms, Arc::new(watch::channel(0).0))
    }

    /// A table whose changes bump `version`, which others (the fleet's shared presence) bump
    /// too: one [`Presence::changes`] for both.
    pub fn with_version(heartbeat_timeout_ms: u64, version: Arc<watch::Sender<u64>>) -> Self {
        Self {
            heartbeat_timeout_ms,
            table: Mutex::new(HashMap::new()),
            version,
        }
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn with_table<T>(&self, f: impl FnOnce(&mut HashMap<HostId, Entry<R>>) -> T) -> T {
        // parking_lot does not poison: a panic elsewhere mid-update leaves a valid map, and
        // the relay keeps serving.
        f(&mut self.table.lock())
    }
}

impl<R> MemoryPresence<R> {
    /// [`Presence::heartbeat`] that also says whether the host's presence or status changed:
    /// `None` if `conn` is not the host's current connection, else `Some(changed)`.
    pub fn heartbeat_changed(
        &self,
        host: &HostId,
        conn: &ConnId,
        status: HostStatus,
        now_ms: u64,
    ) -> Option<bool> {
        let current = self.with_table(|t| match t.get_mut(host) {
            Some(e) if e.conn.as_ref().is_some_and(|(c, _)| c == conn) => {
                let changed = !e.heartbeat_on_conn || e.status.as_ref() != Some(&status);
                e.heartbeat_on_conn = true;
                e.last_heartbeat_ms = Some(now_ms);
                e.status = Some(status);
                Some(changed)
            }
            _ => None,
        });
        if current == Some(true) {
            self.bump();
        }
        current
    }
}

impl<R: Clone + Send> Presence<R> for MemoryPresence<R> {
    fn connect(&self, host: &HostId, conn: ConnId, route: R, _now_ms: u64) -> Option<R> {
        let old = self.with_table(|t| {
            let e = t.entry(host.clone()).or_insert(Entry {
                conn: None,
                heartbeat_on_conn: false,
                last_heartbeat_ms: None,
                status: None,
            });
            e.heartbeat_on_conn = false;
            e.conn.replace((conn, route)).map(|(_, r)| r)
        });
        self.bump();
        old
    }

    fn heartbeat(&self, host: &HostId, conn: &ConnId, status: HostStatus, now_ms: u64) -> bool {
        self.heartbeat_changed(host, conn, status, now_ms).is_some()
    }

    fn disconnect(&self, host: &HostId, conn: &ConnId, _now_ms: u64) {
        let removed = self.with_table(|t| match t.get_mut(host) {
            Some(e) if e.conn.as_ref().is_some_and(|(c, _)| c == conn) => {
                e.conn = None;
                // What a host said about itself goes with it; a new connection reports anew.
                e.status = None;
                true
            }
            _ => false,
        });
        if removed {
            self.bump();
        }
    }

    fn route(&self, host: &HostId) -> Option<R> {
        self.with_table(|t| {
            t.get(host)
                .and_then(|e| e.conn.as_ref().map(|(_, r)| r.clone()))
        })
    }

    fn snapshot(&self, hosts: &[HostId], now_ms: u64) -> Vec<HostInfo> {
        self.with_table(|t| {
            hosts
                .iter()
                .map(|h| match t.get(h) {
                    Some(e) => HostInfo {
                        host: h.clone(),
                        online: e.conn.is_some()
                            && e.heartbeat_on_conn
                            && e.last_heartbeat_ms.is_some_and(|last| {
                                now_ms.saturating_sub(last) <= self.heartbeat_timeout_ms
                            }),
                        last_heartbeat_ms: e.last_heartbeat_ms,
                        status: e.status.clone(),
                    },
                    None => HostInfo {
                        host: h.clone(),
                        online: false,
                        last_heartbeat_ms: None,
                        status: None,
                    },
                })
                .collect()
        })
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostId {
        HostId::from(s)
    }

    #[test]
    fn online_needs_connection_and_fresh_heartbeat() {
        let p: MemoryPresence<u32> = MemoryPresence::new(1_000);
        let hosts = [h("a"), h("b")];
        assert!(p.snapshot(&hosts, 0).iter().all(|i| !i.online));
        assert!(p.connect(&h("a"), ConnId::from("c1"), 1, 100).is_none());
        // Connected but silent: not online yet.
        assert!(!p.snapshot(&hosts, 100)[0].online);
        assert!(p.heartbeat(&h("a"), &ConnId::from("c1"), HostStatus::default(), 500));
        let snap = p.snapshot(&hosts, 1_500);
        assert!(snap[0].online);
        assert!(!snap[1].online);
        // One ms past the window without a heartbeat: offline, though still connected.
        assert!(!p.snapshot(&hosts, 1_501)[0].online);
        assert_eq!(p.route(&h("a")), Some(1));
    }

    #[test]
    fn newest_connection_wins_and_stale_disconnect_is_ignored() {
        let p: MemoryPresence<u32> = MemoryPresence::new(1_000);
        let mut rx = p.changes();
        p.connect(&h("a"), ConnId::from("c1"), 1, 0);
        assert_eq!(p.connect(&h("a"), ConnId::from("c2"), 2, 10), Some(1));
        assert!(p.heartbeat(&h("a"), &ConnId::from("c2"), HostStatus::default(), 15));
        assert!(p.snapshot(&[h("a")], 16)[0].online);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        // The old connection's heartbeat and disconnect do not touch the new one.
        assert!(!p.heartbeat(&h("a"), &ConnId::from("c1"), HostStatus::default(), 20));
        p.disconnect(&h("a"), &ConnId::from("c1"), 30);
        assert!(!rx.has_changed().unwrap());
        assert_eq!(p.route(&h("a")), Some(2));
        p.disconnect(&h("a"), &ConnId::from("c2"), 40);
        assert!(rx.has_changed().unwrap());
        assert_eq!(p.route(&h("a")), None);
        assert!(!p.snapshot(&[h("a")], 41)[0].online);
        assert_eq!(
            p.snapshot(&[h("a")], 41)[0].status,
            None,
            "dropped on disconnect"
        );
    }
}
