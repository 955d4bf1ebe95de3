//! Small bounded memories that make retries safe: prompt idempotency keys (a retried prompt is
//! answered with the first result and never reaches OpenCode twice) and request ids the agent
//! already answered (so a second answer is reported as a conflict, not as "unknown"). Pure.

use proto::ops::PromptAccepted;
use std::collections::{HashMap, VecDeque};

/// Prompt keys remembered per workspace. A client retries within seconds; this covers hours of
/// heavy use.
pub const MAX_PROMPT_KEYS: usize = 4096;
/// Answered request ids remembered per workspace.
pub const MAX_ANSWERED: usize = 4096;
/// Longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 256;

/// Insertion-ordered map that forgets its oldest entries beyond a capacity.
#[derive(Debug, Clone)]
pub struct Bounded<V> {
    map: HashMap<String, V>,
    order: VecDeque<String>,
    cap: usize,
}

impl<V> Bounded<V> {
    /// Remembers at most `cap` entries.
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// Whether `key` is remembered.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Remembers `key` (the first value wins; a repeated insert is ignored).
    pub fn insert(&mut self, key: String, value: V) {
        if self.map.contains_key(&key) {
            return;
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// What a prompt with a known key gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time: send it.
    New,
    /// A retry: answer with this (marked as a duplicate).
    Duplicate(PromptAccepted),
    /// The key was used for another session: refuse.
    OtherSession {
        /// The session it was used for.
        session: String,
    },
}

/// Prompt idempotency record of one workspace.
#[derive(Debug, Clone)]
pub struct PromptRecord(Bounded<PromptAccepted>);

impl Default for PromptRecord {
    fn default() -> Self {
        Self(Bounded::new(MAX_PROMPT_KEYS))
    }
}

impl PromptRecord {
    /// Looks `key` up for a prompt to `session`.
    pub fn check(&self, key: &str, session: &str) -> Recorded {
        match self.0.get(key) {
            None => Recorded::New,
            Some(first) if first.session == session => Recorded::Duplicate(PromptAccepted {
                duplicate: true,
                ..first.clone()
            }),
            Some(first) => Recorded::OtherSession {
                session: first.session.clone(),
            },
        }
    }

    /// Records the first result for `key`.
    pub fn record(&mut self, key: &str, accepted: &PromptAccepted) {
        self.0.insert(key.to_owned(), accepted.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(session: &str, mid: &str) -> PromptAccepted {
        PromptAccepted {
            session: session.into(),
            message_id: mid.into(),
            duplicate: false,
        }
    }

    #[test]
    fn a_retry_gets_the_first_result() {
        let mut r = PromptRecord::default();
        assert_eq!(r.check("k1", "ses_a"), Recorded::New);
        r.record("k1", &accepted("ses_a", "msg_1"));
        assert_eq!(
            r.check("k1", "ses_a"),
            Recorded::Duplicate(PromptAccepted {
                duplicate: true,
                ..accepted("ses_a", "msg_1")
            })
        );
        // A later record under the same key does not replace the first.
        r.record("k1", &accepted("ses_a", "msg_2"));
        assert!(
            matches!(r.check("k1", "ses_a"), Recorded::Duplicate(p) if p.message_id == "msg_1")
        );
        assert_eq!(
            r.check("k1", "ses_b"),
            Recorded::OtherSession {
                session: "ses_a".into()
            }
        );
    }

    #[test]
    fn memory_is_bounded_oldest_first() {
        let mut b = Bounded::new(3);
        for i in 0..5 {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(b.len(), 3);
        assert!(!b.contains("k0") && !b.contains("k1"));
        assert_eq!(b.get("k4"), Some(&4));
        assert!(!b.is_empty());
    }
}
