//! Aggregation of unauthenticated refusals (malformed hellos, handshake timeouts) for the audit
//! trail: the first refusal from an address in a window is written in full; the ones after it
//! in the same window are only counted, and written as one summary row when the window is
//! over. An address flooding junk then costs one or two rows a minute, not one per attempt.
//! Handshakes and logins refused because the database is away are aggregated the same way
//! (each kind in windows of its own): their rows go to the audit spool, which must not grow
//! with a flood.

use std::collections::HashMap;
use std::net::IpAddr;

/// Length of one aggregation window (ms).
pub(crate) const WINDOW_MS: u64 = 60_000;
/// Addresses tracked at most; beyond it, new addresses share one "many addresses" bucket.
const MAX_TRACKED: usize = 100_000;
/// Expired windows are looked for at most this often (ms).
const SWEEP_EVERY_MS: u64 = 10_000;

/// Where the refusals were counted: one address (its limiter key), or every address that came
/// while the table was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// One address (an IPv4 address or an IPv6 /64).
    Addr(IpAddr),
    /// Addresses beyond the tracking bound.
    Many,
}

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A handshake before any credential was checked (a malformed hello, a timeout).
    Unauthenticated,
    /// A handshake whose credential could not be looked up: the database is away.
    HandshakeStoreAway,
    /// A login that could not be checked: the database is away.
    LoginStoreAway,
}

/// Refusals counted but not written, for one source's ended window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Whose refusals.
    pub(crate) source: Source,
    /// Which refusals.
    pub(crate) kind: Kind,
    /// How many were not written one by one.
    pub(crate) count: u32,
    /// When the window started (unix ms).
    pub(crate) since_ms: u64,
}

impl Summary {
    /// The reason text of the summary row.
    pub(crate) fn reason(&self) -> String {
        let what = match self.kind {
            Kind::Unauthenticated => "refused handshakes (malformed hello or timeout)",
            Kind::HandshakeStoreAway => "handshakes refused while the database was away",
            Kind::LoginStoreAway => "logins refused while the database was away",
        };
        format!(
            "{} more {what} in the {} s since {} ms, not written one by one",
            self.count,
            WINDOW_MS / 1000,
            self.since_ms
        )
    }
}

/// What to do with one refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Write this refusal's own row (the first of its window).
    pub(crate) write: bool,
    /// Summaries of windows that have ended, to write now.
    pub(crate) summaries: Vec<Summary>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: u64,
    suppressed: u32,
}

/// The per-source windows.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    by_source: HashMap<(Source, Kind), Window>,
    last_sweep_ms: u64,
}

impl RefusalLog {
    /// Notes one refusal before authentication from `addr` (its limiter key) at `now_ms`.
    pub(crate) fn note(&mut self, addr: IpAddr, now_ms: u64) -> Decision {
        self.note_kind(addr, Kind::Unauthenticated, now_ms)
    }

    /// Notes one refusal of `kind` from `addr` (its limiter key) at `now_ms`.
    pub(crate) fn note_kind(&mut self, addr: IpAddr, kind: Kind, now_ms: u64) -> Decision {
        let mut summaries = Vec::new();
        if now_ms >= self.last_sweep_ms.saturating_add(SWEEP_EVERY_MS)
            || self.by_source.len() >= MAX_TRACKED
        {
            self.last_sweep_ms = now_ms;
            summaries = self.sweep(now_ms);
        }
        let source = if self.by_source.len() < MAX_TRACKED
            || self.by_source.contains_key(&(Source::Addr(addr), kind))
        {
            Source::Addr(addr)
        } else {
            Source::Many
        };
        let write = match self.by_source.get_mut(&(source, kind)) {
            Some(w) if now_ms < w.start_ms.saturating_add(WINDOW_MS) => {
                w.suppressed = w.suppressed.saturating_add(1);
                false
            }
            Some(w) => {
                if w.suppressed > 0 {
                    summaries.push(Summary {
                        source,
                        kind,
                        count: w.suppressed,
                        since_ms: w.start_ms,
                    });
                }
                *w = Window {
                    start_ms: now_ms,
                    suppressed: 0,
                };
                true
            }
            None => {
                self.by_source.insert(
                    (source, kind),
                    Window {
                        start_ms: now_ms,
                        suppressed: 0,
                    },
                );
                true
            }
        };
        Decision { write, summaries }
    }

    /// Ends every window that is over (or all of them with `now_ms = u64::MAX`, at shutdown)
    /// and returns the summaries to write.
    pub(crate) fn sweep(&mut self, now_ms: u64) -> Vec<Summary> {
        let mut out = Vec::new();
        self.by_source.retain(|&(source, kind), w| {
            if now_ms < w.start_ms.saturating_add(WINDOW_MS) {
                return true;
            }
            if w.suppressed > 0 {
                out.push(Summary {
                    source,
                    kind,
                    count: w.suppressed,
                    since_ms: w.start_ms,
                });
            }
            false
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        [192, 0, 2, last].into()
    }

    #[test]
    fn one_row_per_address_per_window_then_a_count() {
        let mut log = RefusalLog::default();
        assert!(log.note(ip(1), 1_000).write, "the first is written");
        for i in 0..999 {
            let d = log.note(ip(1), 1_001 + i);
            assert!(!d.write && d.summaries.is_empty());
        }
        assert!(log.note(ip(2), 2_000).write, "other addresses are separate");
        let d = log.note(ip(1), 1_000 + WINDOW_MS);
        assert!(d.write, "a new window writes again");
        assert_eq!(
            d.summaries,
            [Summary {
                source: Source::Addr(ip(1)),
                kind: Kind::Unauthenticated,
                count: 999,
                since_ms: 1_000
            }]
        );
        assert!(
            d.summaries[0]
                .reason()
                .starts_with("999 more refused handshakes")
        );
    }

    #[test]
    fn a_quiet_address_is_summarised_by_the_next_sweep() {
        let mut log = RefusalLog::default();
        log.note(ip(1), 0);
        log.note(ip(1), 1);
        log.note(ip(1), 2);
        let d = log.note(ip(9), WINDOW_MS + SWEEP_EVERY_MS);
        assert_eq!(d.summaries.len(), 1);
        assert_eq!(d.summaries[0].count, 2);
        assert_eq!(
            log.sweep(u64::MAX).len(),
            0,
            "nothing was suppressed for ip(9)"
        );
    }
}
