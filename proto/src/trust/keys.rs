//! Ed25519 device keys (`ring`): an operator laptop signs stream headers, certificates and
//! revocation lists with one. Signatures are domain-separated: the signed message is
//! `codemantle/<domain>\0<bytes>`, so a signature made for one purpose never verifies for another.

use super::TrustError;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An Ed25519 public key, carried as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature, carried as 128 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// A device's signing key. Its `Debug` shows only the public key's fingerprint.
pub struct DeviceKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

fn domain_message(domain: &str, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + domain.len() + msg.len());
    out.extend_from_slice(b"codemantle/");
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(msg);
    out
}

impl DeviceKey {
    /// The key whose secret seed is `seed` (32 random bytes the caller drew).
    ///
    /// # Errors
    /// Never for 32 bytes in practice; kept for `ring`'s fallible API.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, TrustError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| TrustError::Malformed(e.to_string()))?;
        Ok(Self { seed, pair })
    }

    /// The secret seed (for the keyring).
    pub fn seed(&self) -> [u8; 32] {
        self.seed
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(out)
    }

    /// Signs `msg` for `domain`.
    pub fn sign(&self, domain: &str, msg: &[u8]) -> Signature {
        let sig = self.pair.sign(&domain_message(domain, msg));
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        Signature(out)
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey({})", self.public().fingerprint())
    }
}

impl PublicKey {
    /// Checks `sig` over `msg` for `domain`.
    ///
    /// # Errors
    /// [`TrustError::BadSignature`] when it does not verify.
    pub fn verify(&self, domain: &str, msg: &[u8], sig: &Signature) -> Result<(), TrustError> {
        UnparsedPublicKey::new(&ED25519, self.0)
            .verify(&domain_message(domain, msg), &sig.0)
            .map_err(|_| TrustError::BadSignature {
                signer: self.fingerprint(),
            })
    }

    /// The short form people compare out of band: `ed25519:` + the first 16 hex digits of
    /// BLAKE3(key), in groups of four.
    pub fn fingerprint(&self) -> String {
        let hex = blake3::hash(&self.0).to_hex();
        let h = &hex.as_str()[..16];
        format!(
            "ed25519:{}-{}-{}-{}",
            &h[..4],
            &h[4..8],
            &h[8..12],
            &h[12..16]
        )
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`TrustError::Malformed`].
    pub fn from_hex(s: &str) -> Result<Self, TrustError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out)
            .map_err(|e| TrustError::Malformed(format!("public key: {e}")))?;
        Ok(Self(out))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

pub(super) fn hex_fixed<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    let s = String::deserialize(d)?;
    let mut out = [0u8; N];
    hex::decode_to_slice(&s, &mut out).map_err(serde::de::Error::custom)?;
    Ok(out)
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_fixed::<D, 32>(d).map(Self)
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_fixed::<D, 64>(d).map(Self)
    }
}
