//! The h1/h2 handshake (design §4) as pure functions.
//!
//! Flow, on the first bidirectional stream of a fresh QUIC connection:
//! ```text
//! client                                         relay
//!   h1 {v, kind, cred_id, nonce_c, ts_ms, mac1}  ──▶  verify_h1: known? mac? revoked? expired?
//!                                                     skew? replay?  (one generic error out)
//!   verify_h2 (relay proves it holds K too)  ◀──  h2 {conn_id, nonce_r, ts_ms, mac2}
//! ```
//! `mac1 = BLAKE3-keyed_K("cm/h1" ‖ v ‖ kind ‖ len ‖ cred_id ‖ nonce_c ‖ ts_ms ‖ exporter)` and
//! `mac2 = BLAKE3-keyed_K("cm/h2" ‖ v ‖ mac1 ‖ len ‖ conn_id ‖ nonce_r ‖ ts_ms)`; integers are
//! big-endian, `len` is a u16 byte count. `exporter` is 32 bytes of the TLS keying-material
//! exporter of this very connection (label [`EXPORTER_LABEL`]), so an h1 captured anywhere
//! cannot be replayed on another connection.

use crate::ids::{ConnId, CredId, MAX_ID_LEN, UserId};
use crate::replay::{ReplayError, ReplayWindow};
use crate::wire_error::WireError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain separation for mac1: a MAC computed for h1 can never be valid as any other MAC.
pub const DOMAIN_H1: &[u8] = b"cm/h1";
/// Domain separation for mac2, distinct from [`DOMAIN_H1`] so the relay's proof cannot be
/// replayed as a client's and vice versa.
pub const DOMAIN_H2: &[u8] = b"cm/h2";
/// Label for the TLS keying-material exporter (RFC 5705 / RFC 8446 §7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-codemantle/1 handshake";
/// Length of the exporter output mixed into mac1.
pub const EXPORTER_LEN: usize = 32;
/// Largest accepted difference between a peer's timestamp and ours (design §4: ±30 s).
pub const MAX_CLOCK_SKEW_MS: u64 = 30_000;

pub use crate::bytes32::Bytes32;

/// A 32-byte credential secret `K`. Its `Debug` never prints the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key(pub Bytes32);

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Bytes32(bytes))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }

    /// Hex form, for storage.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.0)
    }

    /// Parses the hex form.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).ok()?;
        Some(Self::from_bytes(out))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Who is dialing the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerKind {
    /// A `cm-agent` on a managed host; its credential is the host's enrollment secret.
    Agent,
    /// A `cm-tui` operator; its credential is a short-lived login credential.
    Operator,
}

impl PeerKind {
    fn tag(self) -> u8 {
        match self {
            Self::Agent => 1,
            Self::Operator => 2,
        }
    }
}

/// The first frame a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientHello {
    /// Authenticate with a credential.
    H1(H1),
    /// Exchange an invite or a password for a credential (the connection then closes).
    Login(LoginRequest),
    /// Ask the relay's clock (for `cm-agent doctor`: skew without authenticating, so a running
    /// agent's connection is not replaced). The relay answers [`ServerHello::Time`] and closes.
    Time,
}

/// The relay's answer to [`ClientHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerHello {
    /// Authentication succeeded; the relay proves it holds the key.
    H2(H2),
    /// Login succeeded; here is the credential.
    LoginOk(IssuedCredential),
    /// The relay's clock, unix ms, in answer to [`ClientHello::Time`].
    Time {
        /// Relay clock.
        ts_ms: u64,
    },
    /// Refused. For authentication this is always the one generic error.
    Error(WireError),
}

/// Client → relay authentication message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H1 {
    /// Protocol version.
    pub v: u32,
    /// Agent or operator.
    pub kind: PeerKind,
    /// Which credential's key made `mac`.
    pub cred_id: CredId,
    /// 32 fresh random bytes.
    pub nonce: Bytes32,
    /// Client clock, unix milliseconds.
    pub ts_ms: u64,
    /// mac1.
    pub mac: Bytes32,
}

/// Relay → client proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct H2 {
    /// The relay's id for this authenticated connection.
    pub conn_id: ConnId,
    /// 32 fresh random bytes from the relay.
    pub nonce: Bytes32,
    /// Relay clock, unix milliseconds.
    pub ts_ms: u64,
    /// mac2.
    pub mac: Bytes32,
}

/// A login request (design §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Protocol version.
    pub v: u32,
    /// Who logs in.
    pub user: UserId,
    /// With what.
    pub method: LoginMethod,
    /// Requested lifetime in seconds; the relay caps it.
    #[serde(default)]
    pub ttl_s: Option<u64>,
    /// A label for the credential (e.g. the laptop's hostname), shown in `creds list`.
    #[serde(default)]
    pub label: Option<String>,
    /// The laptop's device key (zero-trust): recorded by the relay as pending for the user
    /// until an admin certifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<crate::trust::PublicKey>,
}

/// How a login proves who it is.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoginMethod {
    /// A one-time invite secret from `cm-relay init` or `cm-relay user add`.
    Invite {
        /// The invite's secret.
        secret: Bytes32,
        /// Optional password to set for later password logins.
        #[serde(default)]
        new_password: Option<String>,
    },
    /// A password (checked against an argon2id hash).
    Password {
        /// The password.
        password: String,
        /// The current TOTP code, for users who enrolled a second factor.
        #[serde(default)]
        totp: Option<String>,
    },
}

impl fmt::Debug for LoginMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invite { .. } => f.write_str("Invite(<redacted>)"),
            Self::Password { .. } => f.write_str("Password(<redacted>)"),
        }
    }
}

/// A credential the relay issued at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredential {
    /// The credential's id.
    pub cred_id: CredId,
    /// Its secret `K`.
    pub secret: Key,
    /// Expiry, unix milliseconds.
    pub expires_at_ms: u64,
    /// The user it belongs to.
    pub user: UserId,
}

/// What the relay knows about a credential, looked up by `cred_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    /// The shared secret.
    pub key: Key,
    /// Which kind of peer may present it.
    pub kind: PeerKind,
    /// Revoked credentials are refused at once.
    pub revoked: bool,
    /// Expiry (unix ms); `None` for host credentials, which live until revoked.
    pub expires_at_ms: Option<u64>,
}

/// Why a handshake failed. Precise, for logs and the audit trail; the peer only ever sees
/// [`HandshakeError::public_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The peer speaks another protocol version.
    #[error("unsupported protocol version {got}")]
    UnsupportedVersion {
        /// The version it sent.
        got: u32,
    },
    /// No credential with that id.
    #[error("unknown credential")]
    UnknownCredential,
    /// The cred_id is longer than any id we issue.
    #[error("credential id too long")]
    CredentialIdTooLong,
    /// An agent credential presented as operator or the reverse.
    #[error("credential presented by the wrong kind of peer")]
    KindMismatch,
    /// The MAC does not verify: wrong key, tampered field, or another connection's exporter.
    #[error("bad mac")]
    BadMac,
    /// The credential was revoked.
    #[error("credential revoked")]
    Revoked,
    /// The credential expired.
    #[error("credential expired")]
    Expired,
    /// The timestamp is too far from our clock.
    #[error("clock skew of {skew_ms} ms exceeds the limit")]
    ClockSkew {
        /// Peer clock minus ours (positive: peer ahead).
        skew_ms: i64,
    },
    /// The nonce was seen before.
    #[error("replayed nonce")]
    Replay,
    /// The replay window is full (fail closed).
    #[error("replay window full")]
    ReplayWindowFull,
}

impl HandshakeError {
    /// The one generic error the peer sees, whatever the cause.
    pub fn public_error(&self) -> WireError {
        WireError::auth_failed()
    }
}

fn push_str(input: &mut Vec<u8>, s: &str) {
    // Ids are bounded by MAX_ID_LEN (checked before MACs are computed on the verify side);
    // clamp defensively so the length field can never wrap.
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    input.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    input.extend_from_slice(bytes);
}

/// The exact bytes mac1 covers.
pub fn h1_mac_input(
    v: u32,
    kind: PeerKind,
    cred_id: &CredId,
    nonce: &[u8; 32],
    ts_ms: u64,
    exporter: &[u8; EXPORTER_LEN],
) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN_H1.len() + 4 + 1 + 2 + cred_id.0.len() + 32 + 8 + 32);
    input.extend_from_slice(DOMAIN_H1);
    input.extend_from_slice(&v.to_be_bytes());
    input.push(kind.tag());
    push_str(&mut input, cred_id.as_str());
    input.extend_from_slice(nonce);
    input.extend_from_slice(&ts_ms.to_be_bytes());
    input.extend_from_slice(exporter);
    input
}

/// The exact bytes mac2 covers.
pub fn h2_mac_input(
    v: u32,
    mac1: &[u8; 32],
    conn_id: &ConnId,
    nonce: &[u8; 32],
    ts_ms: u64,
) -> Vec<u8> {
    let mut input = Vec::with_capacity(DOMAIN_H2.len() + 4 + 32 + 2 + conn_id.0.len() + 32 + 8);
    input.extend_from_slice(DOMAIN_H2);
    input.extend_from_slice(&v.to_be_bytes());
    input.extend_from_slice(mac1);
    push_str(&mut input, conn_id.as_str());
    input.extend_from_slice(nonce);
    input.extend_from_slice(&ts_ms.to_be_bytes());
    input
}

fn mac(key: &Key, input: &[u8]) -> blake3::Hash {
    blake3::keyed_hash(key.as_bytes(), input)
}

/// Builds h1 for a credential on the connection whose exporter output is `exporter`.
pub fn build_h1(
    key: &Key,
    kind: PeerKind,
    cred_id: CredId,
    nonce: [u8; 32],
    ts_ms: u64,
    exporter: &[u8; EXPORTER_LEN],
) -> H1 {
    let v = crate::PROTOCOL_VERSION;
    let mac1 = mac(
        key,
        &h1_mac_input(v, kind, &cred_id, &nonce, ts_ms, exporter),
    );
    H1 {
        v,
        kind,
        cred_id,
        nonce: Bytes32(nonce),
        ts_ms,
        mac: Bytes32(*mac1.as_bytes()),
    }
}

fn check_skew(ts_ms: u64, now_ms: u64) -> Result<(), HandshakeError> {
    let skew = i128::from(ts_ms) - i128::from(now_ms);
    if skew.unsigned_abs() > u128::from(MAX_CLOCK_SKEW_MS) {
        let skew_ms = i64::try_from(skew).unwrap_or(if skew > 0 { i64::MAX } else { i64::MIN });
        return Err(HandshakeError::ClockSkew { skew_ms });
    }
    Ok(())
}

/// Verifies h1 at the relay. `record` is the lookup result for `h1.cred_id`.
///
/// Checks run cheapest-first, and the nonce is remembered only after everything else passed,
/// so unauthenticated peers cannot fill the replay window.
pub fn verify_h1(
    h1: &H1,
    record: Option<&CredentialRecord>,
    exporter: &[u8; EXPORTER_LEN],
    now_ms: u64,
    replay: &mut ReplayWindow,
) -> Result<(), HandshakeError> {
    // Stops downgrade to an older, weaker protocol (v is also inside the MAC).
    if h1.v != crate::PROTOCOL_VERSION {
        return Err(HandshakeError::UnsupportedVersion { got: h1.v });
    }
    // Stops oversized ids from costing work before anything is known.
    if h1.cred_id.0.len() > MAX_ID_LEN {
        return Err(HandshakeError::CredentialIdTooLong);
    }
    // Stops guessing: no record, no entry.
    let record = record.ok_or(HandshakeError::UnknownCredential)?;
    // Stops a host secret from opening an operator session and the reverse.
    if record.kind != h1.kind {
        return Err(HandshakeError::KindMismatch);
    }
    // Stops forgery, tampering with any field, and replay onto another connection (the
    // exporter differs per connection). `blake3::Hash == [u8; 32]` is constant-time.
    let expected = mac(
        &record.key,
        &h1_mac_input(h1.v, h1.kind, &h1.cred_id, &h1.nonce.0, h1.ts_ms, exporter),
    );
    if expected != h1.mac.0 {
        return Err(HandshakeError::BadMac);
    }
    // Stops use of a credential after the kill switch or logout.
    if record.revoked {
        return Err(HandshakeError::Revoked);
    }
    // Stops use of a stolen credential after its short lifetime.
    if record.expires_at_ms.is_some_and(|exp| now_ms >= exp) {
        return Err(HandshakeError::Expired);
    }
    // Bounds how long a captured h1 could matter, and so how long nonces must be remembered.
    check_skew(h1.ts_ms, now_ms)?;
    // Stops replay of an h1 within the skew window on the same connection's exporter.
    replay
        .check_and_insert(h1.nonce.0, h1.ts_ms, now_ms)
        .map_err(|e| match e {
            ReplayError::Replayed => HandshakeError::Replay,
            ReplayError::Full => HandshakeError::ReplayWindowFull,
        })
}

/// Builds h2 at the relay after [`verify_h1`] succeeded.
pub fn build_h2(key: &Key, h1: &H1, conn_id: ConnId, nonce: [u8; 32], ts_ms: u64) -> H2 {
    let mac2 = mac(
        key,
        &h2_mac_input(crate::PROTOCOL_VERSION, &h1.mac.0, &conn_id, &nonce, ts_ms),
    );
    H2 {
        conn_id,
        nonce: Bytes32(nonce),
        ts_ms,
        mac: Bytes32(*mac2.as_bytes()),
    }
}

/// Verifies h2 at the client: the relay must prove it holds `K` and answer *this* h1.
pub fn verify_h2(key: &Key, h1: &H1, h2: &H2, now_ms: u64) -> Result<(), HandshakeError> {
    if h2.conn_id.0.len() > MAX_ID_LEN {
        return Err(HandshakeError::CredentialIdTooLong);
    }
    // Stops an impostor relay (one that does not hold K) and a replayed h2 from another
    // handshake (mac1 differs). Constant-time comparison via blake3::Hash.
    let expected = mac(
        key,
        &h2_mac_input(
            crate::PROTOCOL_VERSION,
            &h1.mac.0,
            &h2.conn_id,
            &h2.nonce.0,
            h2.ts_ms,
        ),
    );
    if expected != h2.mac.0 {
        return Err(HandshakeError::BadMac);
    }
    check_skew(h2.ts_ms, now_ms)
}

#[cfg(test)]
mod tests;
