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
    /// Every stream the agent allows is in use (many open watches) and none freed up in time.
    #[error("the agent has no free stream (all {0} in use)")]
    Busy(u32),
}

/// How long a forwarded request waits for a free stream on the agent's connection.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the agent stream and sends the forward header.
pub(crate) async fn open(
    agent: &quinn::Connection,
    header: &ForwardHeader,
) -> Result<(quinn::SendStream, quinn::RecvStream), ForwardError> {
    let (mut send, recv) = tokio::time::timeout(OPEN_TIMEOUT, agent.open_bi())
        .await
        .map_err(|_| ForwardError::Busy(crate::tls::MAX_CONCURRENT_STREAMS))??;
    send_frame(&mut send, header, MAX_HEADER_LEN).await?;
    Ok((send, recv))
}

/// By default, first frames up to this size are handed to the inspector; a larger one (a long
/// history, a big diff) streams through uninspected. Error replies are far smaller.
pub(crate) const INSPECT_MAX: usize = 16 * 1024;

/// Reads the agent's first frame when it is small enough to inspect: `Ok(Some((prefix, body)))`;
/// `Ok(None)` with the prefix already in `prefix` when it is larger.
async fn read_small_frame(
    agent_recv: &mut quinn::RecvStream,
    prefix: &mut [u8; proto::frame::LEN_PREFIX],
    inspect_max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    agent_recv
        .read_exact(prefix)
        .await
        .map_err(std::io::Error::other)?;
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > proto::frame::MAX_FRAME_LEN {
        return Err(std::io::Error::other(format!(
            "agent frame of {len} bytes is over the limit"
        )));
    }
    if len > inspect_max {
        return Ok(None);
    }
    let mut body = vec![0u8; len];
    agent_recv
        .read_exact(&mut body)
        .await
        .map_err(std::io::Error::other)?;
    Ok(Some(body))
}

/// Copies until the sender finishes, handing quinn's received chunks straight to the other
/// stream (no intermediate buffer, no copy of the payload in the relay).
async fn copy_chunks(
    from: &mut quinn::RecvStream,
    to: &mut quinn::SendStream,
) -> std::io::Result<()> {
    while let Some(chunk) = from
        .read_chunk(usize::MAX, true)
        .await
        .map_err(std::io::Error::other)?
    {
        to.write_chunk(chunk.bytes)
            .await
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

pub(crate) async fn splice_inspecting<F, Fut>(
    mut op_send: quinn::SendStream,
    op_recv: FramedRecv,
    mut agent_send: quinn::SendStream,
    mut agent_recv: quinn::RecvStream,
    inspect: Option<F>,
    inspect_max: usize,
) where
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut op_recv = op_recv;
    let buffered = op_recv.take_buffered();
    let mut op_recv = op_recv.into_inner();
    let up = async {
        let result = async {
            if !buffered.is_empty() {
                agent_send.write_all(&buffered).await?;
            }
            copy_chunks(&mut op_recv, &mut agent_send).await
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
        if let Some(inspect) = inspect {
            let mut prefix = [0u8; proto::frame::LEN_PREFIX];
            match read_small_frame(&mut agent_recv, &mut prefix, inspect_max).await {
                Ok(body) => {
                    if let Some(body) = &body {
                        inspect(body.clone()).await;
                    }
                    let written = match &body {
                        Some(body) => op_send.write_all(&[&prefix[..], body].concat()).await,
                        None => op_send.write_all(&prefix).await,
                    };
                    if written.is_err() {
                        let _ = agent_recv.stop(PEER_GONE.into());
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "agent's first frame not read");
                    let _ = agent_recv.stop(PEER_GONE.into());
                    let _ = op_send.reset(PEER_GONE.into());
                    return;
                }
            }
        }
        match copy_chunks(&mut agent_recv, &mut op_send).await {
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
