//! Reconnect timing for everything that dials the relay, as a pure function of the attempt
//! number and a random draw: capped exponential backoff, forever (design §7), jittered so a
//! fleet that lost its relay at once does not return at once, and reset once a connection
//! stayed up. One machine, two settings: agents ([`Policy::AGENT`]) and operators
//! ([`Policy::OPERATOR`]).

use std::time::Duration;

/// Spread of reconnects after a relay announced a restart: each peer waits a random delay
/// below this, so they do not all hit the new relay in the same millisecond.
pub const RESTART_SPREAD: Duration = Duration::from_millis(1_000);

/// How a delay is drawn below its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`: the widest spread.
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`: never (close to) zero.
    Equal,
}

/// The reconnect policy's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Ceiling of the first delayed retry; each later one doubles it.
    pub base: Duration,
    /// Cap on any single delay.
    pub cap: Duration,
    /// A connection that stayed up this long resets the attempt counter.
    pub stable_after: Duration,
    /// Whether the first retry after a stable connection is immediate.
    pub first_retry_immediate: bool,
    /// How the delay is drawn below its ceiling.
    pub jitter: Jitter,
}

impl Policy {
    /// Agents: the first retry is immediate (a blip costs nothing), later ones use full jitter
    /// from 250 ms up to 30 s, so thousands of hosts spread out.
    pub const AGENT: Self = Self {
        base: Duration::from_millis(250),
        cap: Duration::from_secs(30),
        stable_after: Duration::from_secs(30),
        first_retry_immediate: true,
        jitter: Jitter::Full,
    };

    /// Operators: the wait is never zero (the screen shows it, and a user's retry key skips it)
    /// and grows from 1 s to 30 s with equal jitter, so operators do not retry in lockstep.
    pub const OPERATOR: Self = Self {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(30),
        stable_after: Duration::from_secs(30),
        first_retry_immediate: false,
        jitter: Jitter::Equal,
    };

    /// The delay before attempt `attempt` (0-based since the last reset); `random` is a uniform
    /// u64.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let doublings = if self.first_retry_immediate {
            match attempt.checked_sub(1) {
                None => return Duration::ZERO,
                Some(n) => n,
            }
        } else {
            attempt
        };
        let ceiling = self
            .base
            .saturating_mul(1u32 << doublings.min(16))
            .min(self.cap);
        match self.jitter {
            Jitter::Full => jitter(ceiling, random),
            Jitter::Equal => {
                let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
                let half = ms / 2;
                Duration::from_millis(half + random % (ms - half + 1))
            }
        }
    }
}

/// Reconnect attempt state under one [`Policy`].
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    attempt: u32,
}

impl Backoff {
    /// A fresh state.
    pub fn new(policy: Policy) -> Self {
        Self { policy, attempt: 0 }
    }

    /// Number of failed attempts since the last stable connection.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt; `random` is a uniform u64.
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let d = self.policy.delay(self.attempt, random);
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    /// A connection ended after being up for `up`: past failures are forgotten if it was
    /// stable.
    pub fn connection_lasted(&mut self, up: Duration) {
        if up >= self.policy.stable_after {
            self.reset();
        }
    }

    /// Forgets past failures (a stable connection, or the user asked to reconnect now).
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
    fn agent_first_retry_is_immediate_then_grows_to_the_cap() {
        let cap = Policy::AGENT.cap;
        let mut b = Backoff::new(Policy::AGENT);
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
            assert!(b.next_delay(u64::MAX) <= cap);
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

    #[test]
    fn operator_backoff_grows_to_the_cap_and_never_reaches_zero() {
        let p = Policy::OPERATOR;
        let max: Vec<u128> = (0..10).map(|n| p.delay(n, u64::MAX).as_millis()).collect();
        assert!(max.windows(2).all(|w| w[0] <= w[1]), "{max:?}");
        assert_eq!(p.delay(0, 0), Duration::from_millis(500));
        assert_eq!(p.delay(3, 0), Duration::from_secs(4));
        for n in [5, 6, 20, u32::MAX] {
            for r in [0, 1, 12_345, u64::MAX] {
                let d = p.delay(n, r);
                assert!(d <= p.cap, "{n} {r} {d:?}");
                assert!(d >= p.cap / 2, "{n} {r} {d:?}");
            }
        }
    }

    #[test]
    fn equal_jitter_spreads_within_the_upper_half() {
        let p = Policy::OPERATOR;
        assert_eq!(p.delay(2, 0), Duration::from_millis(2_000));
        assert_eq!(p.delay(2, 1_999), Duration::from_millis(3_999));
        assert_eq!(p.delay(2, 2_000), Duration::from_millis(4_000));
    }

    #[test]
    fn a_stable_connection_resets_the_attempts_and_a_short_one_does_not() {
        let mut b = Backoff::new(Policy::OPERATOR);
        b.next_delay(0);
        b.next_delay(0);
        b.connection_lasted(Duration::from_secs(29));
        assert_eq!(b.attempt(), 2);
        b.connection_lasted(Duration::from_secs(30));
        assert_eq!(b.attempt(), 0);
    }
}
