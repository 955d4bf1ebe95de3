//! The signed stream header: an operator's device key signs what a stream asks for (host,
//! workspace, session, operation, a fresh nonce, the time and, where the body matters, its
//! hash), and the host checks it against the header the relay forwarded before anything else.
//!
//! [`sign`] runs on the laptop, [`check`] on the host; the role then comes from
//! [`super::Verifier::role_of`] and [`crate::rbac::authorize`], the same as at the relay.

use super::TrustError;
use super::keys::{DeviceKey, PublicKey};
use super::signed::{Signed, SignedKind};
use crate::ids::{HostId, ReqId, UserId};
use crate::opcode::Op;
use crate::replay::{ReplayError, ReplayWindow};
use crate::template::TemplateRef;
use serde::{Deserialize, Serialize};

/// How far a signed time may be from the host's clock, either way (also how long nonces are
/// remembered).
pub const REPLAY_WINDOW_MS: u64 = 5 * 60 * 1000;

/// Most nonces a host remembers (fail closed beyond: `TrustError::NoncesFull`).
pub const NONCE_CAPACITY: usize = 262_144;

/// The signature on a stream header.
pub type HeaderAuth = Signed<SignedFields>;

/// What [`sign`] and [`check`] read of a stream header (implemented by
/// `crate::header::StreamHeader`; a trait so this module does not depend on that one).
pub trait HeaderFields {
    /// The operation.
    fn op(&self) -> Op;
    /// The request id.
    fn req_id(&self) -> ReqId;
    /// The target host.
    fn host(&self) -> Option<&HostId>;
    /// The target workspace.
    fn workspace(&self) -> Option<&String>;
    /// The target session.
    fn session(&self) -> Option<&String>;
    /// The signature, if any.
    fn auth(&self) -> Option<&HeaderAuth>;
    /// Puts the signature in.
    fn set_auth(&mut self, auth: HeaderAuth);
    /// The channel MAC, if any (see [`super::header_mac`]).
    fn mac(&self) -> Option<&str>;
    /// Puts the channel MAC in.
    fn set_mac(&mut self, mac: String);
}

/// What the operator signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFields {
    /// Format version (1).
    pub v: u32,
    /// The user the device key belongs to.
    pub user: UserId,
    /// The target host.
    pub host: HostId,
    /// The target workspace.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The target session.
    #[serde(default)]
    pub session: Option<String>,
    /// The operation.
    pub op: Op,
    /// The stream's request id.
    pub req_id: ReqId,
    /// 16 random bytes, hex: never accepted twice by a host.
    pub nonce: String,
    /// When it was signed (unix ms, the laptop's clock).
    pub ts_ms: u64,
    /// BLAKE3 (hex) of the body frame's JSON bytes, for operations whose body matters.
    #[serde(default)]
    pub body: Option<String>,
    /// The end-to-end channel the stream is sealed with (hex id), if any.
    #[serde(default)]
    pub channel: Option<String>,
    /// For `template_apply` on a channel: the template the sealed body carries (name, version,
    /// content hash), so the relay can audit what is applied without reading the body; the
    /// host checks the body's template is this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
}

impl SignedKind for SignedFields {
    const DOMAIN: &'static str = "header/v1";
}

/// BLAKE3 (hex) of a body frame's JSON bytes.
pub fn body_hash(body_json: &[u8]) -> String {
    blake3::hash(body_json).to_hex().to_string()
}

/// What the operator adds to the plaintext header: the signer, the stream nonce, the time, the
/// body hash and the channel.
#[derive(Debug, Clone)]
pub struct SignInput<'a> {
    /// The user.
    pub user: &'a UserId,
    /// Their device key.
    pub key: &'a DeviceKey,
    /// 16 fresh random bytes.
    pub nonce: [u8; 16],
    /// Now (unix ms).
    pub now_ms: u64,
    /// See [`SignedFields::body`].
    pub body: Option<String>,
    /// See [`SignedFields::channel`].
    pub channel: Option<String>,
    /// See [`SignedFields::template`].
    pub template: Option<TemplateRef>,
}

/// Signs `header` (which must name a host) and puts the signature into it.
///
/// # Errors
/// [`TrustError::Payload`] when the header names no host.
pub fn sign(header: &mut impl HeaderFields, input: SignInput<'_>) -> Result<(), TrustError> {
    let host = header
        .host()
        .cloned()
        .ok_or_else(|| TrustError::Payload("only host requests are signed".into()))?;
    let fields = SignedFields {
        v: 1,
        user: input.user.clone(),
        host,
        workspace: header.workspace().cloned(),
        session: header.session().cloned(),
        op: header.op(),
        req_id: header.req_id(),
        nonce: hex::encode(input.nonce),
        ts_ms: input.now_ms,
        body: input.body,
        channel: input.channel,
        template: input.template,
    };
    header.set_auth(HeaderAuth::sign(&fields, input.key));
    Ok(())
}

/// A header whose signature, target, time and nonce checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHeader {
    /// What was signed.
    pub fields: SignedFields,
    /// The device key that signed it.
    pub key: PublicKey,
    /// The stream nonce.
    pub nonce: [u8; 16],
}

/// The host's check of a forwarded header, before any role is looked at: a signature, by the
/// key it names, over fields equal to the forwarded header's, for this host, signed within
/// [`REPLAY_WINDOW_MS`] of `now_ms`, with a nonce not seen before (recorded in `nonces`, a
/// window made with [`nonce_window`]). [`verify`] then [`record_nonce`].
///
/// # Errors
/// The first check that fails.
pub fn check(
    header: &impl HeaderFields,
    this_host: &HostId,
    now_ms: u64,
    nonces: &mut ReplayWindow,
) -> Result<CheckedHeader, TrustError> {
    let checked = verify(header, this_host, now_ms)?;
    record_nonce(&checked, now_ms, nonces)?;
    Ok(checked)
}

/// Everything [`check`] checks but the nonce: the signature, the fields, this host, the time.
/// Touches no shared state (a host runs it outside its locks, then [`record_nonce`]); the
/// header counts only once its nonce is recorded.
///
/// # Errors
/// The first check that fails.
pub fn verify(
    header: &impl HeaderFields,
    this_host: &HostId,
    now_ms: u64,
) -> Result<CheckedHeader, TrustError> {
    let auth = header.auth().ok_or(TrustError::Unsigned)?;
    let fields = auth.open()?;
    let nonce = check_fields(header, &fields, this_host, now_ms)?;
    Ok(CheckedHeader {
        key: auth.key,
        fields,
        nonce,
    })
}

/// What [`verify`] checks besides the signature: the signed fields name this host, equal the
/// forwarded header's, were signed within [`REPLAY_WINDOW_MS`]; returns the nonce.
///
/// # Errors
/// The first check that fails.
pub(super) fn check_fields(
    header: &impl HeaderFields,
    fields: &SignedFields,
    this_host: &HostId,
    now_ms: u64,
) -> Result<[u8; 16], TrustError> {
    if fields.host != *this_host {
        return Err(TrustError::WrongHost {
            signed: fields.host.clone(),
            this: this_host.clone(),
        });
    }
    let mismatch = |field| Err(TrustError::HeaderMismatch { field });
    if header.host() != Some(&fields.host) {
        return mismatch("host");
    }
    if header.op() != fields.op {
        return mismatch("op");
    }
    if header.workspace() != fields.workspace.as_ref() {
        return mismatch("workspace");
    }
    if header.session() != fields.session.as_ref() {
        return mismatch("session");
    }
    if header.req_id() != fields.req_id {
        return mismatch("req_id");
    }
    let skew_ms = now_ms.abs_diff(fields.ts_ms);
    if skew_ms > REPLAY_WINDOW_MS {
        return Err(TrustError::Stale {
            skew_ms,
            limit_ms: REPLAY_WINDOW_MS,
        });
    }
    let mut nonce = [0u8; 16];
    hex::decode_to_slice(&fields.nonce, &mut nonce)
        .map_err(|e| TrustError::Payload(format!("nonce: {e}")))?;
    Ok(nonce)
}

/// Records a [`verify`]d header's nonce in `nonces`: the last step of [`check`].
///
/// # Errors
/// [`TrustError::Replayed`] for a nonce seen before, [`TrustError::NoncesFull`].
pub fn record_nonce(
    checked: &CheckedHeader,
    now_ms: u64,
    nonces: &mut ReplayWindow,
) -> Result<(), TrustError> {
    let mut padded = [0u8; 32];
    padded[..16].copy_from_slice(&checked.nonce);
    nonces
        .check_and_insert(padded, checked.fields.ts_ms, now_ms)
        .map_err(|e| match e {
            ReplayError::Replayed => TrustError::Replayed,
            ReplayError::Full => TrustError::NoncesFull,
        })
}

/// The nonce window a host keeps for [`check`].
pub fn nonce_window() -> ReplayWindow {
    // Remember a nonce for the whole window on both sides of its timestamp.
    ReplayWindow::new(NONCE_CAPACITY, 2 * REPLAY_WINDOW_MS)
}
