//! Shares each host's agent streams (at most [`crate::tls::MAX_CONCURRENT_STREAMS`] at once)
//! among the people using it: one principal holds at most [`PER_PRINCIPAL`] of a host's
//! streams, and viewers together never take the last [`DRIVER_RESERVE`], which stay for those
//! who may drive the host (operators and up). A viewer holding streams open (idle watches,
//! headers without a body) can no longer lock everyone else out of a host.

use parking_lot::Mutex;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Streams one principal may hold to one host at once.
pub(crate) const PER_PRINCIPAL: usize = 32;
/// Streams of each host viewers cannot take.
pub(crate) const DRIVER_RESERVE: usize = 16;
/// How long a request waits for a slot before it is refused.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The principal already holds [`PER_PRINCIPAL`] streams to the host.
    Principal,
    /// Viewers hold every stream they may (the rest is kept for operators).
    ViewerShare,
}

/// The counts (sans-IO core).
#[derive(Debug, Default)]
struct Counts {
    per_principal: HashMap<(HostId, UserId), usize>,
    viewers: HashMap<HostId, usize>,
}

impl Counts {
    fn try_take(&mut self, host: &HostId, user: &UserId, viewer: bool) -> Result<(), Full> {
        let key = (host.clone(), user.clone());
        let held = self.per_principal.get(&key).copied().unwrap_or(0);
        if held >= PER_PRINCIPAL {
            return Err(Full::Principal);
        }
        if viewer {
            let viewers = self.viewers.entry(host.clone()).or_insert(0);
            let share = crate::tls::MAX_CONCURRENT_STREAMS as usize - DRIVER_RESERVE;
            if *viewers >= share {
                return Err(Full::ViewerShare);
            }
            *viewers += 1;
        }
        self.per_principal.insert(key, held + 1);
        Ok(())
    }

    fn give_back(&mut self, host: &HostId, user: &UserId, viewer: bool) {
        let key = (host.clone(), user.clone());
        if let Some(n) = self.per_principal.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_principal.remove(&key);
            }
        }
        if viewer && let Some(n) = self.viewers.get_mut(host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.viewers.remove(host);
            }
        }
    }
}

/// The quota of every host.
#[derive(Debug, Default)]
pub(crate) struct StreamQuota {
    counts: Mutex<Counts>,
    freed: Notify,
}

/// One stream's share; given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    quota: Arc<StreamQuota>,
    host: HostId,
    user: UserId,
    viewer: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.quota
            .counts
            .lock()
            .give_back(&self.host, &self.user, self.viewer);
        self.quota.freed.notify_waiters();
    }
}

impl StreamQuota {
    /// A slot for `user` (whose role on `host` is `role`), waiting up to `wait` for one.
    pub(crate) async fn take(
        self: &Arc<Self>,
        host: &HostId,
        user: &UserId,
        role: Role,
        wait: Duration,
    ) -> Result<Slot, Full> {
        let viewer = role < Role::Operator;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let taken = self.counts.lock().try_take(host, user, viewer);
            match taken {
                Ok(()) => {
                    return Ok(Slot {
                        quota: Arc::clone(self),
                        host: host.clone(),
                        user: user.clone(),
                        viewer,
                    });
                }
                Err(full) => {
                    if tokio::time::timeout_at(deadline, freed).await.is_err() {
                        return Err(full);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_principal_and_viewers_together_are_capped_drivers_keep_a_reserve() {
        let mut c = Counts::default();
        let host = HostId::from("box");
        let share = crate::tls::MAX_CONCURRENT_STREAMS as usize - DRIVER_RESERVE;
        for i in 0..share {
            let viewer = UserId(format!("viewer{}", i / PER_PRINCIPAL));
            assert_eq!(c.try_take(&host, &viewer, true), Ok(()), "{i}");
        }
        // One viewer at its own cap; every viewer at the viewers' share.
        assert_eq!(
            c.try_take(&host, &UserId::from("viewer0"), true),
            Err(Full::Principal)
        );
        assert_eq!(
            c.try_take(&host, &UserId::from("another"), true),
            Err(Full::ViewerShare)
        );
        // An operator still gets streams, up to its own cap; other hosts are untouched.
        let op = UserId::from("op");
        for _ in 0..PER_PRINCIPAL {
            assert_eq!(c.try_take(&host, &op, false), Ok(()));
        }
        assert_eq!(c.try_take(&host, &op, false), Err(Full::Principal));
        assert_eq!(c.try_take(&HostId::from("other"), &op, false), Ok(()));
        // Giving back frees the slot.
        c.give_back(&host, &UserId::from("viewer0"), true);
        assert_eq!(c.try_take(&host, &UserId::from("another"), true), Ok(()));
    }

    #[tokio::test]
    async fn a_waiting_request_gets_the_first_slot_given_back() {
        let quota = Arc::new(StreamQuota::default());
        let (host, user) = (HostId::from("box"), UserId::from("ann"));
        let mut held = Vec::new();
        for _ in 0..PER_PRINCIPAL {
            held.push(
                quota
                    .take(&host, &user, Role::Operator, WAIT)
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            quota
                .take(&host, &user, Role::Operator, Duration::ZERO)
                .await
                .unwrap_err(),
            Full::Principal
        );
        let waiting = {
            let quota = Arc::clone(&quota);
            let (host, user) = (host.clone(), user.clone());
            tokio::spawn(async move { quota.take(&host, &user, Role::Operator, WAIT).await })
        };
        tokio::task::yield_now().await;
        held.pop();
        assert!(waiting.await.unwrap().is_ok());
    }
}
