//! The end-to-end channels a zero-trust host has opened: bounded (the least recently used one
//! goes first) and forgotten after an hour unused. A forgotten channel costs the operator one
//! `e2e_open` (the agent answers `e2e_channel_unknown` and the client re-opens and retries).
//! Pure apart from its lock: times are passed in.

use cm_client::e2e::{Channel, ChannelId};
use parking_lot::Mutex;
use proto::ids::UserId;
use proto::trust::{Cert, PublicKey};
use std::collections::HashMap;
use std::sync::Arc;

/// Most channels held at once.
pub(crate) const MAX_CHANNELS: usize = 4096;
/// A channel unused this long is forgotten.
pub(crate) const IDLE_MS: u64 = 60 * 60 * 1000;

/// One opened channel and who opened it.
#[derive(Debug)]
pub struct OpenChannel {
    /// The channel (its key derives every stream's keys).
    pub channel: Channel,
    /// The user whose device key signed the `e2e_open`.
    pub user: UserId,
    /// That device key: every stream on the channel must be signed by it.
    pub key: PublicKey,
    /// The certificates shown in the handshake (the role is recomputed from them per request,
    /// so a new revocation applies at once).
    pub certs: Vec<Cert>,
}

#[derive(Debug)]
struct Slot {
    open: Arc<OpenChannel>,
    last_used_ms: u64,
}

/// The table (see the module docs). One per agent, on `Workspaces`.
#[derive(Debug)]
pub struct ChannelTable {
    slots: Mutex<HashMap<ChannelId, Slot>>,
    cap: usize,
    idle_ms: u64,
}

impl Default for ChannelTable {
    fn default() -> Self {
        Self::new(MAX_CHANNELS, IDLE_MS)
    }
}

impl ChannelTable {
    /// A table of at most `cap` channels, each forgotten after `idle_ms` unused.
    pub fn new(cap: usize, idle_ms: u64) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            cap: cap.max(1),
            idle_ms,
        }
    }

    /// Keeps `open`, dropping idle channels and, when full, the least recently used one.
    pub fn insert(&self, open: OpenChannel, now_ms: u64) {
        let mut slots = self.slots.lock();
        let idle = self.idle_ms;
        slots.retain(|_, s| now_ms.saturating_sub(s.last_used_ms) <= idle);
        while slots.len() >= self.cap {
            let oldest = slots
                .iter()
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => slots.remove(&id),
                None => break,
            };
        }
        slots.insert(
            open.channel.id(),
            Slot {
                open: Arc::new(open),
                last_used_ms: now_ms,
            },
        );
    }

    /// The channel `id`, marked used now; `None` when unknown or idle too long.
    pub fn get(&self, id: &ChannelId, now_ms: u64) -> Option<Arc<OpenChannel>> {
        let mut slots = self.slots.lock();
        let slot = slots.get_mut(id)?;
        if now_ms.saturating_sub(slot.last_used_ms) > self.idle_ms {
            slots.remove(id);
            return None;
        }
        slot.last_used_ms = slot.last_used_ms.max(now_ms);
        Some(Arc::clone(&slot.open))
    }

    /// The channel `id` without marking it used: for finding the key that authenticates a
    /// header, before it did (so unauthenticated headers cannot keep an idle channel alive).
    pub fn peek(&self, id: &ChannelId, now_ms: u64) -> Option<Arc<OpenChannel>> {
        let slots = self.slots.lock();
        let slot = slots.get(id)?;
        (now_ms.saturating_sub(slot.last_used_ms) <= self.idle_ms).then(|| Arc::clone(&slot.open))
    }

    /// Forgets the channel `id` (its operator sent a bad signature under its MAC); the
    /// operator's next stream gets `e2e_channel_unknown`.
    pub fn remove(&self, id: &ChannelId) -> bool {
        self.slots.lock().remove(id).is_some()
    }

    /// Number of channels held.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_client::e2e::{HostKeyPair, accept_channel, open_channel};

    fn channel(host: &HostKeyPair) -> Channel {
        let (_pending, msg1) = open_channel(&host.public(), b"[]").unwrap();
        accept_channel(host, &msg1).unwrap().0
    }

    fn open(host: &HostKeyPair) -> OpenChannel {
        OpenChannel {
            channel: channel(host),
            user: UserId::from("ana"),
            key: proto::trust::DeviceKey::from_seed([1; 32])
                .unwrap()
                .public(),
            certs: Vec::new(),
        }
    }

    #[test]
    fn looking_a_channel_up_before_its_header_is_authenticated_keeps_it_no_longer() {
        let host = HostKeyPair::from_secret([7; 32]);
        let table = ChannelTable::new(4, IDLE_MS);
        let (a, b) = (open(&host), open(&host));
        let (peeked, used) = (a.channel.id(), b.channel.id());
        table.insert(a, 0);
        table.insert(b, 0);
        assert!(table.peek(&peeked, IDLE_MS).is_some());
        assert!(table.get(&used, IDLE_MS).is_some());
        // An idle time later the peeked one is gone; the one a header used is kept.
        assert!(table.peek(&peeked, IDLE_MS + 1).is_none());
        assert!(table.get(&peeked, IDLE_MS + 1).is_none());
        assert!(table.get(&used, IDLE_MS + 1).is_some());
    }

    #[test]
    fn channel_flood_keeps_at_most_cap_and_drops_the_least_recently_used() {
        let host = HostKeyPair::from_secret([7; 32]);
        let table = ChannelTable::new(2, IDLE_MS);
        let (a, b, c) = (open(&host), open(&host), open(&host));
        let (ida, idb, idc) = (a.channel.id(), b.channel.id(), c.channel.id());
        table.insert(a, 1);
        table.insert(b, 2);
        assert!(
            table.get(&ida, 3).is_some(),
            "a used again: b is now oldest"
        );
        table.insert(c, 4);
        assert_eq!(table.len(), 2);
        assert!(table.get(&idb, 5).is_none());
        assert!(table.get(&ida, 5).is_some() && table.get(&idc, 5).is_some());
    }

    #[test]
    fn an_idle_channel_is_forgotten() {
        let host = HostKeyPair::from_secret([7; 32]);
        let table = ChannelTable::new(8, 100);
        let a = open(&host);
        let id = a.channel.id();
        table.insert(a, 1_000);
        assert!(table.get(&id, 1_100).is_some());
        assert!(table.get(&id, 1_201).is_none());
        assert!(table.is_empty());
    }

    #[test]
    fn a_removed_channel_is_gone_and_the_others_stay() {
        let host = HostKeyPair::from_secret([7; 32]);
        let table = ChannelTable::new(8, IDLE_MS);
        let (a, b) = (open(&host), open(&host));
        let (ida, idb) = (a.channel.id(), b.channel.id());
        table.insert(a, 1);
        table.insert(b, 1);
        assert!(table.remove(&ida));
        assert!(!table.remove(&ida));
        assert!(table.get(&ida, 2).is_none());
        assert!(table.get(&idb, 2).is_some());
    }
}
