//! Owner key rotation: the old root signs "my successor is this key" ([`RotationBody`]), and a
//! host (or an operator's laptop) that pins the old root pins the new one, keeping the old one
//! trusted for an overlap so the certificates it signed still verify while the owner re-signs
//! them. The relay stores and serves statements; it cannot make one (it lacks the old key).
//!
//! [`RootPins`] is the one place that decides what a set of pins accepts:
//! - the statement's signature by the key it retires, and that key a root pinned here;
//! - that root not already replaced or retired (a root rotates once; a retired root never
//!   signs or comes back);
//! - a sequence number above every one accepted for that owner (an older statement the relay
//!   serves again is refused, even when its signer is still pinned);
//! - a new key not pinned already.
//!
//! A replaced root stays trusted until `until_ms` (overlap) or until a revocation list signed
//! by one of its owner's current roots names its key ([`RootPins::retire`]); then it is
//! retired for good.

use super::TrustError;
use super::cert::Root;
use super::keys::PublicKey;
use super::signed::{Signed, SignedKind};
use crate::ids::UserId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A signed rotation statement.
pub type RootRotation = Signed<RotationBody>;

/// The signed part of a rotation statement (signed by `old_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationBody {
    /// The owner whose root rotates.
    pub user: UserId,
    /// The root being replaced: must be the signer.
    pub old_key: PublicKey,
    /// Its successor.
    pub new_key: PublicKey,
    /// Above every earlier rotation of this owner's roots.
    pub seq: u64,
    /// When it was signed (unix ms, the owner's laptop).
    pub issued_ms: u64,
}

impl SignedKind for RotationBody {
    const DOMAIN: &'static str = "root-rotation/v1";
}

/// A root replaced by a rotation, still trusted until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringRoot {
    /// The replaced root.
    pub root: Root,
    /// Its successor's key.
    pub replaced_by: PublicKey,
    /// Trusted until (unix ms).
    pub until_ms: u64,
}

/// The roots a host or laptop pins, with the rotations it accepted applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootPins {
    /// Current roots.
    pub active: Vec<Root>,
    /// Replaced roots within their overlap.
    #[serde(default)]
    pub retiring: Vec<RetiringRoot>,
    /// Retired roots: never trusted again.
    #[serde(default)]
    pub retired: Vec<Root>,
    /// The highest rotation sequence accepted per owner.
    #[serde(default)]
    pub seq: BTreeMap<UserId, u64>,
}

/// What an accepted statement changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The replaced root.
    pub old: Root,
    /// The new root.
    pub new: Root,
    /// Until when the old one is still trusted.
    pub until_ms: u64,
}

impl RootPins {
    /// Pins `active` with no rotation yet.
    pub fn new(active: Vec<Root>) -> Self {
        Self {
            active,
            ..Self::default()
        }
    }

    /// The roots trusted at `now_ms`: the active ones and those still within their overlap.
    pub fn trusted(&self, now_ms: u64) -> Vec<Root> {
        self.active
            .iter()
            .cloned()
            .chain(
                self.retiring
                    .iter()
                    .filter(|r| now_ms < r.until_ms)
                    .map(|r| r.root.clone()),
            )
            .collect()
    }

    fn known(&self, key: &PublicKey) -> bool {
        self.active.iter().any(|r| r.key == *key)
            || self.retiring.iter().any(|r| r.root.key == *key)
            || self.retired.iter().any(|r| r.key == *key)
    }

    /// Checks `statement` and, when it passes, pins its new root and keeps the old one for
    /// `overlap_ms` from `now_ms`.
    ///
    /// # Errors
    /// The first check that fails (see the module docs).
    pub fn accept(
        &mut self,
        statement: &RootRotation,
        now_ms: u64,
        overlap_ms: u64,
    ) -> Result<Rotated, TrustError> {
        let body = statement.open()?;
        let signer = *statement.signer();
        if body.old_key != signer {
            return Err(TrustError::Payload(format!(
                "a rotation statement for {} signed by another key ({})",
                body.old_key.fingerprint(),
                signer.fingerprint()
            )));
        }
        let pinned_as = |r: &Root| r.key == signer && r.user == body.user;
        let retired =
            self.retiring.iter().any(|r| pinned_as(&r.root)) || self.retired.iter().any(pinned_as);
        if !retired && !self.active.iter().any(pinned_as) {
            return Err(TrustError::NotARoot {
                signer: signer.fingerprint(),
            });
        }
        let held = self.seq.get(&body.user).copied().unwrap_or(0);
        if body.seq <= held {
            return Err(TrustError::RotationReplayed {
                seq: body.seq,
                held,
            });
        }
        if retired {
            return Err(TrustError::RootRetired {
                key: signer.fingerprint(),
            });
        }
        if self.known(&body.new_key) {
            return Err(TrustError::RootRetired {
                key: body.new_key.fingerprint(),
            });
        }
        let old = Root {
            user: body.user.clone(),
            key: signer,
        };
        let new = Root {
            user: body.user.clone(),
            key: body.new_key,
        };
        let until_ms = now_ms.saturating_add(overlap_ms);
        self.active.retain(|r| *r != old);
        self.active.push(new.clone());
        self.retiring.push(RetiringRoot {
            root: old.clone(),
            replaced_by: new.key,
            until_ms,
        });
        self.seq.insert(body.user, body.seq);
        Ok(Rotated { old, new, until_ms })
    }

    /// Moves replaced roots whose overlap ended by `now_ms` to the retired ones; returns them.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Root> {
        let (ended, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|r| now_ms >= r.until_ms);
        self.retiring = kept;
        let ended: Vec<Root> = ended.into_iter().map(|r| r.root).collect();
        self.retired.extend(ended.iter().cloned());
        ended
    }

    /// Retires the replaced root `key` at once, when `signer` (whose revocation list names it)
    /// is a current root of the same owner; returns whether it did.
    pub fn retire(&mut self, key: &PublicKey, signer: &PublicKey) -> bool {
        let Some(at) = self.retiring.iter().position(|r| r.root.key == *key) else {
            return false;
        };
        let owner = &self.retiring[at].root.user;
        if !self
            .active
            .iter()
            .any(|r| r.key == *signer && r.user == *owner)
        {
            return false;
        }
        let r = self.retiring.remove(at);
        self.retired.push(r.root);
        true
    }

    /// The next sequence number for a rotation of `user`'s root, above every one known here
    /// and in `seen` (statements the relay served).
    pub fn next_seq(&self, user: &UserId, seen: &[RootRotation]) -> u64 {
        let served = seen
            .iter()
            .filter_map(|s| s.open().ok())
            .filter(|b| b.user == *user)
            .map(|b| b.seq)
            .max()
            .unwrap_or(0);
        self.seq.get(user).copied().unwrap_or(0).max(served) + 1
    }
}
