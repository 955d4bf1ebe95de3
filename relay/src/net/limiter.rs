//! Failure limits: after `max` failures within `window_ms` from one key (a source address, or a
//! user name for login lockout), that key is refused without doing the costly work until the
//! window passes. The refusal says how long is left.
//!
//! Costly attempts (a password check) are reserved *before* the work ([`FailureLimiter::try_reserve`])
//! and handed back when they succeed, so that concurrent attempts cannot all pass the check
//! before the first failure is counted. Addresses are keyed by [`addr_key`]: one IPv6 /64 is one
//! key, since a single host usually holds a whole /64.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

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

    /// Counts one attempt before doing the work: `Err(ms left)` if the key is blocked (nothing
    /// is counted), else the attempt is counted as a failure until [`Self::refund`] or
    /// [`Self::clear`] hands it back.
    pub(crate) fn try_reserve(&mut self, key: K, now_ms: u64) -> Result<(), u64> {
        if let Some(wait) = self.blocked_for(&key, now_ms) {
            return Err(wait);
        }
        self.record_failure(key, now_ms);
        Ok(())
    }

    /// Hands back one reserved attempt that turned out not to be a failure.
    pub(crate) fn refund(&mut self, key: &K) {
        if let Some(entry) = self.by_key.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
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

/// The key a source address is limited under: an IPv4 address (also when it arrives
/// IPv4-mapped), or an IPv6 address's /64 network.
pub(crate) fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
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

    #[test]
    fn concurrent_reservations_stop_at_the_limit() {
        let mut l = FailureLimiter::new(USER_MAX_FAILURES, USER_WINDOW_MS);
        let granted = (0..100)
            .filter(|_| l.try_reserve("bob".to_owned(), 0).is_ok())
            .count();
        assert_eq!(granted, USER_MAX_FAILURES as usize);
        assert_eq!(
            l.try_reserve("bob".to_owned(), 0),
            Err(USER_WINDOW_MS),
            "a refused reservation says how long is left"
        );
        l.refund(&"bob".to_owned());
        assert!(
            l.try_reserve("bob".to_owned(), 0).is_ok(),
            "a refunded attempt frees its place"
        );
    }

    #[test]
    fn one_ipv6_slash_64_is_one_key() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(addr_key(mapped), IpAddr::from([192, 0, 2, 7]));
        let v4: IpAddr = [192, 0, 2, 7].into();
        assert_eq!(addr_key(v4), v4);
        let mut l = FailureLimiter::new(2, 1_000);
        l.record_failure(addr_key(a), 0);
        l.record_failure(addr_key(b), 0);
        assert!(l.blocked_for(&addr_key(a), 0).is_some());
    }
}
