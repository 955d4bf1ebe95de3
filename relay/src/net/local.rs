//! The relay's own answers: one typed handler per relay-local operation, and the dispatch
//! generated from `proto`'s operation list. Every `relay` operation of the list is routed to
//! `<op::Name as LocalHandler>` (or, for a stream, [`LocalStream`]), with its body read as the
//! operation's `Body` by the one body reader (`body::of`), so a relay operation without a
//! handler, or a handler whose answer is not the operation's reply type, does not compile.
//!
//! The handlers live next to what they use: administration in `admin`, the prompt queue in
//! `queue`, the host list in `hosts`, logout in `logout`, OpenCode config templates in
//! `templates`.

use super::Shared;
use super::body::{self, answer, refuse};
use super::error::RequestError;
use super::principal::Principal;
use crate::authz;
use crate::framed::FramedRecv;
use proto::header::Op;
use proto::op;
use proto::operation::{Operation, Streaming, Unary};
use proto::rbac::Role;
use std::future::Future;
use std::sync::Arc;

/// What an administration request did, for its one audit row (see `admin::answer_audited`).
#[derive(Debug, Default)]
pub(crate) struct Done {
    /// The operation's own name, set by reads (which the change functions do not audit
    /// themselves): `host_list`, not the `host_rotate` it travels as.
    pub(crate) read: Option<&'static str>,
    /// What it acted on.
    pub(crate) target: Option<String>,
}

/// What a relay handler works with: the authorized request.
#[derive(Debug)]
pub(crate) struct Cx<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    /// Who asks.
    pub(crate) principal: &'a Principal,
    /// The role `authz::decide` found for the request.
    pub(crate) role: Option<Role>,
    /// The principal's grants, read for this stream.
    pub(crate) grants: &'a [(String, Role)],
    /// Filled in by administration handlers, for the audit row.
    pub(crate) done: Done,
}

/// Answers one relay-local request-response operation: its body in, its reply out.
pub(crate) trait LocalHandler: Unary {
    /// Runs the operation; the caller writes the reply.
    fn handle(
        cx: &mut Cx<'_>,
        body: Self::Body,
    ) -> impl Future<Output = Result<Self::Reply, RequestError>> + Send;
}

/// Serves one relay-local streaming operation: writes its replies until it ends.
pub(crate) trait LocalStream: Streaming {
    /// Runs the stream until it ends or the operator goes away.
    fn serve(
        cx: &Cx<'_>,
        body: Self::Body,
        send: quinn::SendStream,
    ) -> impl Future<Output = ()> + Send;
}

async fn unary<O: LocalHandler>(cx: &mut Cx<'_>, send: quinn::SendStream, mut recv: FramedRecv) {
    let timeout = cx.shared.config.handshake_timeout;
    if O::OP == Op::TemplatePublish {
        // A template's content may take up to its own limit; the frame carries the name too.
        recv.set_max_len(super::templates::PUBLISH_FRAME_LEN);
    }
    let result = match body::of::<O>(&mut recv, timeout).await {
        Ok(body) => O::handle(cx, body).await,
        Err(e) => Err(e),
    };
    if authz::is_relay_admin(O::OP) {
        // The body is read (or given up on): nothing more is taken from this stream.
        drop(recv);
        super::admin::answer_audited(cx, O::OP, result, send).await;
    } else {
        answer(send, result).await;
    }
}

async fn stream<O: LocalStream>(cx: &Cx<'_>, send: quinn::SendStream, mut recv: FramedRecv) {
    match body::of::<O>(&mut recv, cx.shared.config.handshake_timeout).await {
        Ok(body) => O::serve(cx, body, send).await,
        Err(e) => refuse(send, e).await,
    }
}

/// `true` for the operations the relay answers itself.
macro_rules! answered {
    (relay) => {
        true
    };
    (agent) => {
        false
    };
}

/// One operation's route: a handler for a `relay` operation (a stream handler for a stream), a
/// refusal for an `agent` one (those are forwarded, never routed here).
macro_rules! local_route {
    (relay; $name:ident, $cx:ident, $send:ident, $recv:ident) => {
        unary::<op::$name>($cx, $send, $recv).await
    };
    (relay, $item:ty; $name:ident, $cx:ident, $send:ident, $recv:ident) => {
        stream::<op::$name>($cx, $send, $recv).await
    };
    (agent $(, $item:ty)?; $name:ident, $cx:ident, $send:ident, $recv:ident) => {
        refuse($send, RequestError::NotServed(Op::$name)).await
    };
}

macro_rules! relay_routes {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $wire:literal, $side:ident, $kind:ident $b:ty => $reply:ty
            $(, then $item:ty)?;
    )*) => {
        /// Whether the relay answers `op` itself (agent and unknown operations it does not).
        pub(crate) fn answers(op: Op) -> bool {
            match op {
                $(Op::$name => answered!($side),)*
                Op::Unknown => false,
            }
        }

        /// Reads the authorized request's body, runs its relay handler, writes its reply (or
        /// stream).
        pub(crate) async fn serve(
            cx: &mut Cx<'_>,
            op: Op,
            send: quinn::SendStream,
            recv: FramedRecv,
        ) {
            match op {
                $(Op::$name => local_route!($side $(, $item)?; $name, cx, send, recv),)*
                Op::Unknown => refuse(send, RequestError::NotServed(Op::Unknown)).await,
            }
        }
    };
}

proto::with_operations!(relay_routes);

/// `relay_settings` is never changed over the network: `relay.toml` on the relay host is.
impl LocalHandler for op::RelaySettings {
    async fn handle(_cx: &mut Cx<'_>, (): ()) -> Result<(), RequestError> {
        Err(RequestError::NotServed(Self::OP))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relay_local_operation_has_a_relay_handler() {
        let mismatched: Vec<&str> = Op::ALL
            .iter()
            .filter(|op| answers(**op) != op.is_relay_local())
            .map(|op| op.as_str())
            .collect();
        assert!(
            mismatched.is_empty(),
            "operations the relay answers or forwards against the list: {mismatched:?}"
        );
        assert!(!answers(Op::Unknown));
    }
}
