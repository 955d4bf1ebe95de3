//! Forwarding an authorized operator stream to the target host's agent: open a stream on the
//! agent's connection, send the [`ForwardHeader`] (who is asking, with which role), then copy
//! bytes both ways with backpressure. The relay never parses what follows the header.

use crate::framed::{FramedRecv, StreamError, WRITE_TIMEOUT, send_frame, write_within};
use crate::tamper::Tamper;
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
    let (mut send, recv) = open_stream(agent).await?;
    send_frame(&mut send, header, MAX_HEADER_LEN).await?;
    Ok((send, recv))
}

/// [`open`], with `first` (the operator's bytes behind its request, already at hand) sent in
/// the same write as the header, and the stream's end right behind them when `ended` (the
/// operator already finished): the agent gets the request in one go (one packet when it
/// fits), not the header, the body and the end one after the other.
pub(crate) async fn open_with(
    agent: &quinn::Connection,
    header: &ForwardHeader,
    first: &[u8],
    ended: bool,
) -> Result<(quinn::SendStream, quinn::RecvStream), ForwardError> {
    let mut bytes = proto::frame::to_frame(header, MAX_HEADER_LEN).map_err(StreamError::from)?;
    bytes.extend_from_slice(first);
    let (mut send, recv) = open_stream(agent).await?;
    if let Err(e) = write_within(&mut send, &bytes, WRITE_TIMEOUT).await {
        // Not a request cut short that the agent could take for a whole one.
        let _ = send.reset(PEER_GONE.into());
        return Err(e.into());
    }
    if ended {
        let _ = send.finish();
    }
    Ok((send, recv))
}

async fn open_stream(
    agent: &quinn::Connection,
) -> Result<(quinn::SendStream, quinn::RecvStream), ForwardError> {
    Ok(tokio::time::timeout(OPEN_TIMEOUT, agent.open_bi())
        .await
        .map_err(|_| ForwardError::Busy(crate::tls::MAX_CONCURRENT_STREAMS))??)
}

/// By default, first frames up to this size are handed to the inspector; a larger one (a long
/// history, a big diff) streams through uninspected. Error replies are far smaller.
pub(crate) const INSPECT_MAX: usize = 16 * 1024;

/// The start of the agent's answer as read for inspection: every byte read so far (forwarded
/// unchanged whatever it holds), the first frame's body when it was complete and small
/// enough, and whether the agent already finished its side.
struct FirstFrame {
    read: Vec<u8>,
    body: Option<Vec<u8>>,
    finished: bool,
}

/// Reads until the first frame is complete, is known to be over `inspect_max`, or the agent
/// finishes. Never fails on content: the relay does not parse what it forwards, so a first
/// frame that is not one (or too large) is simply passed on uninspected.
async fn read_first_frame(
    agent_recv: &mut quinn::RecvStream,
    inspect_max: usize,
) -> Result<FirstFrame, quinn::ReadError> {
    const PREFIX: usize = proto::frame::LEN_PREFIX;
    let mut read = Vec::new();
    loop {
        if read.len() >= PREFIX {
            let mut raw = [0u8; PREFIX];
            raw.copy_from_slice(&read[..PREFIX]);
            let len = u32::from_be_bytes(raw) as usize;
            if len > inspect_max {
                return Ok(FirstFrame {
                    read,
                    body: None,
                    finished: false,
                });
            }
            if read.len() >= PREFIX + len {
                let body = read[PREFIX..PREFIX + len].to_vec();
                return Ok(FirstFrame {
                    read,
                    body: Some(body),
                    finished: false,
                });
            }
        }
        match agent_recv.read_chunk(usize::MAX, true).await? {
            Some(chunk) => read.extend_from_slice(&chunk.bytes),
            None => {
                return Ok(FirstFrame {
                    read,
                    body: None,
                    finished: true,
                });
            }
        }
    }
}

/// Copies until the sender finishes, handing quinn's received chunks straight to the other
/// stream (no intermediate buffer, no copy of the payload in the relay). `count` adds up the
/// bytes passed on.
async fn copy_chunks(
    from: &mut quinn::RecvStream,
    to: &mut quinn::SendStream,
    count: &mut u64,
    tap: Tap<'_>,
) -> std::io::Result<()> {
    while let Some(chunk) = from
        .read_chunk(usize::MAX, true)
        .await
        .map_err(std::io::Error::other)?
    {
        let bytes = tap.pass(chunk.bytes);
        let len = bytes.len() as u64;
        to.write_chunk(bytes).await.map_err(std::io::Error::other)?;
        *count += len;
    }
    Ok(())
}

/// A test's copy of the bytes spliced one way (`Tamper::forwarded_bytes`); `None` on an
/// honest relay, where it costs one branch per chunk.
#[derive(Clone, Copy)]
struct Tap<'a> {
    tamper: Option<&'a dyn Tamper>,
    to_agent: bool,
}

impl Tap<'_> {
    fn saw(&self, bytes: &[u8]) {
        if let Some(t) = self.tamper {
            t.forwarded_bytes(self.to_agent, bytes);
        }
    }

    /// Shows `bytes` to the tamper, which may change what is passed on
    /// (`Tamper::alter_bytes`).
    fn pass(&self, bytes: bytes::Bytes) -> bytes::Bytes {
        let Some(t) = self.tamper else {
            return bytes;
        };
        t.forwarded_bytes(self.to_agent, &bytes);
        t.alter_bytes(self.to_agent, &bytes)
            .map_or(bytes, bytes::Bytes::from)
    }
}

/// The bytes one spliced stream carried (after the stream header), each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Carried {
    /// Operator → agent.
    pub(crate) up: u64,
    /// Agent → operator.
    pub(crate) down: u64,
}

/// Splices without looking at anything: the agent's relay on a peer stream, where the
/// operator's relay inspects the agent's answer.
pub(crate) async fn splice_uninspected(
    op_send: quinn::SendStream,
    op_recv: FramedRecv,
    agent_send: quinn::SendStream,
    agent_recv: quinn::RecvStream,
) -> Carried {
    splice_tapped(
        op_send,
        op_recv,
        agent_send,
        agent_recv,
        |_| async {},
        0,
        None,
    )
    .await
}

/// What [`splice_answering`] writes to the peer relay before the agent's bytes: the answer
/// frame, and how long it may wait for the agent's first bytes to go in the same write.
pub(crate) struct Answer {
    /// The encoded answer frame.
    pub(crate) frame: bytes::Bytes,
    /// The longest it waits for the agent's first bytes.
    pub(crate) hold: std::time::Duration,
}

/// [`splice_uninspected`] behind `answer`, for the agent's relay on a peer stream whose
/// operator already finished sending (so the peer relay has nothing more to send and waits
/// for nothing but the answer): the answer goes in the same write as the agent's first bytes
/// (and its end, when that came with them), or alone once `answer.hold` ran out. One packet
/// to the peer relay instead of the answer and then the agent's bytes, and one wake of the
/// peer relay instead of two (performance.md §12).
pub(crate) async fn splice_answering(
    mut op_send: quinn::SendStream,
    op_recv: FramedRecv,
    mut agent_send: quinn::SendStream,
    mut agent_recv: quinn::RecvStream,
    answer: Answer,
) -> Carried {
    let mut chunks = vec![answer.frame];
    let (mut down, mut ended, mut failed) = (0u64, false, false);
    // Nothing within the hold: the answer goes alone.
    let mut next = tokio::time::timeout(answer.hold, agent_recv.read_chunk(usize::MAX, true))
        .await
        .ok();
    // The agent's first bytes, what else it already sent (up to INSPECT_MAX), and its end
    // when that came too.
    while let Some(read) = next.take() {
        match read {
            Ok(Some(chunk)) => {
                down += chunk.bytes.len() as u64;
                chunks.push(chunk.bytes);
                if down < INSPECT_MAX as u64 {
                    next =
                        futures::FutureExt::now_or_never(agent_recv.read_chunk(usize::MAX, true));
                }
            }
            Ok(None) => ended = true,
            // The agent's stream failed: the peer sees it reset after the answer (and what
            // came before), as a spliced stream whose agent failed.
            Err(e) => {
                tracing::debug!(error = %e, "agent's first bytes not read");
                failed = true;
            }
        }
    }
    let written = op_send.write_all_chunks(&mut chunks).await.is_ok();
    if !written || failed {
        let _ = op_send.reset(PEER_GONE.into());
        let _ = agent_recv.stop(PEER_GONE.into());
        let _ = agent_send.reset(PEER_GONE.into());
        return Carried::default();
    }
    if ended {
        let _ = op_send.finish();
    }
    let mut carried = splice_uninspected(op_send, op_recv, agent_send, agent_recv).await;
    carried.down += down;
    carried
}

/// Splices an operator stream (its header read) and an agent stream (its forward header
/// sent), handing the agent's first frame, when at most `inspect_max` bytes, to `inspect`
/// (`0`: nothing is inspected, chunks pass as they come), and every byte passed on to
/// `tamper` (the malicious-relay harness; `None` on an honest relay).
pub(crate) async fn splice_tapped<F, Fut>(
    mut op_send: quinn::SendStream,
    op_recv: FramedRecv,
    mut agent_send: quinn::SendStream,
    mut agent_recv: quinn::RecvStream,
    inspect: F,
    inspect_max: usize,
    tamper: Option<&dyn Tamper>,
) -> Carried
where
    F: FnOnce(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (up_tap, down_tap) = (
        Tap {
            tamper,
            to_agent: true,
        },
        Tap {
            tamper,
            to_agent: false,
        },
    );
    let (mut up_bytes, mut down_bytes) = (0u64, 0u64);
    let mut op_recv = op_recv;
    let buffered = op_recv.take_buffered();
    let mut op_recv = op_recv.into_inner();
    let up = async {
        let result = async {
            if !buffered.is_empty() {
                let buffered = up_tap.pass(buffered.freeze());
                agent_send.write_all(&buffered).await?;
                up_bytes += buffered.len() as u64;
            }
            copy_chunks(&mut op_recv, &mut agent_send, &mut up_bytes, up_tap).await
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
    // The operator stopping its receive side (a closed watch) must reach the agent even while
    // the agent has nothing to send: otherwise an idle watch keeps its agent stream, one of
    // the MAX_CONCURRENT_STREAMS the agent allows, until the workspace's next event.
    let op_stopped = op_send.stopped();
    let down = async {
        let down_copy = async {
            // Nothing to inspect (the agent's relay on a peer stream): chunks as they come.
            let first = if inspect_max == 0 {
                None
            } else {
                Some(read_first_frame(&mut agent_recv, inspect_max).await)
            };
            match first {
                None => {}
                Some(Ok(first)) => {
                    if let Some(body) = first.body {
                        inspect(body).await;
                    }
                    down_tap.saw(&first.read);
                    if op_send.write_all(&first.read).await.is_err() {
                        let _ = agent_recv.stop(PEER_GONE.into());
                        return;
                    }
                    down_bytes += first.read.len() as u64;
                    if first.finished {
                        let _ = op_send.finish();
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "agent's first frame not read");
                    let _ = agent_recv.stop(PEER_GONE.into());
                    let _ = op_send.reset(PEER_GONE.into());
                    return;
                }
            }
            match copy_chunks(&mut agent_recv, &mut op_send, &mut down_bytes, down_tap).await {
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
        let operator_stopped = {
            tokio::pin!(down_copy);
            tokio::select! {
                () = &mut down_copy => false,
                // Resolves only on the operator's STOP_SENDING or a lost connection while the
                // copy runs (this side finishes only after the copy has ended).
                _ = op_stopped => true,
            }
        };
        if operator_stopped {
            tracing::debug!("operator stopped reading; stopping the agent's stream");
            let _ = agent_recv.stop(PEER_GONE.into());
        }
    };
    tokio::join!(up, down);
    Carried {
        up: up_bytes,
        down: down_bytes,
    }
}
