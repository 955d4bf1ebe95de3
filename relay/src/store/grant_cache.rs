//! Grants per user, cached in memory so that authorizing a stream needs no database round trip.
//!
//! Freshness: every grant change made through this process's [`Store`](super::Store) bumps a
//! generation at once; changes made by another process (the `cm-relay` CLI) are seen through
//! SQLite's `data_version`, polled at most every [`POLL_INTERVAL`] by the next lookup. An entry
//! filled under an older generation is never served.

use proto::ids::UserId;
use proto::rbac::Role;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How stale a grant change made by another process may be when a stream is authorized.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A user's grants as `(host or *, role)`.
pub type Grants = Arc<[(String, Role)]>;

/// Bumped on every grant change; shared between the store and the cache.
#[derive(Debug, Clone, Default)]
pub struct GrantGeneration(Arc<AtomicU64>);

impl GrantGeneration {
    /// Marks every cached entry stale.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// The current generation.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<UserId, (u64, Grants)>,
    /// Last `data_version` seen and when it was read.
    data_version: Option<i64>,
    polled_at: Option<Instant>,
}

/// The cache.
#[derive(Debug, Default)]
pub struct GrantCache {
    generation: GrantGeneration,
    inner: Mutex<Inner>,
}

impl GrantCache {
    /// A cache invalidated by `generation`.
    pub fn new(generation: GrantGeneration) -> Self {
        Self {
            generation,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether the other-process check is due at `now`.
    pub fn poll_due(&self, now: Instant) -> bool {
        self.lock()
            .polled_at
            .is_none_or(|at| now.duration_since(at) >= POLL_INTERVAL)
    }

    /// Records SQLite's `data_version` read at `now`; a change (a commit by another
    /// connection) invalidates everything.
    pub fn observe_data_version(&self, version: i64, now: Instant) {
        let mut inner = self.lock();
        if inner.data_version.is_some_and(|v| v != version) {
            self.generation.bump();
        }
        inner.data_version = Some(version);
        inner.polled_at = Some(now);
    }

    /// The generation to tag a lookup with; read it before querying the store.
    pub fn generation(&self) -> u64 {
        self.generation.current()
    }

    /// A fresh entry for `user`, if any.
    pub fn get(&self, user: &UserId) -> Option<Grants> {
        let current = self.generation.current();
        self.lock()
            .entries
            .get(user)
            .filter(|(generation, _)| *generation == current)
            .map(|(_, g)| Arc::clone(g))
    }

    /// Stores grants read under `generation`.
    pub fn put(&self, user: UserId, generation: u64, grants: Grants) {
        let mut inner = self.lock();
        if generation != self.generation.current() {
            return;
        }
        inner.entries.retain(|_, (g, _)| *g == generation);
        inner.entries.insert(user, (generation, grants));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(role: Role) -> Grants {
        Arc::from(vec![("*".to_owned(), role)])
    }

    #[test]
    fn a_bump_makes_entries_stale() {
        let generation = GrantGeneration::default();
        let cache = GrantCache::new(generation.clone());
        let alice = UserId::from("alice");
        let g = cache.generation();
        cache.put(alice.clone(), g, grants(Role::Admin));
        assert_eq!(cache.get(&alice).unwrap()[0].1, Role::Admin);
        generation.bump();
        assert!(cache.get(&alice).is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_change_is_not_stored() {
        let generation = GrantGeneration::default();
        let cache = GrantCache::new(generation.clone());
        let alice = UserId::from("alice");
        let before = cache.generation();
        generation.bump(); // a grant changed while the lookup ran
        cache.put(alice.clone(), before, grants(Role::Owner));
        assert!(cache.get(&alice).is_none());
    }

    #[test]
    fn another_process_commit_invalidates_at_the_next_poll() {
        let cache = GrantCache::new(GrantGeneration::default());
        let alice = UserId::from("alice");
        let t0 = Instant::now();
        assert!(cache.poll_due(t0));
        cache.observe_data_version(1, t0);
        assert!(!cache.poll_due(t0));
        cache.put(alice.clone(), cache.generation(), grants(Role::Viewer));
        cache.observe_data_version(1, t0 + POLL_INTERVAL);
        assert!(cache.get(&alice).is_some(), "same version: still fresh");
        assert!(cache.poll_due(t0 + 2 * POLL_INTERVAL));
        cache.observe_data_version(2, t0 + 2 * POLL_INTERVAL);
        assert!(cache.get(&alice).is_none());
    }
}
