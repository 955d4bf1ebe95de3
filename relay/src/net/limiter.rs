//! Rate limit for failed handshakes and logins per source address: after too many failures in a
//! window, that address is refused without doing the (costly) work, until the window passes.

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures allowed per address per window before it is blocked.
pub(crate) const MAX_FAILURES: u32 = 20;
/// The window (ms).
pub(crate) const WINDOW_MS: u64 = 60_000;
/// Addresses tracked at most (oldest windows are dropped beyond it).
const MAX_TRACKED: usize = 100_000;

/// Failure counts per address.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    by_addr: HashMap<IpAddr, (u32, u64)>,
}

impl FailureLimiter {
    /// Milliseconds until `addr` may try again, if it is blocked now.
    pub(crate) fn blocked_for(&self, addr: IpAddr, now_ms: u64) -> Option<u64> {
        let &(count, start) = self.by_addr.get(&addr)?;
        let end = start.saturating_add(WINDOW_MS);
        (count >= MAX_FAILURES && now_ms < end).then(|| end - now_ms)
    }

    /// Records one failure from `addr`.
    pub(crate) fn record_failure(&mut self, addr: IpAddr, now_ms: u64) {
        if self.by_addr.len() >= MAX_TRACKED {
            self.by_addr
                .retain(|_, (_, start)| now_ms < start.saturating_add(WINDOW_MS));
        }
        let entry = self.by_addr.entry(addr).or_insert((0, now_ms));
        if now_ms >= entry.1.saturating_add(WINDOW_MS) {
            *entry = (0, now_ms);
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let mut l = FailureLimiter::default();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..MAX_FAILURES - 1 {
            l.record_failure(a, 1_000);
        }
        assert_eq!(l.blocked_for(a, 1_000), None);
        l.record_failure(a, 1_000);
        assert_eq!(l.blocked_for(a, 1_000), Some(WINDOW_MS));
        assert_eq!(
            l.blocked_for(b, 1_000),
            None,
            "other addresses are unaffected"
        );
        assert_eq!(l.blocked_for(a, 1_000 + WINDOW_MS), None);
        l.record_failure(a, 1_000 + WINDOW_MS);
        assert_eq!(
            l.blocked_for(a, 1_000 + WINDOW_MS),
            None,
            "a new window starts"
        );
    }
}
