//! Key material: the host's static X25519 key, the channel (key and public id) both ends hold
//! after the handshake, and the per-stream directional keys derived from it.

use super::E2eError;
use curve25519_dalek::montgomery::MontgomeryPoint;
use std::fmt;

/// blake3 `derive_key` contexts: one per purpose, so no two derived values can collide.
const CHANNEL_KEY_CONTEXT: &str = "codemantle e2e v1 channel key";
const CHANNEL_ID_CONTEXT: &str = "codemantle e2e v1 channel id";
const OPERATOR_TO_AGENT_CONTEXT: &str = "codemantle e2e v1 stream key operator to agent";
const AGENT_TO_OPERATOR_CONTEXT: &str = "codemantle e2e v1 stream key agent to operator";
const HEADER_MAC_CONTEXT: &str = "codemantle e2e v1 header mac";

/// A host's static X25519 key (the Noise `s` of the agent). `Debug` shows only the public half.
#[derive(Clone)]
pub struct HostKeyPair {
    secret: [u8; 32],
    public: [u8; 32],
}

impl HostKeyPair {
    /// A fresh key from the OS random source.
    ///
    /// # Errors
    /// [`E2eError::Random`] when the OS gives no randomness.
    pub fn generate() -> Result<Self, E2eError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| E2eError::Random(e.to_string()))?;
        Ok(Self::from_secret(secret))
    }

    /// The key pair of a stored secret (X25519 clamping applies, as in Noise).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        Self { secret, public }
    }

    /// The secret, for the agent's secret store.
    pub fn secret(&self) -> [u8; 32] {
        self.secret
    }

    /// The public key, for the host certificate.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl fmt::Debug for HostKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKeyPair")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// The public name of an end-to-end channel (sent in signed stream headers). Derived from the
/// handshake transcript hash, so it says nothing about the channel key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ChannelId(pub [u8; 16]);

impl ChannelId {
    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses [`ChannelId::to_hex`]'s form.
    ///
    /// # Errors
    /// [`E2eError::ChannelIdHex`] when `s` is not 32 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, E2eError> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id).map_err(|_| E2eError::ChannelIdHex(s.to_owned()))?;
        Ok(Self(id))
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Which end of a channel this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The operator (Noise initiator, cm-tui).
    Operator,
    /// The agent (Noise responder, cm-agent).
    Agent,
}

/// An established end-to-end channel: a secret key and its public id, the same on both ends.
/// `Debug` shows only the id.
#[derive(Clone)]
pub struct Channel {
    id: ChannelId,
    pub(crate) key: [u8; 32],
}

impl Channel {
    /// From the Noise split keys and the handshake hash (see the module doc).
    pub(crate) fn from_handshake(split: ([u8; 32], [u8; 32]), handshake_hash: &[u8]) -> Self {
        let mut material = Vec::with_capacity(64 + handshake_hash.len());
        material.extend_from_slice(&split.0);
        material.extend_from_slice(&split.1);
        material.extend_from_slice(handshake_hash);
        let key = blake3::derive_key(CHANNEL_KEY_CONTEXT, &material);
        let id_hash = blake3::derive_key(CHANNEL_ID_CONTEXT, handshake_hash);
        let mut id = [0u8; 16];
        id.copy_from_slice(&id_hash[..16]);
        Self {
            id: ChannelId(id),
            key,
        }
    }

    /// The channel's public id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The key of the MAC on every signed stream header on this channel
    /// (`proto::trust::header_mac`): only the two ends hold it, so a header that passes it came
    /// from the operator's device unchanged.
    pub fn header_mac_key(&self) -> [u8; 32] {
        blake3::derive_key(HEADER_MAC_CONTEXT, &self.key)
    }

    /// The two keys of one stream (named by the signed header's 16-byte nonce), seen from
    /// `side`: the operator's send key is the agent's receive key and vice versa. A stream nonce
    /// must never be used twice on one channel (the agent's replay window refuses repeats).
    pub fn stream_keys(&self, stream_nonce: &[u8; 16], side: Side) -> StreamKeys {
        let mut material = [0u8; 48];
        material[..32].copy_from_slice(&self.key);
        material[32..].copy_from_slice(stream_nonce);
        let to_agent = blake3::derive_key(OPERATOR_TO_AGENT_CONTEXT, &material);
        let to_operator = blake3::derive_key(AGENT_TO_OPERATOR_CONTEXT, &material);
        match side {
            Side::Operator => StreamKeys {
                send: to_agent,
                recv: to_operator,
            },
            Side::Agent => StreamKeys {
                send: to_operator,
                recv: to_agent,
            },
        }
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.id.to_hex())
            .finish_non_exhaustive()
    }
}

/// One stream's keys from one side's view. `Debug` shows no key.
#[derive(Clone)]
pub struct StreamKeys {
    pub(crate) send: [u8; 32],
    pub(crate) recv: [u8; 32],
}

impl fmt::Debug for StreamKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamKeys").finish_non_exhaustive()
    }
}
