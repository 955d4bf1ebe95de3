//! The sans-IO offline watch: a host this relay saw online that stays offline longer than the
//! threshold is reported once per offline spell. Hosts never seen online since the relay
//! started (retired machines) are never reported.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, Default)]
struct Spell {
    offline_since: Option<u64>,
    reported: bool,
}

/// Which hosts are offline since when.
#[derive(Debug, Default)]
pub struct OfflineWatch {
    after_ms: u64,
    hosts: HashMap<String, Spell>,
}

impl OfflineWatch {
    /// Reports hosts offline for `after_ms`.
    pub fn new(after_ms: u64) -> Self {
        Self {
            after_ms,
            hosts: HashMap::new(),
        }
    }

    /// The host's presence as seen at `now_ms`.
    pub fn observe(&mut self, host: &str, online: bool, now_ms: u64) {
        if online {
            self.hosts.insert(host.to_owned(), Spell::default());
        } else if let Some(spell) = self.hosts.get_mut(host)
            && spell.offline_since.is_none()
        {
            spell.offline_since = Some(now_ms);
        }
    }

    /// Forgets every host not in `known` (revoked or removed: never reported again). Runs on
    /// every presence change with every host of the fleet: a set lookup per host, never a scan
    /// of `known` (which made a connect flood of 10,000 agents quadratic).
    pub fn retain(&mut self, known: &[&str]) {
        let known: HashSet<&str> = known.iter().copied().collect();
        self.hosts.retain(|h, _| known.contains(h.as_str()));
    }

    /// Hosts whose offline spell passed the threshold at `now_ms` and were not reported yet,
    /// with their minutes offline.
    pub fn due(&mut self, now_ms: u64) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (host, spell) in &mut self.hosts {
            if let Some(since) = spell.offline_since
                && !spell.reported
                && now_ms.saturating_sub(since) >= self.after_ms
            {
                spell.reported = true;
                out.push((host.clone(), now_ms.saturating_sub(since) / 60_000));
            }
        }
        out.sort();
        out
    }
}

/// Presence changes are looked at no more often than this: a connect flood changes presence
/// thousands of times a second, and each look reads every host of the fleet.
pub const CHANGE_GAP_MS: u64 = 250;

/// When the notification task looks at presence (a store read of every host): after presence
/// changed, at most every [`CHANGE_GAP_MS`] (a change inside the gap is looked at when it
/// ends), else every `every_ms` (a host goes offline by silence, which changes nothing); never
/// merely because the task woke for something else.
#[derive(Debug, Clone)]
pub struct Cadence {
    every_ms: u64,
    last_ms: Option<u64>,
    change_pending: bool,
}

impl Cadence {
    /// Looks at least every `every_ms`.
    pub fn new(every_ms: u64) -> Self {
        Self {
            every_ms,
            last_ms: None,
            change_pending: false,
        }
    }

    /// Whether to look at `now_ms` (remembered when so): the first time, after a presence
    /// change once [`CHANGE_GAP_MS`] passed since the last look, or when the last look is
    /// `every_ms` old.
    pub fn look_now(&mut self, now_ms: u64, presence_changed: bool) -> bool {
        self.change_pending |= presence_changed;
        let due = now_ms >= self.next_ms();
        if due {
            self.last_ms = Some(now_ms);
            self.change_pending = false;
        }
        due
    }

    /// When the next look is due: the end of the gap after a change, else the tick.
    pub fn next_ms(&self) -> u64 {
        let wait = if self.change_pending {
            CHANGE_GAP_MS.min(self.every_ms)
        } else {
            self.every_ms
        };
        self.last_ms.map_or(0, |last| last.saturating_add(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_looked_at_on_changes_and_on_the_tick_not_on_every_wake() {
        let mut c = Cadence::new(1_000);
        assert!(c.look_now(5_000, false), "the first time");
        // Woken for offers, deliveries…: nothing new about presence.
        for t in [5_001, 5_200, 5_999] {
            assert!(!c.look_now(t, false), "{t}");
        }
        assert!(c.look_now(5_500, true), "a presence change");
        assert_eq!(c.next_ms(), 6_500);
        assert!(!c.look_now(6_499, false));
        assert!(c.look_now(6_500, false), "the tick");
        assert!(!c.look_now(6_501, false));
    }

    #[test]
    fn a_change_inside_the_gap_is_looked_at_when_the_gap_ends() {
        let mut c = Cadence::new(1_000);
        assert!(c.look_now(5_000, true));
        // A flood of changes: the next look waits for the gap, none is lost.
        assert!(!c.look_now(5_010, true));
        assert!(!c.look_now(5_100, false), "the change is still pending");
        assert_eq!(c.next_ms(), 5_000 + CHANGE_GAP_MS);
        assert!(
            c.look_now(5_000 + CHANGE_GAP_MS, false),
            "the pending change"
        );
        assert_eq!(c.next_ms(), 5_000 + CHANGE_GAP_MS + 1_000, "then the tick");
    }

    const MIN: u64 = 60_000;

    #[test]
    fn a_host_revoked_while_offline_is_not_reported() {
        let mut w = OfflineWatch::new(10 * MIN);
        w.observe("box", true, 0);
        w.observe("box", false, MIN);
        w.retain(&[]);
        assert!(w.due(20 * MIN).is_empty());
    }

    #[test]
    fn retain_keeps_exactly_the_known_hosts() {
        let mut w = OfflineWatch::new(10 * MIN);
        for host in ["a", "b", "c"] {
            w.observe(host, true, 0);
            w.observe(host, false, MIN);
        }
        w.retain(&["c", "a", "not-seen"]);
        let mut due = w.due(20 * MIN);
        due.sort();
        assert_eq!(due, [("a".to_owned(), 19), ("c".to_owned(), 19)]);
    }

    #[test]
    fn a_host_offline_longer_than_the_threshold_is_reported_once_per_spell() {
        let mut w = OfflineWatch::new(10 * MIN);
        w.observe("box", true, 0);
        w.observe("box", false, MIN);
        w.observe("box", false, 5 * MIN);
        assert!(w.due(10 * MIN).is_empty(), "9 minutes is not 10");
        assert_eq!(w.due(11 * MIN), [("box".to_owned(), 10)]);
        assert!(w.due(60 * MIN).is_empty(), "once per spell");
        // Back, and gone again: a new spell.
        w.observe("box", true, 61 * MIN);
        w.observe("box", false, 62 * MIN);
        assert!(w.due(63 * MIN).is_empty());
        assert_eq!(w.due(72 * MIN), [("box".to_owned(), 10)]);
    }

    #[test]
    fn a_host_back_within_the_threshold_and_one_never_seen_are_not_reported() {
        let mut w = OfflineWatch::new(10 * MIN);
        w.observe("box", true, 0);
        w.observe("box", false, MIN);
        w.observe("box", true, 5 * MIN);
        w.observe("retired", false, 0);
        assert!(w.due(100 * MIN).is_empty());
    }
}
