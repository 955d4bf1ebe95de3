//! Grants per user, cached in memory so that authorizing a stream needs no database round trip.
//! Kept after the store stopped blocking readers (issue 16): a read is still a hop to the
//! blocking pool and back, and bypassing this cache cost about
//! 70-100 µs of added hop p50 and two thirds of the 50-stream round trips per second in
//! scripts/bench.sh's scenarios (debug build, same machine and hour).
//!
//! Freshness: every grant change made through this process's writer bumps a generation at
//! once; changes made by another process (the `cm-relay` CLI) bump it when the writer notices
//! them (SQLite's `data_version`, checked after each batch and at least every
//! [`POLL_INTERVAL`]). An entry filled under an older generation is never served.

use parking_lot::Mutex;
use proto::ids::UserId;
use proto::rbac::Role;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Marks every entry stale (grants were changed elsewhere: another relay of the fleet).
    pub fn invalidate(&self) {
        self.generation.bump();
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
}
