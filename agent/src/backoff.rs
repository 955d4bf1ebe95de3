//! Reconnect timing, as a pure function of the attempt number and a random draw: the first
//! retry is immediate, later ones use full-jitter exponential backoff capped at 30 s, so a fleet
//! that lost its relay at once does not return at once.

use std::time::Duration;

/// Base delay of the exponential backoff.
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Cap on any single delay (design §7: capped backoff, forever).
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A connection that stayed up this long resets the attempt counter.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Spread of reconnects after a relay announced a restart: each agent waits a random delay
/// below this, so they do not all hit the new relay in the same millisecond.
pub const RESTART_SPREAD: Duration = Duration::from_millis(1_000);

/// Reconnect attempt state.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// A fresh state: the next retry is immediate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of failed attempts since the last stable connection.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; `random` is a uniform u64.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        if attempt == 0 {
            return Duration::ZERO;
        }
        let exp = BACKOFF_BASE.saturating_mul(1u32 << (attempt - 1).min(16));
        let ceiling = exp.min(BACKOFF_CAP);
        jitter(ceiling, random)
    }

    /// Forgets past failures (after a connection stayed up).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A uniform delay in `[0, ceiling]` from `random`.
pub fn jitter(ceiling: Duration, random: u64) -> Duration {
    let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(if ms == 0 { 0 } else { random % (ms + 1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_retry_is_immediate_then_grows_to_the_cap() {
        let mut b = Backoff::new();
        assert_eq!(b.next_delay(u64::MAX), Duration::ZERO);
        // A draw equal to the ceiling (in ms) gives the ceiling itself: 250 ms doubling to 30 s.
        let ceilings: Vec<u128> = (1..=10u32)
            .map(|n| {
                let ceiling = (250u64 << (n - 1)).min(30_000);
                b.next_delay(ceiling).as_millis()
            })
            .collect();
        assert_eq!(
            ceilings,
            vec![250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        for _ in 0..50 {
            assert!(b.next_delay(u64::MAX) <= BACKOFF_CAP);
        }
        b.reset();
        assert_eq!(b.next_delay(12345), Duration::ZERO);
    }

    #[test]
    fn full_jitter_spans_zero_to_ceiling() {
        assert_eq!(jitter(Duration::from_millis(1000), 0), Duration::ZERO);
        assert_eq!(
            jitter(Duration::from_millis(1000), 1000),
            Duration::from_millis(1000)
        );
        assert_eq!(jitter(Duration::from_millis(1000), 1001), Duration::ZERO);
        assert_eq!(jitter(Duration::ZERO, 77), Duration::ZERO);
    }
}
