//! One typed handler per operation, and the dispatch generated from `proto`'s operation list:
//! every `agent` operation of the list is routed to `<op::Name as Handler>` (or, for a stream,
//! [`StreamHandler`]), so an agent operation without a handler, or a handler whose reply is not
//! the operation's reply type, does not compile.

use super::body::read_body;
use super::error::OpError;
use super::frames::FrameReader;
use crate::workspaces::{WorkspaceRuntime, Workspaces};
use proto::header::Op;
use proto::operation::{Operation, Streaming};
use proto::ops::ForwardHeader;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// What a handler works with: the admitted request.
#[derive(Debug)]
pub(super) struct Cx<'a> {
    /// Every workspace of this agent.
    pub(super) workspaces: &'a Workspaces,
    /// The forwarded header: operation, target, who asks.
    pub(super) fwd: &'a ForwardHeader,
    /// The header's workspace (absent only for `workspace_list`).
    rt: Option<Arc<WorkspaceRuntime>>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(
        workspaces: &'a Workspaces,
        fwd: &'a ForwardHeader,
        rt: Option<Arc<WorkspaceRuntime>>,
    ) -> Self {
        Self {
            workspaces,
            fwd,
            rt,
        }
    }

    /// The header's workspace (admission made sure it exists for every workspace operation).
    pub(super) fn rt(&self) -> Result<&WorkspaceRuntime, OpError> {
        self.rt.as_deref().ok_or_else(|| {
            OpError::BadRequest(format!(
                "{} needs a workspace in the header",
                self.fwd.header.op.as_str()
            ))
        })
    }

    /// The header's session, required.
    pub(super) fn session(&self) -> Result<&'a str, OpError> {
        self.fwd.header.session.as_deref().ok_or_else(|| {
            OpError::BadRequest(format!(
                "{} needs a session in the header",
                self.fwd.header.op.as_str()
            ))
        })
    }
}

/// Serves one request-response operation: its body in, its reply out.
pub(super) trait Handler: Operation {
    /// Runs the operation; the caller writes the reply.
    fn handle(
        cx: &Cx<'_>,
        body: Self::Body,
    ) -> impl Future<Output = Result<Self::Reply, OpError>> + Send;
}

/// Serves one streaming operation: writes its first reply and then its items.
pub(super) trait StreamHandler: Streaming {
    /// Runs the stream until it ends. `peer_gone` resolves when the operator stops reading.
    fn serve<W, G>(
        cx: &Cx<'_>,
        body: Self::Body,
        send: &mut W,
        peer_gone: G,
    ) -> impl Future<Output = ()> + Send
    where
        W: AsyncWrite + Unpin + Send,
        G: Future<Output = ()> + Send;
}

/// Serves one operation whose stream carries raw bytes both ways after its first reply
/// (`port_forward`): it also gets the operator's side of the stream.
pub(super) trait DuplexHandler: Streaming {
    /// Runs until the connection ends. `recv` has read the body; what it buffered beyond it
    /// is the start of the operator's bytes.
    fn serve<R, W, G>(
        cx: &Cx<'_>,
        body: Self::Body,
        recv: &mut FrameReader<R>,
        send: &mut W,
        peer_gone: G,
    ) -> impl Future<Output = ()> + Send
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
        G: Future<Output = ()> + Send;
}

/// Encodes a reply as JSON. Through `Value`, so objects go out with sorted keys as they always
/// have (the wire stays byte-identical).
pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<Value, OpError> {
    serde_json::to_value(v).map_err(|e| {
        OpError::Client(crate::opencode::client::ClientError::Decode {
            what: "encoding the answer".into(),
            reason: e.to_string(),
        })
    })
}

async fn unary<O: Handler, R, W>(cx: &Cx<'_>, body: &mut FrameReader<R>, send: &mut W)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let result = async {
        let body = read_body::<O, R>(body).await?;
        json(&O::handle(cx, body).await?)
    }
    .await;
    super::write_reply(send, result).await;
}

async fn stream<O: StreamHandler, R, W, G>(
    cx: &Cx<'_>,
    body: &mut FrameReader<R>,
    send: &mut W,
    peer_gone: G,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    G: Future<Output = ()> + Send,
{
    match read_body::<O, R>(body).await {
        Ok(body) => O::serve(cx, body, send, peer_gone).await,
        Err(e) => super::write_reply(send, Err(e)).await,
    }
}

async fn duplex<O: DuplexHandler, R, W, G>(
    cx: &Cx<'_>,
    body: &mut FrameReader<R>,
    send: &mut W,
    peer_gone: G,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
    G: Future<Output = ()> + Send,
{
    match read_body::<O, R>(body).await {
        Ok(b) => O::serve(cx, b, body, send, peer_gone).await,
        Err(e) => super::write_reply(send, Err(e)).await,
    }
}

/// `true` for the operations this agent serves.
macro_rules! served {
    (agent) => {
        true
    };
    (relay) => {
        false
    };
}

/// One operation's route: a handler for an `agent` operation (a stream handler for a stream),
/// a refusal for a `relay` one (admission refuses those before).
macro_rules! route {
    // Raw bytes both ways after the first reply.
    (agent, $item:ty; PortForward, $cx:ident, $body:ident, $send:ident, $gone:ident) => {
        duplex::<proto::op::PortForward, R, W, G>($cx, $body, $send, $gone).await
    };
    (agent; $name:ident, $cx:ident, $body:ident, $send:ident, $gone:ident) => {
        unary::<proto::op::$name, R, W>($cx, $body, $send).await
    };
    (agent, $item:ty; $name:ident, $cx:ident, $body:ident, $send:ident, $gone:ident) => {
        stream::<proto::op::$name, R, W, G>($cx, $body, $send, $gone).await
    };
    (relay $(, $item:ty)?; $name:ident, $cx:ident, $body:ident, $send:ident, $gone:ident) => {
        super::write_reply($send, Err(OpError::UnknownOp(Op::$name))).await
    };
}

macro_rules! agent_routes {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $wire:literal, $side:ident, $kind:ident $b:ty => $reply:ty
            $(, then $item:ty)?;
    )*) => {
        /// Whether this agent serves `op` (relay and unknown operations it does not).
        pub(super) fn serves(op: Op) -> bool {
            match op {
                $(Op::$name => served!($side),)*
                Op::Unknown => false,
            }
        }

        /// Reads the admitted request's body, runs its handler, writes its reply (or stream).
        pub(super) async fn dispatch<R, W, G>(
            cx: &Cx<'_>,
            body: &mut FrameReader<R>,
            send: &mut W,
            peer_gone: G,
        ) where
            R: AsyncRead + Unpin + Send,
            W: AsyncWrite + Unpin + Send + 'static,
            G: Future<Output = ()> + Send,
        {
            match cx.fwd.header.op {
                $(Op::$name => route!($side $(, $item)?; $name, cx, body, send, peer_gone),)*
                Op::Unknown => super::write_reply(send, Err(OpError::UnknownOp(Op::Unknown))).await,
            }
        }
    };
}

proto::with_operations!(agent_routes);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_an_agent_handler_or_is_relay_local() {
        let neither: Vec<&str> = Op::ALL
            .iter()
            .filter(|op| serves(**op) == op.is_relay_local())
            .map(|op| op.as_str())
            .collect();
        assert!(
            neither.is_empty(),
            "operations both or neither served by the agent and the relay: {neither:?}"
        );
        assert!(!serves(Op::Unknown));
    }

    #[test]
    fn replies_go_out_with_sorted_keys_as_before_typed_handlers() {
        let reply = proto::queue::PromptOutcome::Accepted(proto::ops::PromptAccepted {
            session: "ses_1".into(),
            message_id: "msg_1".into(),
            duplicate: false,
        });
        let frame = proto::message::Reply::Ok(json(&reply).unwrap());
        assert_eq!(
            serde_json::to_string(&frame).unwrap(),
            r#"{"ok":{"duplicate":false,"message_id":"msg_1","session":"ses_1"}}"#
        );
    }
}
