//! Bodies of the trust operations and messages.
//!
//! | op / message | body | answer |
//! | --- | --- | --- |
//! | `e2e_open` (agent) | [`E2eOpen`] | [`E2eOpened`] |
//! | `trust_fetch` (relay) | optional [`TrustQuery`] | [`TrustBundle`] |
//! | `trust_publish` (relay, admin) | [`TrustBundle`] | `AdminDone` |
//! | control, agent → relay | `Control::HostKeyClaim` ([`HostKeyClaim`]) | — |
//! | control, relay → agent | `Control::Revocations` (lists, root rotations) | — |

use super::cert::{Cert, Root, X25519Public};
use super::keys::PublicKey;
use super::revocation::RevocationList;
use super::rotation::RootRotation;
use crate::bytes32::Bytes32;
use crate::ids::{HostId, UserId};
use serde::{Deserialize, Serialize};

/// Body of `e2e_open`: the Noise NK first message (base64url), whose encrypted payload carries
/// the operator's certificates (JSON `Vec<Cert>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct E2eOpen {
    /// Noise message 1, base64url without padding.
    pub msg1: String,
    /// The record format the operator seals with (`cm_client::e2e::RECORD_FORMAT`); absent
    /// from builds before the field (whose format the records themselves then tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u32>,
}

/// Answer of `e2e_open`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct E2eOpened {
    /// Noise message 2, base64url without padding.
    pub msg2: String,
    /// The record format the host seals with, as in [`E2eOpen::records`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u32>,
}

/// Agent → relay: "this host's end-to-end key is `host_key`", proven with the bind secret that
/// only the enrollment token (made on an owner's or admin's laptop) and that laptop know. The
/// laptop checks the proof before it certifies the key, so a relay cannot substitute its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyClaim {
    /// The host.
    pub host: HostId,
    /// Its X25519 key.
    pub host_key: X25519Public,
    /// BLAKE3 keyed with the bind secret over `cm host key v1\0` || host || `\0` || key (hex).
    pub mac: String,
}

impl HostKeyClaim {
    fn mac_of(host: &HostId, host_key: &X25519Public, bind: &Bytes32) -> String {
        let mut h = blake3::Hasher::new_keyed(&bind.0);
        h.update(b"cm host key v1\0");
        h.update(host.as_str().as_bytes());
        h.update(b"\0");
        h.update(&host_key.0);
        h.finalize().to_hex().to_string()
    }

    /// The claim for `host_key`, proven with `bind`.
    pub fn new(host: HostId, host_key: X25519Public, bind: &Bytes32) -> Self {
        let mac = Self::mac_of(&host, &host_key, bind);
        Self {
            host,
            host_key,
            mac,
        }
    }

    /// Whether the proof matches `bind` (constant-time comparison).
    pub fn verify(&self, bind: &Bytes32) -> bool {
        let want = blake3::Hash::from_hex(Self::mac_of(&self.host, &self.host_key, bind));
        let got = blake3::Hash::from_hex(&self.mac);
        matches!((want, got), (Ok(w), Ok(g)) if w == g)
    }
}

/// A device key a user logged in with that no certificate covers yet (recorded by the relay
/// at login; first use is trusted and recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDevice {
    /// The user.
    pub user: UserId,
    /// The key.
    pub key: PublicKey,
    /// When the relay first saw it (unix ms).
    pub seen_ms: u64,
    /// The credential label (laptop name), if any.
    #[serde(default)]
    pub label: Option<String>,
}

/// Everything the relay stores for zero-trust: it serves these, it cannot make them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustBundle {
    /// Owners' root keys as announced by owners (informational: hosts and operators pin their
    /// own from tokens and invites, never from here).
    #[serde(default)]
    pub roots: Vec<Root>,
    /// Certificates.
    #[serde(default)]
    pub certs: Vec<Cert>,
    /// The newest revocation list of each signer.
    #[serde(default)]
    pub revocations: Vec<RevocationList>,
    /// Owner root rotation statements (each signed by the root it replaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<RootRotation>,
    /// Hosts' key claims waiting for (or past) certification.
    #[serde(default)]
    pub claims: Vec<HostKeyClaim>,
    /// Device keys seen at login.
    #[serde(default)]
    pub pending: Vec<PendingDevice>,
}

/// Body of `trust_fetch`: narrow what comes back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustQuery {
    /// Only what concerns this host (its certificate, its claim) plus every user certificate.
    #[serde(default)]
    pub host: Option<HostId>,
}
