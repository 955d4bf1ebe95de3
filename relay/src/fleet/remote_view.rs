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
//!
//! Per remote host the view keeps only what routing and the host list use (see `holds`): which
//! relays hold it, each connection's epoch, and the status. Connection ids and the rows' other
//! columns stay in the database.

mod holds;

use super::directory::{PeerInfo, RelayId};
use crate::store::{PresenceRow, RelayRow};
pub use holds::RemoteStatus;
use holds::{Hold, Holds, RelayIx, Strings};
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

/// One relay's hold on a host's agent, as [`RemoteView::holding`] answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Holder<'a> {
    /// The relay.
    pub relay: &'a RelayId,
    /// When the connection authenticated (that relay's clock).
    pub connected_ms: u64,
    /// The host's status, once it heart-beat on that connection.
    pub status: Option<&'a RemoteStatus>,
}

/// The fleet as last read.
#[derive(Debug, Clone, Default)]
pub struct RemoteView {
    /// This relay's wall clock when the relays (and their ages) were read.
    pub loaded_ms: u64,
    /// Every registered relay, retired ones too.
    pub relays: BTreeMap<RelayId, RelayState>,
    /// The relays the rows name, each once ([`RelayIx`] is a position here; only grows).
    names: Vec<RelayId>,
    /// The other relays' holds, by host (this relay's own are left out).
    hosts: HashMap<Box<str>, Holds>,
    /// Texts the hosts' statuses share.
    strings: Strings,
}

impl RemoteView {
    /// An empty view for the next full read: the same relay names (so holds compare by
    /// index), no hosts, no texts.
    pub fn successor(&self) -> Self {
        Self {
            names: self.names.clone(),
            ..Self::default()
        }
    }

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
    pub fn set_all_hosts(&mut self, rows: impl IntoIterator<Item = PresenceRow>) {
        self.hosts.clear();
        self.strings = Strings::default();
        for row in rows {
            self.add(row);
        }
    }

    /// How many hosts other relays hold.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    fn relay_ix(&mut self, relay: &str) -> RelayIx {
        if let Some(i) = self.names.iter().position(|n| n.0 == relay) {
            return RelayIx(u16::try_from(i).unwrap_or(u16::MAX));
        }
        self.names.push(RelayId::from(relay));
        RelayIx(u16::try_from(self.names.len() - 1).unwrap_or(u16::MAX))
    }

    fn name(&self, ix: RelayIx) -> Option<&RelayId> {
        self.names.get(usize::from(ix.0))
    }

    /// Adds one row (of another relay) to its host's holds. A status that is not a
    /// [`HostStatus`] counts as none, as it did when the row was read whole.
    pub fn add(&mut self, row: PresenceRow) {
        let relay = self.relay_ix(&row.relay_id);
        let status = row
            .status
            .as_deref()
            .and_then(|s| serde_json::from_str::<HostStatus>(s).ok())
            .map(|s| Box::new(RemoteStatus::new(s, &mut self.strings)));
        let hold = Hold {
            relay,
            connected_ms: row.connected_ms,
            status,
        };
        match self.hosts.get_mut(row.host.as_str()) {
            Some(holds) => holds.push(hold),
            None => {
                self.hosts
                    .insert(row.host.into_boxed_str(), Holds::one(hold));
            }
        }
    }

    /// Replaces the rows of `hosts` with `rows` (read for exactly those hosts); whether any
    /// of those hosts' holds changed.
    pub fn set_hosts(&mut self, hosts: &[String], rows: Vec<PresenceRow>) -> bool {
        let before: Vec<Option<Holds>> = hosts
            .iter()
            .map(|h| self.hosts.remove(h.as_str()))
            .collect();
        for row in rows {
            self.add(row);
        }
        hosts
            .iter()
            .zip(&before)
            .any(|(h, old)| match (self.hosts.get(h.as_str()), old) {
                (None, None) => false,
                (Some(new), Some(old)) => !self.same_holds(new, self, old),
                _ => true,
            })
    }

    /// Whether `mine` (of this view) and `theirs` (of `other`) name the same relays, epochs
    /// and statuses in the same order.
    fn same_holds(&self, mine: &Holds, other: &Self, theirs: &Holds) -> bool {
        mine.len() == theirs.len()
            && mine.iter().zip(theirs.iter()).all(|(a, b)| {
                a.connected_ms == b.connected_ms
                    && a.status == b.status
                    && self.name(a.relay) == other.name(b.relay)
            })
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
    ) -> Vec<Holder<'_>> {
        let Some(holds) = self.hosts.get(host.as_str()) else {
            return Vec::new();
        };
        let mut out: Vec<Holder<'_>> = holds
            .iter()
            .filter_map(|h| {
                let relay = self.name(h.relay)?;
                (relay != local && self.is_alive(relay, now_ms, window_ms)).then_some(Holder {
                    relay,
                    connected_ms: h.connected_ms,
                    status: h.status.as_deref(),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.status
                .is_some()
                .cmp(&a.status.is_some())
                .then(b.connected_ms.cmp(&a.connected_ms))
                .then(a.relay.cmp(b.relay))
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

    /// Whether the registered, not retired relay `id` other than `local` presents `pin` (a
    /// peer's connection is checked at every stream; nothing is copied).
    pub fn is_peer_with_pin(&self, id: &RelayId, local: &RelayId, pin: &str) -> bool {
        id != local
            && self
                .relays
                .get(id)
                .is_some_and(|r| !r.retired && r.info.peer_pin == pin)
    }

    /// Whether what `other` shows differs from this view in anything a host list or routing
    /// depends on (rows, relays, which relays are alive at `now_ms`), ages aside.
    pub fn differs_from(&self, other: &Self, now_ms: u64, window_ms: u64) -> bool {
        self.hosts.len() != other.hosts.len()
            || self.hosts.iter().any(|(host, mine)| {
                other
                    .hosts
                    .get(host)
                    .is_none_or(|theirs| !self.same_holds(mine, other, theirs))
            })
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
mod tests;
