//! Certificates: made and signed only on owners' and admins' laptops; the relay stores and
//! serves them but cannot make one (it holds no root key).
//!
//! - [`Subject::User`]: a grant. `user`'s `device_keys` hold `role` on `host` (`*`: every host)
//!   until `not_after_ms`. Signed by a root (any role), or by an admin's device key whose own
//!   `User` certificate (role admin or owner, covering the host) a root signed; an admin can
//!   certify roles up to operator (design §6: owners grant admin).
//! - [`Subject::Host`]: `host`'s end-to-end key (X25519, Noise) that operators encrypt to.
//!   Signed by a root or an admin as above, after the host proved it holds the enrollment's
//!   bind secret ([`super::HostKeyClaim`]).
//!
//! [`super::chain::Verifier`] is the one place that decides what a set of them proves.

use super::keys::{PublicKey, hex_fixed};
use super::signed::{Signed, SignedKind};
use crate::ids::{HostId, UserId};
use crate::rbac::Role;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A signed certificate.
pub type Cert = Signed<CertBody>;

/// A trust root: an owner's device key, pinned by hosts at enrollment and by operators at login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Root {
    /// The owner.
    pub user: UserId,
    /// Their device key.
    pub key: PublicKey,
}

/// A host's X25519 public key (Noise static key), carried as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct X25519Public(pub [u8; 32]);

impl fmt::Debug for X25519Public {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "X25519Public({})", self.fingerprint())
    }
}

impl X25519Public {
    /// `x25519:` + the first 16 hex digits of BLAKE3(key), in groups of four.
    pub fn fingerprint(&self) -> String {
        let hex = blake3::hash(&self.0).to_hex();
        let h = &hex.as_str()[..16];
        format!(
            "x25519:{}-{}-{}-{}",
            &h[..4],
            &h[4..8],
            &h[8..12],
            &h[12..16]
        )
    }
}

impl Serialize for X25519Public {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for X25519Public {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_fixed::<D, 32>(d).map(Self)
    }
}

/// What a certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Subject {
    /// A grant to a user's device keys.
    User {
        /// The user.
        user: UserId,
        /// Their device keys this grant covers.
        device_keys: Vec<PublicKey>,
        /// Host name, or `*` for every host.
        host: String,
        /// The role.
        role: Role,
    },
    /// A host's end-to-end key.
    Host {
        /// The host.
        host: HostId,
        /// Its X25519 key.
        host_key: X25519Public,
    },
}

/// The signed part of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertBody {
    /// Random id, for revocation lists (16 hex digits).
    pub serial: String,
    /// What it says.
    pub subject: Subject,
    /// Valid from (unix ms).
    pub not_before_ms: u64,
    /// Valid until (unix ms).
    pub not_after_ms: u64,
}

impl SignedKind for CertBody {
    const DOMAIN: &'static str = "cert/v1";
}

impl CertBody {
    /// Whether `now_ms` is within the validity period.
    pub fn valid_at(&self, now_ms: u64) -> bool {
        self.not_before_ms <= now_ms && now_ms < self.not_after_ms
    }
}

/// Whether a grant for `granted` (a host or `*`) covers `host`.
pub fn covers(granted: &str, host: &HostId) -> bool {
    granted == "*" || granted == host.as_str()
}
