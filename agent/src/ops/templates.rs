//! `template_apply` and `mcp_list` (placeholders until the agent merges templates; each
//! answers "not served").

use super::error::OpError;
use super::handler::{Cx, Handler, StreamHandler};
use proto::op;
use proto::operation::Operation;
use proto::template::{McpServerInfo, TemplateApply};
use std::future::Future;
use tokio::io::AsyncWrite;

impl StreamHandler for op::TemplateApply {
    async fn serve<W, G>(_cx: &Cx<'_>, _q: TemplateApply, send: &mut W, _peer_gone: G)
    where
        W: AsyncWrite + Unpin + Send,
        G: Future<Output = ()> + Send,
    {
        super::write_reply(send, Err(OpError::UnknownOp(Self::OP))).await;
    }
}

impl Handler for op::McpList {
    async fn handle(_cx: &Cx<'_>, (): ()) -> Result<Vec<McpServerInfo>, OpError> {
        Err(OpError::UnknownOp(Self::OP))
    }
}
