//! A bounded window of recently seen handshake nonces.
//!
//! An `h1` is accepted only if its timestamp is within the allowed skew of `now`, so a nonce only
//! needs remembering for that long: entries older than the skew are pruned. The window also has
//! a hard entry cap. Nonces are inserted only after the MAC verified, so only holders of a valid
//! key can fill it; when it is full we fail closed (refuse) rather than forget a live nonce.

use std::collections::{HashSet, VecDeque};

/// Default cap on remembered nonces: 65 536 × ~48 bytes ≈ 3 MiB, far above the handshake rate a
/// single relay sees within the 30 s skew window.
pub const DEFAULT_REPLAY_CAPACITY: usize = 65_536;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The nonce was already used within the window.
    #[error("nonce already seen")]
    Replayed,
    /// The window is full of live nonces.
    #[error("replay window full")]
    Full,
}

/// Remembers nonces for `horizon_ms` after their timestamp, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    capacity: usize,
    horizon_ms: u64,
    /// Insertion order, for pruning; timestamps are the clients' (already skew-checked).
    order: VecDeque<([u8; 32], u64)>,
    seen: HashSet<[u8; 32]>,
}

impl ReplayWindow {
    /// A window remembering nonces for `horizon_ms` (at least the allowed clock skew, both ways).
    pub fn new(capacity: usize, horizon_ms: u64) -> Self {
        Self {
            capacity,
            horizon_ms,
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Number of nonces remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records `nonce` (timestamped `ts_ms`) if it is new.
    pub fn check_and_insert(
        &mut self,
        nonce: [u8; 32],
        ts_ms: u64,
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        self.prune(now_ms);
        if self.seen.contains(&nonce) {
            return Err(ReplayError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full);
        }
        self.seen.insert(nonce);
        self.order.push_back((nonce, ts_ms));
        Ok(())
    }

    /// Forgets nonces whose timestamp is older than the horizon. Entries are pruned in insertion
    /// order while they are expired; a rare out-of-order timestamp is kept a little longer, which
    /// only errs on the safe side.
    fn prune(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.horizon_ms);
        while let Some(&(nonce, ts)) = self.order.front() {
            if ts >= cutoff {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_inside_window_is_refused() {
        let mut w = ReplayWindow::new(8, 60_000);
        w.check_and_insert([1; 32], 1_000, 1_000).unwrap();
        assert_eq!(
            w.check_and_insert([1; 32], 1_000, 30_000),
            Err(ReplayError::Replayed)
        );
        w.check_and_insert([2; 32], 1_000, 30_000).unwrap();
    }

    #[test]
    fn old_nonces_are_forgotten_after_the_horizon() {
        let mut w = ReplayWindow::new(8, 60_000);
        w.check_and_insert([1; 32], 1_000, 1_000).unwrap();
        assert_eq!(w.len(), 1);
        // At exactly the horizon it is still remembered...
        assert_eq!(
            w.check_and_insert([1; 32], 1_000, 61_000),
            Err(ReplayError::Replayed)
        );
        // ...one millisecond later it is gone (the skew check refuses such an old h1 anyway).
        w.check_and_insert([3; 32], 61_001, 61_001).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn full_window_fails_closed() {
        let mut w = ReplayWindow::new(2, 60_000);
        w.check_and_insert([1; 32], 0, 0).unwrap();
        w.check_and_insert([2; 32], 0, 0).unwrap();
        assert_eq!(w.check_and_insert([3; 32], 0, 0), Err(ReplayError::Full));
        // Once the old ones age out, there is room again.
        w.check_and_insert([3; 32], 70_000, 70_000).unwrap();
    }
}
