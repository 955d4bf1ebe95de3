//! `port_forward` streams at the relay: the port is read from the body for the stream's
//! audit row (the frame is put back unchanged), the stream's QUIC send sides get the low
//! forward priority, and its end is audited with the bytes it carried and how long it lasted.

use super::Shared;
use super::error::RequestError;
use crate::audit_event::Audit;
use crate::framed::FramedRecv;
use proto::forward::STREAM_PRIORITY;
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use proto::ids::{HostId, UserId};
use proto::op;
use proto::operation::Operation;
use std::time::Instant;

/// Reads the `port_forward` body, returns its port, and leaves the frame in `recv` unchanged.
///
/// # Errors
/// No body in time, or a body that is not a forward target (the agent would refuse it too).
pub(crate) async fn peek(shared: &Shared, recv: &mut FramedRecv) -> Result<u16, RequestError> {
    recv.set_max_len(MAX_FRAME_LEN);
    let body = super::body::read_raw(recv, Op::PortForward, shared.config.handshake_timeout)
        .await?
        .ok_or(RequestError::NoBody(Op::PortForward))?;
    let target: <op::PortForward as Operation>::Body =
        proto::frame::parse_json(&body).map_err(|e| RequestError::BadBody {
            op: Op::PortForward,
            detail: e.to_string(),
        })?;
    recv.unread_frame(&body);
    Ok(target.port)
}

/// One forward stream being spliced: started when the agent stream opened.
pub(crate) struct ForwardStream {
    actor: UserId,
    host: HostId,
    port: u16,
    started: Instant,
}

impl ForwardStream {
    /// Lowers both send sides' priority below every other stream's.
    pub(crate) fn start(
        actor: UserId,
        host: HostId,
        port: u16,
        to_operator: &quinn::SendStream,
        to_agent: &quinn::SendStream,
    ) -> Self {
        let _ = to_operator.set_priority(STREAM_PRIORITY);
        let _ = to_agent.set_priority(STREAM_PRIORITY);
        Self {
            actor,
            host,
            port,
            started: Instant::now(),
        }
    }

    /// Audits the end with what the splice carried.
    pub(crate) fn closed(self, shared: &Shared, carried: super::splice::Carried) {
        shared.audit_unwaited(Audit::ForwardClosed {
            actor: self.actor,
            host: self.host,
            port: self.port,
            up: carried.up,
            down: carried.down,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
    }
}
