//! Prompts the relay kept while the host was offline: signed by their author (no channel: the
//! channel may be long gone) with the body `{"sealed": base64url}` = `seal_to_host(host key,
//! prompt JSON)`, the signed body hash over the prompt JSON. They may be up to a day old, so
//! for them alone the signed time may be [`MAX_QUEUED_AGE_MS`] old, and their nonces are
//! remembered that long, in memory and in the state directory, so a relay replaying one after
//! the agent restarted is refused too ([`crate::e2e_state::QueuedNonces`]).

use super::super::body::next_raw_body;
use super::super::error::OpError;
use super::super::frames::FrameReader;
use crate::trust::{HostTrust, Unrecorded};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cm_client::e2e::{HostKeyPair, open_sealed};

use crate::e2e_state::{MAX_QUEUED_AGE_MS, QueuedNonces};
use proto::header::Op;
use proto::ops::ForwardHeader;
use proto::trust::header::{CheckedHeader, REPLAY_WINDOW_MS, body_hash};
use proto::trust::{SignedFields, TrustError};
use serde::Deserialize;
use tokio::io::AsyncRead;

/// The sealed body of a queued prompt.
#[derive(Debug, Deserialize)]
struct SealedBody {
    sealed: String,
}

/// Whether `fwd` is a prompt signed without a channel (a queued prompt, or one sent sealed to
/// the host key). Unverified: [`check`] verifies.
pub(in crate::ops) fn is_queued_prompt(fwd: &ForwardHeader) -> bool {
    fwd.header.op == Op::Prompt
        && fwd
            .header
            .auth
            .as_ref()
            .and_then(|a| a.payload_bytes().ok())
            .and_then(|b| serde_json::from_slice::<SignedFields>(&b).ok())
            .is_some_and(|f| f.channel.is_none())
}

/// The header check of a queued prompt: signature, fields, this host, a signed time at most
/// [`MAX_QUEUED_AGE_MS`] old (and not ahead of this clock by more than the replay window). Its
/// nonce is recorded with [`record`] once the signer's certificates give a role here.
///
/// # Errors
/// The first check that fails.
pub(in crate::ops) fn verify(
    trust: &HostTrust,
    fwd: &ForwardHeader,
    now_ms: u64,
) -> Result<Unrecorded, TrustError> {
    let auth = fwd.header.auth.as_ref().ok_or(TrustError::Unsigned)?;
    let ts_ms = auth.open()?.ts_ms;
    let too_old = now_ms.saturating_sub(ts_ms) > MAX_QUEUED_AGE_MS;
    let ahead = ts_ms.saturating_sub(now_ms) > REPLAY_WINDOW_MS;
    if too_old || ahead {
        return Err(TrustError::Stale {
            skew_ms: now_ms.abs_diff(ts_ms),
            limit_ms: if ahead {
                REPLAY_WINDOW_MS
            } else {
                MAX_QUEUED_AGE_MS
            },
        });
    }
    // The shared check at the signed time (its age is bounded above).
    let checked = proto::trust::header::verify(&fwd.header, trust.host(), ts_ms)?;
    Ok(Unrecorded::new(checked))
}

/// Records a queued prompt's nonce (never seen within the day-long window, which prunes by
/// signed times) and keeps it on disk, so it is refused again even after a restart.
///
/// # Errors
/// `Replayed`, `NoncesFull`, or the nonce file cannot be written.
pub(in crate::ops) fn record(
    nonces: &QueuedNonces,
    unrecorded: Unrecorded,
) -> Result<CheckedHeader, TrustError> {
    let signed_at = unrecorded.header().fields.ts_ms;
    let checked = unrecorded.record_in(&mut nonces.window.lock(), signed_at)?;
    nonces.persist(&checked)?;
    Ok(checked)
}

/// The prompt JSON of a queued prompt's body frame: opened with the host key, its hash the
/// signed one.
///
/// # Errors
/// No body, not a sealed body, a box that does not open, or a hash that differs.
pub(in crate::ops) async fn open_body<R: AsyncRead + Unpin>(
    trust: &HostTrust,
    checked: &CheckedHeader,
    reader: &mut FrameReader<R>,
) -> Result<Vec<u8>, OpError> {
    let raw = next_raw_body(Op::Prompt, reader)
        .await?
        .ok_or_else(|| OpError::BadRequest("prompt needs a request body".into()))?;
    let body: SealedBody = serde_json::from_slice(&raw).map_err(|_| {
        OpError::BadRequest(
            "a prompt without an end-to-end channel must be sealed to the host key \
             ({\"sealed\": …}); update cm-tui"
                .into(),
        )
    })?;
    let sealed = URL_SAFE_NO_PAD
        .decode(body.sealed.as_bytes())
        .map_err(|e| OpError::BadRequest(format!("the sealed prompt is not base64url: {e}")))?;
    let prompt = open_sealed(&HostKeyPair::from_secret(trust.host_secret()), &sealed)?;
    if checked.fields.body.as_deref() != Some(body_hash(&prompt).as_str()) {
        return Err(OpError::BodyMismatch);
    }
    Ok(prompt)
}
