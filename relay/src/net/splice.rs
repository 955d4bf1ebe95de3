//! Forwarding an authorized operator stream to the target host's agent: open a stream on the
//! agent's connection, send the [`ForwardHeader`] (who is asking, with which role), then copy
//! bytes both ways with backpressure. The relay never parses what follows the header.

use crate::framed::{FramedRecv, send_frame};
use proto::frame::MAX_HEADER_LEN;
use proto::ops::ForwardHeader;

/// Application code used to reset/stop one side when the other side failed.
const PEER_GONE: u32 = 1;

/// Why forwarding could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The agent's connection could not open a stream (it is going away).
    #[error("cannot open a stream to the agent: {0}")]
    Open(#[from] quinn::ConnectionError),
    /// The header could not be sent.
    #[error("cannot send the header to the agent: {0}")]
    Header(#[from] crate::framed::StreamError),
}

/// Opens the agent stream and sends the forward header.
pub(crate) async fn open(
    agent: &quinn::Connection,
    header: &ForwardHeader,
) -> Result<(quinn::SendStream, quinn::RecvStream), ForwardError> {
    let (mut send, recv) = agent.open_bi().await?;
    send_frame(&mut send, header, MAX_HEADER_LEN).await?;
    Ok((send, recv))
}

/// Copies operator → agent and agent → operator until both directions end. When one side
/// fails, the other is stopped or reset so neither peer waits forever.
pub(crate) async fn splice(
    mut op_send: quinn::SendStream,
    op_recv: FramedRecv,
    mut agent_send: quinn::SendStream,
    mut agent_recv: quinn::RecvStream,
) {
    let mut op_recv = op_recv;
    let buffered = op_recv.take_buffered();
    let mut op_recv = op_recv.into_inner();
    let up = async {
        let result = async {
            if !buffered.is_empty() {
                agent_send.write_all(&buffered).await?;
            }
            tokio::io::copy(&mut op_recv, &mut agent_send).await?;
            Ok::<_, std::io::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                let _ = agent_send.finish();
            }
            Err(e) => {
                tracing::debug!(error = %e, "operator → agent copy ended");
                let _ = agent_send.reset(PEER_GONE.into());
                let _ = op_recv.stop(PEER_GONE.into());
            }
        }
    };
    let down = async {
        match tokio::io::copy(&mut agent_recv, &mut op_send).await {
            Ok(_) => {
                let _ = op_send.finish();
            }
            Err(e) => {
                tracing::debug!(error = %e, "agent → operator copy ended");
                let _ = agent_recv.stop(PEER_GONE.into());
                let _ = op_send.reset(PEER_GONE.into());
            }
        }
    };
    tokio::join!(up, down);
}
