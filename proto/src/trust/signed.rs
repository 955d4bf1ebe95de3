//! [`Signed<T>`]: a value as the exact JSON bytes its signer signed, the signer's key and the
//! signature. Receivers verify those bytes before parsing them and never re-serialize to check,
//! so unknown fields or a different field order cannot break (or fake) a signature.

use super::TrustError;
use super::keys::{DeviceKey, PublicKey, Signature};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

/// A type that can be signed, with the domain its signatures are made for.
pub trait SignedKind: Serialize + DeserializeOwned {
    /// The signature domain (`cert/v1`, `header/v1`, …).
    const DOMAIN: &'static str;
}

/// A signed value (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
pub struct Signed<T> {
    /// base64url (no padding) of the signed JSON bytes.
    pub payload: String,
    /// Who signed.
    pub key: PublicKey,
    /// The signature over `codemantle/<T::DOMAIN>\0<payload bytes>`.
    pub sig: Signature,
    #[serde(skip)]
    _kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Signed<T> {
    fn clone(&self) -> Self {
        Self {
            payload: self.payload.clone(),
            key: self.key,
            sig: self.sig,
            _kind: PhantomData,
        }
    }
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.payload == other.payload && self.key == other.key && self.sig == other.sig
    }
}

impl<T> Eq for Signed<T> {}

impl<T: SignedKind> Signed<T> {
    /// Signs `value` with `key`.
    pub fn sign(value: &T, key: &DeviceKey) -> Self {
        // Serializing these plain structs cannot fail; an empty payload would not verify.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        Self {
            payload: URL_SAFE_NO_PAD.encode(&bytes),
            key: key.public(),
            sig: key.sign(T::DOMAIN, &bytes),
            _kind: PhantomData,
        }
    }

    /// The signed bytes.
    ///
    /// # Errors
    /// [`TrustError::Payload`] when the payload is not base64url.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, TrustError> {
        URL_SAFE_NO_PAD
            .decode(&self.payload)
            .map_err(|e| TrustError::Payload(e.to_string()))
    }

    /// Verifies the signature by [`Self::key`] and parses the value.
    ///
    /// # Errors
    /// A bad signature or a payload that is not `T`.
    pub fn open(&self) -> Result<T, TrustError> {
        let bytes = self.payload_bytes()?;
        self.key.verify(T::DOMAIN, &bytes, &self.sig)?;
        serde_json::from_slice(&bytes).map_err(|e| TrustError::Payload(e.to_string()))
    }

    /// Parses the value without verifying the signature, with the signed bytes (for
    /// [`super::header_mac`], which authenticates a header by its channel MAC first and verifies
    /// the signature beside the work). Nothing read here counts until one of them is checked.
    ///
    /// # Errors
    /// A payload that is not `T`.
    pub fn read_unverified(&self) -> Result<(T, Vec<u8>), TrustError> {
        let bytes = self.payload_bytes()?;
        let value =
            serde_json::from_slice(&bytes).map_err(|e| TrustError::Payload(e.to_string()))?;
        Ok((value, bytes))
    }

    /// Who signed (not yet verified: call [`Self::open`]).
    pub fn signer(&self) -> &PublicKey {
        &self.key
    }
}
