//! The channel MAC on a signed stream header: how a host authenticates a stream on an
//! end-to-end channel without waiting for an Ed25519 verification.
//!
//! The operator signs the header as everywhere else, then adds
//! `mac = hex(BLAKE3-keyed(mac key, payload ‖ 0x00 ‖ signature))`, where the MAC key derives
//! from the channel key (`cm_client::e2e::Channel::header_mac_key`) that only the operator's
//! device and the host hold: the relay can neither make nor change a header that passes.
//! The host reads the signed fields unverified only to find the channel ([`read_unverified`]),
//! checks the MAC and every field as [`super::header::verify`] does ([`UnverifiedHeader::check_mac`]),
//! records the nonce, and starts the work; the signature ([`PendingSignature`]) is verified
//! beside it. A bad signature under a good MAC can only come from the operator's own device
//! (the MAC covers the signature): the host stops the stream and forgets the channel.

use super::TrustError;
use super::header::{CheckedHeader, HeaderAuth, HeaderFields, SignedFields, check_fields};
use super::keys::{PublicKey, Signature};
use super::signed::SignedKind;
use crate::ids::HostId;

/// The MAC of a header's signature under a channel's MAC key (64 hex digits).
pub fn header_mac(mac_key: &[u8; 32], auth: &HeaderAuth) -> String {
    mac_of(mac_key, auth).to_hex().to_string()
}

fn mac_of(mac_key: &[u8; 32], auth: &HeaderAuth) -> blake3::Hash {
    let mut h = blake3::Hasher::new_keyed(mac_key);
    h.update(auth.payload.as_bytes());
    h.update(&[0]);
    h.update(&auth.sig.0);
    h.finalize()
}

/// Puts the channel MAC of `header`'s signature into it (the operator, after signing).
///
/// # Errors
/// [`TrustError::Unsigned`] when the header is not signed yet.
pub fn attach_mac(header: &mut impl HeaderFields, mac_key: &[u8; 32]) -> Result<(), TrustError> {
    let mac = header_mac(mac_key, header.auth().ok_or(TrustError::Unsigned)?);
    header.set_mac(mac);
    Ok(())
}

/// A header's signed fields before anything about them is checked: only for finding the
/// channel whose key then checks the MAC.
#[derive(Debug, Clone)]
pub struct UnverifiedHeader {
    /// The fields as sent (unauthenticated until [`Self::check_mac`]).
    pub fields: SignedFields,
    /// The key the signature names.
    pub key: PublicKey,
    payload: Vec<u8>,
    sig: Signature,
    want_mac: blake3::Hash,
}

/// Reads a MAC-carrying header's signed fields without verifying anything yet.
///
/// # Errors
/// [`TrustError::Unsigned`], [`TrustError::NoMac`], or a damaged payload or MAC.
pub fn read_unverified(header: &impl HeaderFields) -> Result<UnverifiedHeader, TrustError> {
    let auth = header.auth().ok_or(TrustError::Unsigned)?;
    let mac = header.mac().ok_or(TrustError::NoMac)?;
    // One spelling only (lowercase), so a MAC is refused or taken byte for byte.
    if mac.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(TrustError::Payload("header mac: not lowercase hex".into()));
    }
    let want_mac =
        blake3::Hash::from_hex(mac).map_err(|e| TrustError::Payload(format!("header mac: {e}")))?;
    let (fields, payload) = auth.read_unverified()?;
    Ok(UnverifiedHeader {
        fields,
        key: auth.key,
        payload,
        sig: auth.sig,
        want_mac,
    })
}

impl UnverifiedHeader {
    /// Checks the MAC under `mac_key` (the channel the fields name), then every field as
    /// [`super::header::verify`] does. The nonce is the caller's to record next
    /// ([`super::header::record_nonce`]); the signature is returned to verify beside the work.
    ///
    /// # Errors
    /// [`TrustError::MacMismatch`], then the first field check that fails.
    pub fn check_mac(
        self,
        header: &impl HeaderFields,
        this_host: &HostId,
        now_ms: u64,
        mac_key: &[u8; 32],
    ) -> Result<(CheckedHeader, PendingSignature), TrustError> {
        let auth = header.auth().ok_or(TrustError::Unsigned)?;
        // blake3::Hash compares in constant time. The MAC covers the bytes the fields were
        // read from and the signature, so a relay can change neither.
        if mac_of(mac_key, auth) != self.want_mac {
            return Err(TrustError::MacMismatch);
        }
        let nonce = check_fields(header, &self.fields, this_host, now_ms)?;
        let pending = PendingSignature {
            key: self.key,
            payload: self.payload,
            sig: self.sig,
        };
        let checked = CheckedHeader {
            fields: self.fields,
            key: self.key,
            nonce,
        };
        Ok((checked, pending))
    }
}

/// A MAC-checked header's signature, to verify beside the work it allows.
#[derive(Debug, Clone)]
pub struct PendingSignature {
    key: PublicKey,
    payload: Vec<u8>,
    sig: Signature,
}

impl PendingSignature {
    /// Verifies the signature over the signed bytes.
    ///
    /// # Errors
    /// [`TrustError::BadSignature`] (or a malformed key).
    pub fn verify(&self) -> Result<(), TrustError> {
        self.key
            .verify(SignedFields::DOMAIN, &self.payload, &self.sig)
    }
}
