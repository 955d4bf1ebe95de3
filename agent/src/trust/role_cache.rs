//! The roles a host already worked out from certificate chains, so a stream on an open channel
//! does not verify its grant's (and admin certificate's) signatures again (issue #20's hop
//! goal): `proto::trust::Verifier::role_of` runs once per distinct (user, device key, exact
//! certificates), and its answer is reused while nothing it depended on can have changed.
//!
//! What the answer depends on, and how each is covered:
//! - the certificates: the key is a BLAKE3 digest of their exact signed bytes, signers and
//!   signatures (any other certificate set is another entry);
//! - the time: an entry holds only from when it was worked out until the next instant any of
//!   those certificates starts or stops being valid, or a replaced root's overlap ends
//!   ([`stable_until`]); a clock that went back misses;
//! - the revocation lists and the pinned roots: the owner ([`super::HostTrust`]) clears the
//!   cache whenever it takes a new list or a rotation, or retires a root.
//!
//! Only grants are cached (a refusal is worked out again each time). At most [`CAPACITY`]
//! entries; a full cache is emptied.

use proto::ids::UserId;
use proto::rbac::Role;
use proto::trust::{Cert, CertBody, PublicKey, RootPins};
use std::collections::HashMap;

/// Most roles kept.
pub(super) const CAPACITY: usize = 4_096;

/// What identifies one question to `role_of`: BLAKE3 of the user, the device key and the
/// certificates' exact bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RoleKey([u8; 32]);

impl RoleKey {
    /// The key of `role_of(user, key, certs)` on this host.
    pub(super) fn of(user: &UserId, key: &PublicKey, certs: &[Cert]) -> Self {
        let mut h = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            // Length-prefixed, so no two different inputs hash the same bytes.
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(user.as_str().as_bytes());
        field(&key.0);
        for c in certs {
            field(c.payload.as_bytes());
            field(&c.key.0);
            field(&c.sig.0);
        }
        Self(*h.finalize().as_bytes())
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    role: Role,
    from_ms: u64,
    until_ms: u64,
}

/// Roles worked out before (see the module docs).
#[derive(Debug, Default)]
pub(super) struct RoleCache {
    entries: HashMap<RoleKey, Entry>,
    /// How many times the cache was cleared: a role worked out before a clear is not kept.
    generation: u64,
}

impl RoleCache {
    /// The role kept for `key`, if it still holds at `now_ms`.
    pub(super) fn get(&self, key: &RoleKey, now_ms: u64) -> Option<Role> {
        self.entries
            .get(key)
            .filter(|e| e.from_ms <= now_ms && now_ms < e.until_ms)
            .map(|e| e.role)
    }

    /// The generation to pass to [`Self::put`] for a role worked out from now on.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Keeps `role`, worked out at `now_ms` with the revocations and roots of `generation`,
    /// until `until_ms` (see [`stable_until`]). Not kept when the cache was cleared since (the
    /// role may be stale already) or when it holds for no time.
    pub(super) fn put(
        &mut self,
        key: RoleKey,
        role: Role,
        generation: u64,
        now_ms: u64,
        until_ms: u64,
    ) {
        if generation != self.generation || until_ms <= now_ms {
            return;
        }
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Entry {
                role,
                from_ms: now_ms,
                until_ms,
            },
        );
    }

    /// Forgets everything (a new revocation list, rotation or retired root).
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.generation += 1;
    }

    /// How many roles are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The first instant after `now_ms` at which `role_of` over `certs` with `pins` could answer
/// differently with the same revocations: a certificate's `not_before_ms` or `not_after_ms`,
/// or a replaced root's end of overlap. The certificates' times are read without checking
/// their signatures: a certificate whose signature fails counts at no time, so its times can
/// only end the entry earlier. A certificate that cannot be read ends it now.
pub(super) fn stable_until(certs: &[Cert], pins: &RootPins, now_ms: u64) -> u64 {
    let mut until = u64::MAX;
    let mut bound = |t: u64| {
        if t > now_ms {
            until = until.min(t);
        }
    };
    for c in certs {
        let body = c
            .payload_bytes()
            .ok()
            .and_then(|b| serde_json::from_slice::<CertBody>(&b).ok());
        match body {
            Some(b) => {
                bound(b.not_before_ms);
                bound(b.not_after_ms);
            }
            None => return now_ms,
        }
    }
    for r in &pins.retiring {
        bound(r.until_ms);
    }
    until
}
