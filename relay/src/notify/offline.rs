//! The sans-IO offline watch: a host this relay saw online that stays offline longer than the
//! threshold is reported once per offline spell. Hosts never seen online since the relay
//! started (retired machines) are never reported.

use std::collections::HashMap;

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

    /// Forgets every host not in `known` (revoked or removed: never reported again).
    pub fn retain(&mut self, known: &[&str]) {
        self.hosts.retain(|h, _| known.contains(&h.as_str()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
