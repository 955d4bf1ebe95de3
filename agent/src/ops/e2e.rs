//! `e2e_open`: the host's side of the end-to-end channel (see `proto::trust` and
//! `cm_client::e2e`).
//!
//! On a zero-trust host the gate ([`super::gate`]) answers it before the usual dispatch: the
//! signed header's body hash must be the body frame's (so the Noise ephemeral in msg1 is the
//! signer's), msg1 must open with the host key, the certificates it carries must give the
//! signer at least viewer here, and then the channel is kept in the [`ChannelTable`] with who
//! opened it. A relay-trusted host has no end-to-end key and says so.

pub(super) use crate::e2e_state::channels;
pub(super) mod queued;

use super::body::next_raw_body;
use super::error::OpError;
use super::frames::FrameReader;
use super::handler::{Cx, Handler};
use crate::trust::{HostTrust, Unrecorded};
use crate::workspaces::Workspaces;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use channels::OpenChannel;
use cm_client::e2e::{HostKeyPair, RECORD_FORMAT, accept_channel, record_format_mismatch};
use proto::header::Op;
use proto::op;
use proto::rbac::{Decision, Ownership, authorize};
use proto::trust::header::body_hash;
use proto::trust::{Cert, E2eOpen, E2eOpened};
use tokio::io::AsyncRead;

impl Handler for op::E2eOpen {
    async fn handle(_cx: &Cx<'_>, _body: E2eOpen) -> Result<E2eOpened, OpError> {
        Err(OpError::Unavailable(
            "this host is relay-trusted and has no end-to-end key; re-enroll it with a token \
             made by `cm-tui admin host add` to verify operators and encrypt end to end"
                .into(),
        ))
    }
}

/// Opens a channel for the operator whose signed header is `unrecorded` (see the module docs);
/// its nonce is recorded once the certificates in msg1 give the signer a role allowed to open
/// one, before anything is kept.
///
/// # Errors
/// A body that is not the signed one, a handshake that does not open, certificates that give
/// no role here, the host's policy, or a replayed header.
pub(super) async fn open<R: AsyncRead + Unpin>(
    workspaces: &Workspaces,
    trust: &HostTrust,
    unrecorded: Unrecorded,
    reader: &mut FrameReader<R>,
    now_ms: u64,
) -> Result<E2eOpened, OpError> {
    let checked = unrecorded.header();
    let raw = next_raw_body(Op::E2eOpen, reader)
        .await?
        .ok_or_else(|| OpError::BadRequest("e2e_open needs a request body".into()))?;
    if checked.fields.body.as_deref() != Some(body_hash(&raw).as_str()) {
        return Err(OpError::BodyMismatch);
    }
    let body: E2eOpen = serde_json::from_slice(&raw)
        .map_err(|e| OpError::BadRequest(format!("malformed body for e2e_open: {e}")))?;
    if let Some(why) = record_format_mismatch("the host's cm-agent", "your cm-tui", body.records) {
        return Err(OpError::BadRequest(why));
    }
    let msg1 = URL_SAFE_NO_PAD
        .decode(body.msg1.as_bytes())
        .map_err(|e| OpError::BadRequest(format!("e2e_open: msg1 is not base64url: {e}")))?;
    let host = HostKeyPair::from_secret(trust.host_secret());
    let (channel, payload, msg2) = accept_channel(&host, &msg1)?;
    let certs: Vec<Cert> = serde_json::from_slice(&payload).map_err(|e| {
        OpError::BadRequest(format!(
            "the certificates in the end-to-end handshake are malformed: {e}"
        ))
    })?;
    let role = trust.role_of(&checked.fields.user, &checked.key, &certs, now_ms)?;
    if let Decision::Deny(reason) = authorize(Some(role), Op::E2eOpen, Ownership::None) {
        return Err(OpError::Denied(reason));
    }
    workspaces.policy().check(Op::E2eOpen, role)?;
    let checked = trust.record_nonce(unrecorded, now_ms)?;
    let user = &checked.fields.user;
    trust.record_certs(&certs, now_ms);
    let id = channel.id();
    tracing::info!(
        target: "cm_agent::audit",
        user = %user,
        key = %checked.key,
        %role,
        channel = %id,
        "end-to-end channel opened"
    );
    workspaces.e2e().channels.insert(
        OpenChannel {
            channel,
            user: user.clone(),
            key: checked.key,
            certs,
        },
        now_ms,
    );
    Ok(E2eOpened {
        msg2: URL_SAFE_NO_PAD.encode(msg2),
        records: Some(RECORD_FORMAT),
    })
}
