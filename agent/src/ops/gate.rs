//! The zero-trust gate (issue #20): on a host that verifies operators itself, every forwarded
//! stream passes here before admission, and the relay's word counts for nothing.
//!
//! In order:
//! 1. the signed header ([`HostTrust::verify_header`]: signature, fields equal to the forwarded
//!    header, this host, time within ±5 min; its nonce is recorded, and must be unseen, once the
//!    signer holds the channel it names — or for `e2e_open` once its certificates give it a
//!    role — so keys nobody certified cannot fill the window), then a fresh owner-signed
//!    revocation list ([`HostTrust::check_fresh`]). A header on a channel that carries the
//!    channel's MAC is authenticated by the MAC instead ([`HostTrust::check_header_mac`], the
//!    same field, time and nonce checks), and its signature is verified beside the work
//!    ([`crate::signature_check`]: once short work has answered, or while long work runs): a
//!    bad one stops the stream if it is still running and forgets the channel. A stream that
//!    runs on re-checks its role whenever the host takes a revocation list, rotation or
//!    retirement, and stops when it is gone;
//! 2. `e2e_open` opens a channel ([`super::e2e::open`]) and is answered in a plain frame;
//! 3. every other operation must name a channel this host holds, opened by the same device key;
//!    the role comes from that channel's certificates now (a new revocation applies at once),
//!    then `proto::rbac::authorize`. The handlers see the signed user and the certified role,
//!    never the relay's.
//!
//!
//! A prompt signed without a channel (queued at the relay while the host was offline) takes
//! its own path ([`queued`]): body sealed to the host key, signed time up to a day old.
//!
//! A refusal is one plain `Reply` error frame, logged at warn on `cm_agent::audit` with the
//! operation, the signed user, the relay's principal and the reason ("refused: relay tampered"
//! when the relay changed or replayed what the operator signed). On an accepted stream on a
//! channel everything after the header, both ways, is sealed with the stream's keys (`cm_client::e2e::seal_stream`): the body, the reply,
//! events and a port forward's raw bytes.

use super::admit;
use super::body::next_raw_body;
use super::e2e::channels::OpenChannel;
use super::e2e::queued;
use super::error::OpError;
use super::frames::{FrameReader, write_frame};
use super::handler;
use crate::signature_check::Outcome;
use crate::trust::HostTrust;
use crate::workspaces::Workspaces;
use cm_client::e2e::{ChannelId, Side, seal_stream};
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use proto::ids::UserId;
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::{Decision, Ownership, Role, authorize};
use proto::trust::header::{CheckedHeader, body_hash};
use proto::trust::header_mac::read_unverified;
use proto::trust::{PendingSignature, PublicKey, SignedFields, TrustError};
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Serves one stream on a zero-trust host (see the module docs); finishes `send`.
pub(super) async fn serve<R, W, G>(
    workspaces: &Workspaces,
    trust: &HostTrust,
    fwd: &ForwardHeader,
    mut reader: FrameReader<R>,
    mut send: W,
    peer_gone: G,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Future<Output = ()> + Send,
{
    let now = cm_client::time::now_ms();
    // Subscribed before anything is checked: whatever the host takes from here on is checked
    // against this stream again (a list taken while its body is awaited included).
    let changes = trust.changes();
    if queued::is_queued_prompt(fwd) {
        return queued_prompt(workspaces, trust, fwd, reader, send, peer_gone, now).await;
    }
    if fwd.header.op == Op::E2eOpen {
        let verified = trust
            .verify_header(&fwd.header, now)
            .and_then(|v| trust.check_fresh(now).map(|()| v));
        let unrecorded = match verified {
            Ok(unrecorded) => unrecorded,
            Err(e) => return refuse(fwd, None, send, e.into()).await,
        };
        let user = unrecorded.header().fields.user.clone();
        let opened = super::e2e::open(workspaces, trust, unrecorded, &mut reader, now).await;
        match opened {
            Ok(opened) => super::write_reply(&mut send, super::handler::json(&opened)).await,
            Err(e) => return refuse(fwd, Some(&user), send, e).await,
        }
        let _ = send.shutdown().await;
        return;
    }
    let (checked, signature) = match check(workspaces, trust, fwd, now) {
        Ok(checked) => checked,
        Err(e) => return refuse(fwd, None, send, e).await,
    };
    let (open, signed_fwd) = match on_channel(workspaces, trust, fwd, &checked, now) {
        Ok(admitted) => admitted,
        Err(e) => return refuse(fwd, Some(&checked.fields.user), send, e).await,
    };
    let keys = open.channel.stream_keys(&checked.nonce, Side::Agent);
    let buffered = std::io::Cursor::new(reader.take_buffered());
    let (recv, mut send) = seal_stream(keys, buffered.chain(reader.into_inner()), send);
    let mut reader = FrameReader::new(recv, MAX_FRAME_LEN);
    let admitted = match signed_body(&mut reader, &checked.fields).await {
        Ok(()) => admit::admit(workspaces, &signed_fwd),
        Err(e) => {
            audit(fwd, Some(&checked.fields.user), &e);
            Err(e)
        }
    };
    // Taken away while it runs (a revocation list taken): the work stops.
    let revoked = revoked_meanwhile(
        workspaces,
        trust,
        changes,
        &checked,
        &open.certs,
        fwd.header.op,
    );
    let work = async {
        let work = async {
            match admitted {
                Ok(rt) => {
                    let cx = handler::Cx::new(workspaces, &signed_fwd, rt);
                    handler::dispatch(&cx, &mut reader, &mut send, peer_gone).await;
                }
                Err(e) => super::write_reply(&mut send, Err(e)).await,
            }
        };
        tokio::select! {
            biased;
            () = work => None,
            e = revoked => Some(e),
        }
    };
    // After a refusal above, the signature is dropped unchecked: no work ran on it.
    let (stopped, still_checking) = match signature {
        None => (work.await, None),
        Some(signature) => match trust.signature_checks().beside(signature, work).await {
            Outcome::Verified(stopped) => (stopped, None),
            Outcome::WorkDone(stopped, rest) => (stopped, Some(rest)),
            // Dropped unfinished: no fin record, so the operator sees the stream fail.
            Outcome::Failed(e) => return bad_signature(workspaces, fwd, &checked, &e),
        },
    };
    match stopped {
        None => {
            let _ = send.shutdown().await;
        }
        // No fin record either: the operator sees the stream fail.
        Some(e) => tracing::warn!(
            target: "cm_agent::audit",
            op = fwd.header.op.as_str(),
            user = %checked.fields.user,
            key = %checked.key.fingerprint(),
            reason = %e,
            "stopped a running stream: its operator's certificates no longer allow it"
        ),
    }
    if let Some(rest) = still_checking
        && let Err(e) = rest.verdict().await
    {
        bad_signature(workspaces, fwd, &checked, &e);
    }
}

/// Resolves, with why, once the certificates `checked`'s signer showed (or this host's
/// `[policy]`) no longer allow `op` here: checked again each time the host takes a revocation
/// list, rotation or retirement after `changes` was subscribed (before the stream's checks, so
/// nothing taken in between is missed), while the work runs (a watch, a port forward, a long
/// answer). Never resolves otherwise.
async fn revoked_meanwhile(
    workspaces: &Workspaces,
    trust: &HostTrust,
    mut changes: tokio::sync::watch::Receiver<u64>,
    checked: &CheckedHeader,
    certs: &[proto::trust::Cert],
    op: Op,
) -> OpError {
    loop {
        if changes.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = cm_client::time::now_ms();
        let allowed = trust
            .role_of(&checked.fields.user, &checked.key, certs, now)
            .map_err(OpError::from)
            .and_then(|role| match authorize(Some(role), op, Ownership::None) {
                Decision::Deny(reason) => Err(OpError::Denied(reason)),
                Decision::Allow => workspaces.policy().check(op, role).map_err(OpError::from),
            });
        if let Err(e) = allowed {
            return e;
        }
    }
}

/// The header's signature (or, on a channel, its channel MAC: then the signature comes back to
/// verify beside the work), target and time; the nonce is recorded only once the signer is
/// shown to hold the channel the header names (so keys nobody certified cannot fill the nonce
/// window); then the revocation list's freshness.
fn check(
    workspaces: &Workspaces,
    trust: &HostTrust,
    fwd: &ForwardHeader,
    now: u64,
) -> Result<(CheckedHeader, Option<PendingSignature>), OpError> {
    let header = &fwd.header;
    let checked = if header.mac.is_some() {
        let unverified = read_unverified(header)?;
        // Not marked used before the MAC authenticates the header.
        let open = channel_of(
            workspaces,
            &unverified.fields,
            &unverified.key,
            now,
            Lookup::Peek,
        )?;
        let mac_key = open.channel.header_mac_key();
        let (checked, signature) = trust.check_header_mac(header, unverified, now, &mac_key)?;
        (checked, Some(signature))
    } else {
        let unrecorded = trust.verify_header(header, now)?;
        let fields = &unrecorded.header().fields;
        channel_of(
            workspaces,
            fields,
            &unrecorded.header().key,
            now,
            Lookup::Peek,
        )?;
        (trust.record_nonce(unrecorded, now)?, None)
    };
    trust.check_fresh(now)?;
    Ok(checked)
}

/// Whether a channel lookup marks the channel used (only once the header is authenticated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    Peek,
    Use,
}

/// A header signed badly under its channel's good MAC: only the operator's device can send one.
/// Logged, and the channel forgotten.
fn bad_signature(
    workspaces: &Workspaces,
    fwd: &ForwardHeader,
    checked: &CheckedHeader,
    e: &TrustError,
) {
    let forgotten = checked
        .fields
        .channel
        .as_deref()
        .and_then(|hex| ChannelId::from_hex(hex).ok())
        .is_some_and(|id| workspaces.e2e().channels.remove(&id));
    tracing::warn!(
        target: "cm_agent::audit",
        op = fwd.header.op.as_str(),
        user = %checked.fields.user,
        key = %checked.key.fingerprint(),
        reason = %e,
        channel_forgotten = forgotten,
        "refused: the operator's device sent a bad signature under its channel's MAC; the stream was stopped"
    );
}

/// The channel the signed header names, and the header the handlers see: the signed user with
/// the role its certificates give now.
fn on_channel(
    workspaces: &Workspaces,
    trust: &HostTrust,
    fwd: &ForwardHeader,
    checked: &CheckedHeader,
    now: u64,
) -> Result<(Arc<OpenChannel>, ForwardHeader), OpError> {
    let open = channel_of(workspaces, &checked.fields, &checked.key, now, Lookup::Use)?;
    let signed_fwd = certified(trust, fwd, checked, &open.certs, now)?;
    Ok((open, signed_fwd))
}

/// The channel `fields` name, which `key` (the signer) must have opened as the signed user.
fn channel_of(
    workspaces: &Workspaces,
    fields: &SignedFields,
    key: &PublicKey,
    now: u64,
    lookup: Lookup,
) -> Result<Arc<OpenChannel>, OpError> {
    let hex = fields.channel.as_deref().ok_or(OpError::NoChannel)?;
    let id = ChannelId::from_hex(hex)?;
    let channels = &workspaces.e2e().channels;
    let open = match lookup {
        Lookup::Peek => channels.peek(&id, now),
        Lookup::Use => channels.get(&id, now),
    }
    .ok_or_else(|| OpError::ChannelUnknown(hex.to_owned()))?;
    if open.key != *key || open.user != fields.user {
        return Err(OpError::ChannelNotYours(hex.to_owned()));
    }
    Ok(open)
}

/// The header the handlers see: the signed user, with the role `certs` give them here now
/// (which must allow the operation); a relay that said otherwise is logged.
fn certified(
    trust: &HostTrust,
    fwd: &ForwardHeader,
    checked: &CheckedHeader,
    certs: &[proto::trust::Cert],
    now: u64,
) -> Result<ForwardHeader, OpError> {
    let user = &checked.fields.user;
    let role = trust.role_of(user, &checked.key, certs, now)?;
    let op = fwd.header.op;
    if let Decision::Deny(reason) = authorize(Some(role), op, Ownership::None) {
        return Err(OpError::Denied(reason));
    }
    if fwd.principal != *user || fwd.role != role {
        tracing::warn!(
            target: "cm_agent::audit",
            op = op.as_str(),
            user = %user,
            %role,
            relay_principal = %fwd.principal,
            relay_role = %fwd.role,
            "relay's principal differs from the signed one; using the signed user and certified role"
        );
    }
    Ok(ForwardHeader {
        header: fwd.header.clone(),
        principal: user.clone(),
        role,
        cred_id: fwd.cred_id.clone(),
    })
}

/// A prompt signed without a channel (see [`queued`]): checked with the day-long window,
/// role from the certificates the operator showed this host before, body opened with the host
/// key; answered in plain frames (the relay's queue reads the answer).
async fn queued_prompt<R, W, G>(
    workspaces: &Workspaces,
    trust: &HostTrust,
    fwd: &ForwardHeader,
    mut reader: FrameReader<R>,
    mut send: W,
    peer_gone: G,
    now: u64,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Future<Output = ()> + Send,
{
    let unrecorded =
        match queued::verify(trust, fwd, now).and_then(|c| trust.check_fresh(now).map(|()| c)) {
            Ok(unrecorded) => unrecorded,
            Err(e) => return refuse(fwd, None, send, e.into()).await,
        };
    let user = &unrecorded.header().fields.user.clone();
    let signed_fwd = match certified(trust, fwd, unrecorded.header(), &trust.seen_certs(), now) {
        Ok(signed_fwd) => signed_fwd,
        Err(e) => return refuse(fwd, Some(user), send, e).await,
    };
    // The nonce counts (and is kept on disk) only for a signer the certificates vouch for.
    let checked = match queued::record(&workspaces.e2e().queued, unrecorded) {
        Ok(checked) => checked,
        Err(e) => return refuse(fwd, Some(user), send, e.into()).await,
    };
    let prompt = match queued::open_body(trust, &checked, &mut reader).await {
        Ok(prompt) => prompt,
        Err(e) => return refuse(fwd, Some(user), send, e).await,
    };
    let mut body = FrameReader::new(tokio::io::empty(), MAX_FRAME_LEN);
    body.unread_frame(&prompt);
    match admit::admit(workspaces, &signed_fwd) {
        Ok(rt) => {
            let cx = handler::Cx::new(workspaces, &signed_fwd, rt);
            handler::dispatch(&cx, &mut body, &mut send, peer_gone).await;
        }
        Err(e) => super::write_reply(&mut send, Err(e)).await,
    }
    let _ = send.shutdown().await;
}

/// When the operator signed a body hash, the body frame must be that body (put back for the
/// handler when it is).
async fn signed_body<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    fields: &SignedFields,
) -> Result<(), OpError> {
    let Some(want) = fields.body.as_deref() else {
        return Ok(());
    };
    let raw = next_raw_body(fields.op, reader)
        .await?
        .ok_or(OpError::BodyMismatch)?;
    if body_hash(&raw) != want {
        return Err(OpError::BodyMismatch);
    }
    reader.unread_frame(&raw);
    Ok(())
}

/// Answers a refusal in one plain frame, logs it, finishes the stream.
async fn refuse<W: AsyncWrite + Unpin>(
    fwd: &ForwardHeader,
    signed_user: Option<&UserId>,
    mut send: W,
    e: OpError,
) {
    audit(fwd, signed_user, &e);
    let _ = write_frame(&mut send, &Reply::<()>::Error(e.public()), MAX_FRAME_LEN).await;
    let _ = send.shutdown().await;
}

/// Whether the refusal means the relay changed, replayed or misrouted what an operator signed.
fn tampered(e: &OpError) -> bool {
    use cm_client::e2e::E2eError as E;
    matches!(
        e,
        OpError::BodyMismatch
            | OpError::E2e(
                E::RecordOpen
                    | E::Truncated
                    | E::DataAfterFin
                    | E::RecordFlag(_)
                    | E::RecordTooShort { .. }
                    | E::Failed(_)
            )
            | OpError::Untrusted(
                TrustError::HeaderMismatch { .. }
                    | TrustError::MacMismatch
                    | TrustError::BadSignature { .. }
                    | TrustError::Replayed
                    | TrustError::WrongHost { .. }
                    | TrustError::Payload(_)
            )
    )
}

/// The user a header claims to be signed by, unverified (for the log of a refusal only).
fn claimed_user(fwd: &ForwardHeader) -> Option<UserId> {
    let bytes = fwd.header.auth.as_ref()?.payload_bytes().ok()?;
    serde_json::from_slice::<SignedFields>(&bytes)
        .ok()
        .map(|f| f.user)
}

/// The audit line of a refusal.
fn audit(fwd: &ForwardHeader, signed_user: Option<&UserId>, e: &OpError) {
    let op = fwd.header.op.as_str();
    let user = signed_user.map_or_else(
        || match claimed_user(fwd) {
            Some(u) => format!("{u} (claimed, unverified)"),
            None => "-".into(),
        },
        ToString::to_string,
    );
    let relay_role: Role = fwd.role;
    if tampered(e) {
        tracing::warn!(
            target: "cm_agent::audit",
            op,
            user,
            relay_principal = %fwd.principal,
            %relay_role,
            reason = %e,
            "refused: relay tampered"
        );
    } else {
        tracing::warn!(
            target: "cm_agent::audit",
            op,
            user,
            relay_principal = %fwd.principal,
            %relay_role,
            reason = %e,
            "refused: zero-trust check failed"
        );
    }
}
