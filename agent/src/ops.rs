//! Serving one forwarded operation stream: the relay opens a bidirectional stream to the agent
//! per operator request.
//!
//! Wire behaviour (all frames are length-prefixed JSON, see `proto::frame`):
//! 1. relay → agent: one [`ForwardHeader`] frame (at most `MAX_HEADER_LEN`);
//! 2. relay → agent: for some operations, one body frame (at most `MAX_FRAME_LEN`). Which body
//!    each operation takes (none, optional or required) and what it answers is defined once,
//!    in `proto::operation`'s list; the dispatch ([`handler`]) is generated from that list, so
//!    every agent operation has exactly one typed handler (`impl Handler for op::Name`, in
//!    `handlers`, `permissions`, `fs_git` and `watch`).
//!
//!    "Optional" means: the body frame, or the end of the operator's send side without one (the
//!    default body). For "none", nothing further is read.
//! 3. agent → relay: one `Reply<T>` frame, then the stream is finished. For `watch_events`,
//!    `Reply::<u64>::Ok(next_seq)` (the number of the first live event; replayed ones come
//!    before it) followed by `EventFrame`s until the operator stops reading or the agent stops.
//!
//! On a zero-trust host ([`Workspaces::trust`]) the relay's word counts for nothing: the
//! operator's signed header, certificates and end-to-end channel are checked first, and the
//! rest of the stream is sealed end to end (see [`gate`]).
//!
//! Before anything is done, in this order: the role must allow the operation
//! (`proto::rbac::authorize`, defence in depth behind the relay's check); the workspace in the
//! header must exist in the configuration; its root folder must still exist. Operations that
//! need OpenCode start it on demand and wait until it is ready (bounded). Every failure is
//! answered through [`error::OpError::public`].

mod admit;
mod body;
mod e2e;
pub mod error;
pub use crate::e2e_state::E2eState;
mod forward;
pub mod frames;
mod fs_git;
mod gate;
mod handler;
mod handlers;
mod models;
mod permissions;
mod templates;
mod watch;
mod workspaces;

use crate::workspaces::Workspaces;
use error::OpError;
use frames::{FrameReader, write_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tracing::Instrument as _;

/// Serves one stream: reads the forwarded header (and body), answers, finishes. `peer_gone`
/// resolves when the operator stops reading (QUIC `STOP_SENDING`); transports that cannot tell
/// pass a future that never resolves.
pub async fn serve_stream<R, W, G>(workspaces: &Workspaces, recv: R, mut send: W, peer_gone: G)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Future<Output = ()> + Send,
{
    let mut reader = FrameReader::new(recv, MAX_HEADER_LEN);
    let fwd: ForwardHeader = match reader.next().await {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "malformed forwarded stream header");
            let err = OpError::BadRequest("malformed stream header".into());
            let _ = write_frame(&mut send, &Reply::<()>::Error(err.public()), MAX_FRAME_LEN).await;
            let _ = send.shutdown().await;
            return;
        }
    };
    reader.set_max_len(MAX_FRAME_LEN);
    let span = tracing::info_span!(
        "op",
        op = fwd.header.op.as_str(),
        req = fwd.header.req_id.0,
        principal = %fwd.principal,
        workspace = fwd.header.workspace.as_deref().unwrap_or("-"),
    );
    async {
        tracing::debug!(session = fwd.header.session.as_deref().unwrap_or("-"), role = %fwd.role, "operation");
        if let Some(trust) = workspaces.trust() {
            return gate::serve(workspaces, trust, &fwd, reader, send, peer_gone).await;
        }
        match admit::admit(workspaces, &fwd) {
            Ok(rt) => {
                let cx = handler::Cx::new(workspaces, &fwd, rt);
                handler::dispatch(&cx, &mut reader, &mut send, peer_gone).await;
            }
            Err(e) => write_reply(&mut send, Err(e)).await,
        }
        let _ = send.shutdown().await;
    }
    .instrument(span)
    .await;
}

/// Writes the one reply frame; an answer too large for a frame becomes an error reply.
async fn write_reply<W: AsyncWrite + Unpin>(
    send: &mut W,
    result: Result<serde_json::Value, OpError>,
) {
    let reply = match result {
        Ok(v) => Reply::Ok(v),
        Err(e) => {
            match &e {
                OpError::Denied(_)
                | OpError::Policy(_)
                | OpError::NoWorkspace { .. }
                | OpError::BadRequest(_)
                | OpError::UnknownOp(_)
                | OpError::NotFound(_)
                | OpError::Conflict(_)
                | OpError::Untrusted(_)
                | OpError::NoChannel
                | OpError::ChannelUnknown(_)
                | OpError::ChannelNotYours(_)
                | OpError::BodyMismatch => {
                    tracing::info!(error = %e, "operation refused");
                }
                _ => tracing::warn!(error = %e, "operation failed"),
            }
            Reply::Error(e.public())
        }
    };
    match write_frame(send, &reply, MAX_FRAME_LEN).await {
        Ok(()) => {}
        Err(frames::FrameIoError::Frame(proto::frame::FrameError::Oversize { len, max })) => {
            let e = OpError::TooLarge { len, max };
            tracing::warn!(error = %e, "answer too large");
            let _ = write_frame(send, &Reply::<()>::Error(e.public()), MAX_FRAME_LEN).await;
        }
        Err(e) => tracing::debug!(error = %e, "could not send the reply"),
    }
}
