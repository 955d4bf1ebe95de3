//! Revoked credentials the relays reported, handed to the supervisors once. Every link (one
//! per relay) may report the same revocation; notices are merged into one pending set that one
//! worker hands on, and a credential already handed on is not handed on again (no task per
//! notice, and a flood of notices cannot queue without bound: each set holds a credential once).

use crate::workspaces::Workspaces;
use proto::ids::CredId;
use std::collections::HashSet;
use std::sync::Mutex;

/// Credentials remembered as handed on; beyond, the memory starts over (a repeat then costs
/// one more, harmless, stop request to the supervisors).
const MAX_HANDLED: usize = 65_536;

/// Which revocations are pending and which were handed on (sans-IO).
#[derive(Debug, Default)]
pub(super) struct RevocationSet {
    pending: HashSet<CredId>,
    handled: HashSet<CredId>,
}

impl RevocationSet {
    /// Adds reported credentials; returns whether any is new.
    pub(super) fn add(&mut self, creds: impl IntoIterator<Item = CredId>) -> bool {
        let mut new = false;
        for c in creds {
            if !self.handled.contains(&c) {
                new |= self.pending.insert(c);
            }
        }
        new
    }

    /// The pending credentials, now counted as handed on.
    pub(super) fn take(&mut self) -> HashSet<CredId> {
        let batch = std::mem::take(&mut self.pending);
        if self.handled.len() + batch.len() > MAX_HANDLED {
            self.handled.clear();
        }
        self.handled.extend(batch.iter().cloned());
        batch
    }
}

/// [`RevocationSet`] shared by the links, with the worker that hands batches on.
#[derive(Debug, Default)]
pub(super) struct Revocations {
    set: Mutex<RevocationSet>,
    added: tokio::sync::Notify,
}

impl Revocations {
    /// Records a notice from any link.
    pub(super) fn add(&self, creds: Vec<CredId>) {
        let new = self
            .set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(creds);
        if new {
            self.added.notify_one();
        }
    }

    /// Hands pending revocations to the workspaces' supervisors, one batch at a time.
    pub(super) async fn serve(&self, workspaces: &Workspaces) {
        loop {
            self.added.notified().await;
            let creds = self
                .set
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if !creds.is_empty() {
                workspaces.on_revoked(&creds).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(names: &[&str]) -> Vec<CredId> {
        names.iter().map(|n| CredId((*n).to_owned())).collect()
    }

    #[test]
    fn a_revocation_reported_by_two_relays_is_handed_on_once() {
        let mut set = RevocationSet::default();
        assert!(set.add(creds(&["c1", "c2"])));
        // The other link's notice, before the worker ran: merged.
        assert!(!set.add(creds(&["c1"])));
        assert_eq!(set.take().len(), 2);
        // The other link's notice, after: nothing new.
        assert!(!set.add(creds(&["c2", "c1"])));
        assert!(set.take().is_empty());
        // A new credential still goes through.
        assert!(set.add(creds(&["c3", "c1"])));
        assert_eq!(set.take(), creds(&["c3"]).into_iter().collect());
    }
}
