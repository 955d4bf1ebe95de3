//! Failure limits: after `max` failures within `window_ms` from one key (a source address, or a
//! user name for login lockout), that key is refused without doing the costly work until the
//! window passes. The refusal says how long is left.

use std::collections::HashMap;
use std::hash::Hash;

/// Failed handshakes or logins allowed per source address per window.
pub(crate) const ADDR_MAX_FAILURES: u32 = 20;
/// The per-address window (ms).
pub(crate) const ADDR_WINDOW_MS: u64 = 60_000;
/// Failed logins allowed per user before the account is locked.
pub(crate) const USER_MAX_FAILURES: u32 = 5;
/// How long a user lockout lasts from the first failure (ms).
pub(crate) const USER_WINDOW_MS: u64 = 300_000;
/// Keys tracked at most (expired windows are dropped beyond it).
const MAX_TRACKED: usize = 100_000;

/// Failure counts per key.
#[derive(Debug)]
pub(crate) struct FailureLimiter<K> {
    max: u32,
    window_ms: u64,
    by_key: HashMap<K, (u32, u64)>,
}

impl<K: Hash + Eq> FailureLimiter<K> {
    /// A limiter allowing `max` failures per `window_ms`.
    pub(crate) fn new(max: u32, window_ms: u64) -> Self {
        Self {
            max,
            window_ms,
            by_key: HashMap::new(),
        }
    }

    /// Milliseconds until `key` may try again, if it is blocked now.
    pub(crate) fn blocked_for(&self, key: &K, now_ms: u64) -> Option<u64> {
        let &(count, start) = self.by_key.get(key)?;
        let end = start.saturating_add(self.window_ms);
        (count >= self.max && now_ms < end).then(|| end - now_ms)
    }

    /// Records one failure.
    pub(crate) fn record_failure(&mut self, key: K, now_ms: u64) {
        if self.by_key.len() >= MAX_TRACKED {
            let window = self.window_ms;
            self.by_key
                .retain(|_, (_, start)| now_ms < start.saturating_add(window));
        }
        let window = self.window_ms;
        let entry = self.by_key.entry(key).or_insert((0, now_ms));
        if now_ms >= entry.1.saturating_add(window) {
            *entry = (0, now_ms);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets a key's failures (after a success).
    pub(crate) fn clear(&mut self, key: &K) {
        self.by_key.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let mut l = FailureLimiter::new(ADDR_MAX_FAILURES, ADDR_WINDOW_MS);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..ADDR_MAX_FAILURES - 1 {
            l.record_failure(a, 1_000);
        }
        assert_eq!(l.blocked_for(&a, 1_000), None);
        l.record_failure(a, 1_000);
        assert_eq!(l.blocked_for(&a, 1_000), Some(ADDR_WINDOW_MS));
        assert_eq!(l.blocked_for(&a, 31_000), Some(ADDR_WINDOW_MS - 30_000));
        assert_eq!(l.blocked_for(&b, 1_000), None, "other keys are unaffected");
        assert_eq!(
            l.blocked_for(&a, 1_000 + ADDR_WINDOW_MS),
            None,
            "lifts after the window"
        );
        l.record_failure(a, 1_000 + ADDR_WINDOW_MS);
        assert_eq!(
            l.blocked_for(&a, 1_000 + ADDR_WINDOW_MS),
            None,
            "a new window starts"
        );
    }

    #[test]
    fn success_clears_a_user() {
        let mut l = FailureLimiter::new(2, 1_000);
        l.record_failure("bob".to_owned(), 0);
        l.clear(&"bob".to_owned());
        l.record_failure("bob".to_owned(), 0);
        assert_eq!(l.blocked_for(&"bob".to_owned(), 0), None);
        l.record_failure("bob".to_owned(), 0);
        assert_eq!(l.blocked_for(&"bob".to_owned(), 0), Some(1_000));
    }
}
