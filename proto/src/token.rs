//! Enrollment tokens and invites: one pasteable string carrying everything a new agent or
//! operator needs (relay address, relay key pin, identity, one secret), and the key pin itself.
//!
//! Format: a prefix (`cm-enroll-` or `cm-invite-`) then base64url (no padding) of JSON.

use crate::handshake::{Bytes32, Key};
use crate::ids::{HostId, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Prefix of enrollment tokens.
pub const ENROLL_PREFIX: &str = "cm-enroll-";
/// Prefix of invites.
pub const INVITE_PREFIX: &str = "cm-invite-";
/// Prefix of key pins: the BLAKE3 hash of the relay certificate's SubjectPublicKeyInfo (DER).
pub const PIN_PREFIX: &str = "blake3:";

/// What `cm-relay host add` hands to `cm-agent enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// Relay address, `host:port`.
    pub relay: String,
    /// The relay's key pin.
    pub pin: String,
    /// The host id this token enrolls.
    pub host: HostId,
    /// The host's secret.
    pub secret: Key,
    /// The owners' root keys the host pins (added on the laptop that made the token, never by
    /// the relay). Empty: a relay-trusted host (tokens from before zero-trust, `cm-relay host add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<crate::trust::Root>,
    /// The bind secret the host proves its end-to-end key with (see
    /// [`crate::trust::HostKeyClaim`]); kept by the laptop that made the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<Bytes32>,
}

/// What `cm-relay init` / `user add` hands to `cm-tui login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// Relay address, `host:port`.
    pub relay: String,
    /// The relay's key pin.
    pub pin: String,
    /// The user this invite is for.
    pub user: UserId,
    /// The one-time secret.
    pub secret: Bytes32,
    /// The owners' root keys the operator pins (added on the admin's laptop that made the invite).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<crate::trust::Root>,
}

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Wrong or missing prefix.
    #[error("not a {expected}… token; copy the whole token printed by cm-relay")]
    WrongPrefix {
        /// The prefix that was expected.
        expected: &'static str,
    },
    /// Not base64url.
    #[error("token is damaged (not base64url): copy it again in one piece")]
    Encoding,
    /// Not the expected JSON.
    #[error("token is damaged ({reason}): copy it again in one piece")]
    Content {
        /// Parser explanation.
        reason: String,
    },
}

fn encode<T: Serialize>(prefix: &str, value: &T) -> String {
    // Serializing these plain structs cannot fail; fall back to an empty body rather than panic.
    let json = serde_json::to_vec(value).unwrap_or_default();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(json))
}

fn decode<T: DeserializeOwned>(prefix: &'static str, s: &str) -> Result<T, TokenError> {
    let body = s
        .trim()
        .strip_prefix(prefix)
        .ok_or(TokenError::WrongPrefix { expected: prefix })?;
    let json = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TokenError::Encoding)?;
    serde_json::from_slice(&json).map_err(|e| TokenError::Content {
        reason: e.to_string(),
    })
}

impl EnrollmentToken {
    /// The pasteable form.
    pub fn encode(&self) -> String {
        encode(ENROLL_PREFIX, self)
    }

    /// Parses the pasteable form.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        decode(ENROLL_PREFIX, s)
    }
}

impl Invite {
    /// The pasteable form.
    pub fn encode(&self) -> String {
        encode(INVITE_PREFIX, self)
    }

    /// Parses the pasteable form.
    pub fn decode(s: &str) -> Result<Self, TokenError> {
        decode(INVITE_PREFIX, s)
    }
}

/// The pin of a certificate's public key: `blake3:` + hex of BLAKE3(SPKI DER).
pub fn pin_from_spki(spki_der: &[u8]) -> String {
    format!("{PIN_PREFIX}{}", blake3::hash(spki_der).to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> EnrollmentToken {
        EnrollmentToken {
            relay: "127.0.0.1:7443".into(),
            pin: pin_from_spki(b"spki"),
            host: HostId::from("box"),
            secret: Key::from_bytes([7; 32]),
            roots: Vec::new(),
            bind: None,
        }
    }

    #[test]
    fn enrollment_round_trip() {
        let t = token();
        let s = t.encode();
        assert!(s.starts_with(ENROLL_PREFIX));
        assert_eq!(EnrollmentToken::decode(&s).unwrap(), t);
        assert_eq!(EnrollmentToken::decode(&format!("  {s}\n")).unwrap(), t);
    }

    #[test]
    fn wrong_kind_and_damage_are_clear_errors() {
        let s = token().encode();
        assert!(matches!(
            Invite::decode(&s),
            Err(TokenError::WrongPrefix { .. })
        ));
        let damaged = EnrollmentToken::decode(&s[..s.len() - 5]).unwrap_err();
        assert!(damaged.to_string().contains("damaged"), "{damaged}");
        assert_eq!(
            EnrollmentToken::decode("cm-enroll-***"),
            Err(TokenError::Encoding)
        );
    }

    #[test]
    fn pin_golden() {
        assert_eq!(
            pin_from_spki(b""),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
