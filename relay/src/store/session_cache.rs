//! Session owners, cached in memory so that authorizing a stream that names a session (most of
//! what a TUI sends) needs no store round trip. Reads no longer wait for the writer's sync
//! (they run on read-only connections), but each is still a hop to the blocking pool and
//! back. Kept on the evidence of the grant cache (issue 16, see `grant_cache.rs`): bypassing
//! that one read per stream cost about 70-100 µs of added hop p50 and two thirds of the
//! 50-stream round trips; a session lookup is the same kind of read (the bench's streams name
//! no session, so this cache was not measured on its own).
//!
//! Exact, because of how the `sessions` table is written: rows are only ever added, by the
//! relay process, through [`StoreHandle::set_session_owner`], and never change (`INSERT OR
//! IGNORE`: the first creator stays the owner). A known owner is therefore kept for good. A
//! lookup that found no owner is kept only if no owner was recorded while it ran (a generation
//! that every recording bumps), and each recording drops the entry it concerns, so the next
//! lookup reads the store.

use super::{StoreError, StoreHandle};
use parking_lot::Mutex;
use proto::ids::{HostId, UserId};
use std::collections::HashMap;

/// At most this many sessions are remembered; beyond, the cache starts over (memory bound).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Default)]
struct Inner {
    owners: HashMap<(HostId, String), Option<UserId>>,
    generation: u64,
}

/// The cache.
#[derive(Debug, Default)]
pub(super) struct SessionCache {
    inner: Mutex<Inner>,
}

impl SessionCache {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// The cached answer for a session: `Some(owner or None)` when known.
    fn get(&self, host: &HostId, session: &str) -> Option<Option<UserId>> {
        self.lock()
            .owners
            .get(&(host.clone(), session.to_owned()))
            .cloned()
    }

    /// The generation to tag a lookup with; read it before querying the store.
    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps what a lookup started at `generation` found.
    fn put(&self, host: &HostId, session: &str, generation: u64, owner: Option<UserId>) {
        let mut inner = self.lock();
        if owner.is_none() && generation != inner.generation {
            return; // an owner was recorded meanwhile: this miss may be stale
        }
        if inner.owners.len() >= MAX_ENTRIES {
            inner.owners.clear();
        }
        inner
            .owners
            .insert((host.clone(), session.to_owned()), owner);
    }

    /// An owner was (maybe) recorded for this session: forget what was known about it.
    fn recorded(&self, host: &HostId, session: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.owners.remove(&(host.clone(), session.to_owned()));
    }
}

impl StoreHandle {
    /// The owner of a session, if CodeMantle saw it created; from the cache when known.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn session_owner(
        &self,
        host: &HostId,
        session: &str,
    ) -> Result<Option<UserId>, StoreError> {
        if let Some(owner) = self.sessions.get(host, session) {
            return Ok(owner);
        }
        let generation = self.sessions.generation();
        let (h, s) = (host.clone(), session.to_owned());
        let owner = self.read(move |st| st.session_owner(&h, &s)).await?;
        self.sessions.put(host, session, generation, owner.clone());
        Ok(owner)
    }

    /// Records who created a session (the first creator stays the owner). The only way the
    /// relay writes session owners, so that the cache stays exact.
    ///
    /// # Errors
    /// SQLite failures.
    pub async fn set_session_owner(
        &self,
        host: &HostId,
        session: &str,
        owner: &UserId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let (h, s, o) = (host.clone(), session.to_owned(), owner.clone());
        let result = self
            .call(move |st| st.set_session_owner(&h, &s, &o, now_ms))
            .await;
        self.sessions.recorded(host, session);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn handle() -> StoreHandle {
        StoreHandle::new(SqliteStore::open_in_memory().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_recorded_owner_is_seen_at_once_and_the_first_creator_stays() {
        let h = handle();
        let host = HostId::from("box");
        // An unknown session is nobody's, and that answer is cached ...
        assert_eq!(h.session_owner(&host, "ses_1").await.unwrap(), None);
        assert_eq!(h.sessions.get(&host, "ses_1"), Some(None));
        // ... until its owner is recorded.
        h.set_session_owner(&host, "ses_1", &UserId::from("ann"), 1)
            .await
            .unwrap();
        assert_eq!(
            h.session_owner(&host, "ses_1").await.unwrap(),
            Some(UserId::from("ann"))
        );
        // A second creator changes nothing, in the store or in the cache.
        h.set_session_owner(&host, "ses_1", &UserId::from("bob"), 2)
            .await
            .unwrap();
        assert_eq!(
            h.session_owner(&host, "ses_1").await.unwrap(),
            Some(UserId::from("ann"))
        );
        // Another host's session of the same name is another session.
        assert_eq!(
            h.session_owner(&HostId::from("other"), "ses_1")
                .await
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_miss_read_while_an_owner_was_recorded_is_not_kept() {
        let cache = SessionCache::default();
        let host = HostId::from("box");
        let before = cache.generation();
        cache.recorded(&host, "ses_1"); // an owner was recorded while the lookup ran
        cache.put(&host, "ses_1", before, None);
        assert_eq!(cache.get(&host, "ses_1"), None, "not cached");
        // A found owner is kept whatever happened meanwhile: it never changes.
        cache.put(&host, "ses_1", before, Some(UserId::from("ann")));
        assert_eq!(cache.get(&host, "ses_1"), Some(Some(UserId::from("ann"))));
        // A recording drops a stale miss that was stored before it.
        let now = cache.generation();
        cache.put(&host, "ses_2", now, None);
        cache.recorded(&host, "ses_2");
        assert_eq!(cache.get(&host, "ses_2"), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SessionCache::default();
        let host = HostId::from("box");
        for i in 0..=MAX_ENTRIES {
            cache.put(&host, &format!("ses_{i}"), 0, None);
        }
        assert!(cache.lock().owners.len() <= MAX_ENTRIES);
        assert_eq!(cache.get(&host, &format!("ses_{MAX_ENTRIES}")), Some(None));
    }
}
