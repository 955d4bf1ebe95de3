//! Zero-trust pieces (issue #20): what lets a host check an operator itself instead of believing
//! the relay. Pure like the rest of this crate: keys come from seeds the caller draws, times are
//! passed in.
//!
//! - [`keys`]: Ed25519 device keys (an operator laptop's), public keys, signatures, fingerprints.
//! - [`signed`]: [`signed::Signed`], a JSON payload kept as the exact bytes that were signed.
//! - [`cert`]: certificates: grants to a user's device keys, and a host's end-to-end key.
//! - [`revocation`]: owner/admin-signed revocation lists and their freshness.
//! - [`rotation`]: owner key rotation statements and the pins they change.
//! - [`chain`]: the one place that decides what a set of certificates proves.
//! - [`header`]: the signed stream header and the checks a host runs on it.
//! - [`header_mac`]: the channel MAC that authenticates a header on an end-to-end channel, so
//!   its signature can be verified beside the work instead of before it.
//! - [`messages`]: bodies of the trust operations (`e2e_open`, `trust_fetch`, `trust_publish`).
//!
//! See `docs/security-model.md` ("A relay that cannot act for anyone") for the model.

pub mod cert;
pub mod chain;
pub mod header;
pub mod header_mac;
pub mod keys;
pub mod messages;
pub mod revocation;
pub mod rotation;
pub mod signed;

mod error;
#[cfg(test)]
mod header_mac_tests;
#[cfg(test)]
mod rotation_tests;
#[cfg(test)]
mod tests;

pub use cert::{Cert, CertBody, Root, Subject, X25519Public};
pub use chain::Verifier;
pub use error::TrustError;
pub use header::{HeaderAuth, SignedFields};
pub use header_mac::{PendingSignature, UnverifiedHeader};
pub use keys::{DeviceKey, PublicKey, Signature};
pub use messages::{E2eOpen, E2eOpened, HostKeyClaim, PendingDevice, TrustBundle, TrustQuery};
pub use revocation::{RevocationBody, RevocationList, RevocationState};
pub use rotation::{RetiringRoot, RootPins, RootRotation, Rotated, RotationBody};
pub use signed::Signed;
