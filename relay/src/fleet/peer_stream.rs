//! The relay-to-relay stream protocol (relay-internal; see docs/protocol.md, "Relay-to-relay
//! streams"). The operator's relay opens a bidirectional stream on its connection to the
//! peer holding the host's agent and sends one [`PeerOpen`] frame: the host and the
//! [`ForwardHeader`] the agent is to receive (who asks, with which role: already
//! authenticated, authorized and audited by the operator's relay), followed at once by the
//! operator's first bytes (up to [`SEND_AHEAD_MAX`](super::send_ahead::SEND_AHEAD_MAX), without
//! waiting for the answer). The peer answers one [`PeerAnswer`] frame; after
//! [`PeerAnswer::Open`] the stream carries the agent stream's bytes both ways, unparsed. Any
//! other answer ends the stream, and what was sent ahead goes to the next relay.

use super::send_ahead::SendAhead;
use crate::framed::{FramedRecv, StreamError, send_frame};
use proto::frame::{LEN_PREFIX, MAX_HEADER_LEN};
use proto::ids::HostId;
use proto::ops::ForwardHeader;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::AsyncRead;

/// Largest [`PeerOpen`] or [`PeerAnswer`] frame: a forward header (at most a stream header's
/// size) plus the host and the names of who asks.
pub const MAX_PEER_FRAME: usize = MAX_HEADER_LEN + 4 * 1024;

/// How long the peer waits for the [`PeerOpen`] frame of a new stream.
pub const OPEN_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the operator's relay waits for the [`PeerAnswer`]: above the agent-side wait for a
/// free agent stream (5 s), after which the peer answers [`PeerAnswer::Busy`].
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// First frame of a relay-to-relay stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerOpen {
    /// The host whose agent the stream is for (the same as `forward.header.host`).
    pub host: HostId,
    /// What the agent receives first, unchanged.
    pub forward: ForwardHeader,
}

/// The peer's answer to a [`PeerOpen`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum PeerAnswer {
    /// The agent stream is open; the agent's bytes follow.
    Open,
    /// This relay does not hold the host's agent (any more): try the next relay.
    NotHere,
    /// The agent's connection has no free stream (all `streams` in use).
    Busy {
        /// How many streams the agent allows.
        streams: u32,
    },
    /// The [`PeerOpen`] frame was refused (a relay bug or version mismatch, not an operator's
    /// mistake).
    Invalid {
        /// Why.
        message: String,
    },
}

/// Why a relay-to-relay stream could not start.
#[derive(Debug, thiserror::Error)]
pub enum PeerStreamError {
    /// Reading or writing a frame failed, or a frame is oversized or malformed.
    #[error("relay-to-relay frame: {0}")]
    Frame(#[from] StreamError),
    /// The frame is well-formed but contradicts itself.
    #[error("relay-to-relay open names host {host} but its forward header names {header:?}")]
    HostMismatch {
        /// The frame's host.
        host: HostId,
        /// The forward header's host.
        header: Option<HostId>,
    },
    /// The other relay sent nothing in time.
    #[error("the other relay sent no {0} within {1:?}")]
    Timeout(&'static str, Duration),
    /// The stream could not be opened or read.
    #[error("relay-to-relay stream: {0}")]
    Stream(String),
    /// The answer's length prefix announces more than [`MAX_PEER_FRAME`].
    #[error("relay-to-relay answer of {0} bytes is over the {MAX_PEER_FRAME}-byte limit")]
    Oversize(usize),
}

/// Reads the [`PeerOpen`] frame of a new stream (the peer's side). Bytes after it stay
/// buffered in `recv`.
///
/// # Errors
/// Nothing in time, an oversized or malformed frame, or a host that is not the header's.
pub async fn read_open<R: tokio::io::AsyncRead + Unpin>(
    recv: &mut FramedRecv<R>,
) -> Result<PeerOpen, PeerStreamError> {
    let open: PeerOpen = tokio::time::timeout(OPEN_FRAME_TIMEOUT, recv.expect())
        .await
        .map_err(|_| PeerStreamError::Timeout("open frame", OPEN_FRAME_TIMEOUT))??;
    if open.forward.header.host.as_ref() != Some(&open.host) {
        return Err(PeerStreamError::HostMismatch {
            host: open.host,
            header: open.forward.header.host,
        });
    }
    Ok(open)
}

/// Sends the peer's answer.
///
/// # Errors
/// The stream failed.
pub async fn answer(send: &mut quinn::SendStream, answer: &PeerAnswer) -> Result<(), StreamError> {
    send_frame(send, answer, MAX_PEER_FRAME).await
}

/// The [`PeerAnswer::Open`] frame, encoded (for a write that carries more behind it).
pub fn open_frame() -> bytes::Bytes {
    const OPEN: &[u8] = br#"{"answer":"open"}"#;
    let mut frame = Vec::with_capacity(LEN_PREFIX + OPEN.len());
    frame.extend_from_slice(&(OPEN.len() as u32).to_be_bytes());
    frame.extend_from_slice(OPEN);
    bytes::Bytes::from(frame)
}

/// Opens a stream on `conn` (to a peer relay), sends `open` and, in the same write, what the
/// operator sent so far and its end if it came ([`SendAhead::take_ready`]); then reads the answer while passing
/// on what the operator sends meanwhile (up to the bound). After [`PeerAnswer::Open`], `recv`
/// holds exactly the agent's bytes: the answer is read to its last byte and no further.
///
/// # Errors
/// The connection or stream failed, or the answer is missing, late or malformed.
pub async fn request<R: AsyncRead + Unpin>(
    conn: &quinn::Connection,
    open: &PeerOpen,
    ahead: &mut SendAhead<'_, R>,
) -> Result<(quinn::SendStream, quinn::RecvStream, PeerAnswer), PeerStreamError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| stream_error(&e))?;
        ahead.take_ready();
        let mut first = proto::frame::to_frame(open, MAX_PEER_FRAME).map_err(StreamError::from)?;
        first.extend_from_slice(ahead.taken());
        send.write_all(&first).await.map_err(|e| stream_error(&e))?;
        if ahead.ended() {
            let _ = send.finish();
        }
        let answer = {
            let answer = read_answer(&mut recv);
            tokio::pin!(answer);
            // A write the peer refused (it stopped the stream after answering) is not an
            // error here: its answer says why.
            let mut writable = true;
            loop {
                tokio::select! {
                    answer = &mut answer => break answer?,
                    more = ahead.read_more(), if writable && ahead.can_read() => {
                        if send.write_all(&ahead.taken()[more]).await.is_err() {
                            writable = false;
                        } else if ahead.ended() {
                            let _ = send.finish();
                        }
                    }
                }
            }
        };
        Ok((send, recv, answer))
    };
    tokio::time::timeout(ANSWER_TIMEOUT, exchange)
        .await
        .map_err(|_| PeerStreamError::Timeout("answer", ANSWER_TIMEOUT))?
}

fn stream_error(e: &dyn std::fmt::Display) -> PeerStreamError {
    PeerStreamError::Stream(e.to_string())
}

/// Reads one [`PeerAnswer`] frame, to its last byte and no further.
async fn read_answer(recv: &mut quinn::RecvStream) -> Result<PeerAnswer, PeerStreamError> {
    let mut prefix = [0u8; LEN_PREFIX];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|e| stream_error(&e))?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_PEER_FRAME {
        return Err(PeerStreamError::Oversize(len));
    }
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| stream_error(&e))?;
    Ok(proto::frame::parse_json(&body).map_err(StreamError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::ReqId;

    #[test]
    fn answers_have_a_stable_wire_form() {
        let wire = |a: &PeerAnswer| serde_json::to_string(a).unwrap();
        assert_eq!(wire(&PeerAnswer::Open), r#"{"answer":"open"}"#);
        assert_eq!(wire(&PeerAnswer::NotHere), r#"{"answer":"not_here"}"#);
        assert_eq!(
            wire(&PeerAnswer::Busy { streams: 128 }),
            r#"{"answer":"busy","streams":128}"#
        );
    }

    #[test]
    fn the_encoded_open_answer_is_the_open_frame() {
        let framed = proto::frame::to_frame(&PeerAnswer::Open, MAX_PEER_FRAME).unwrap();
        assert_eq!(&open_frame()[..], &framed[..]);
    }

    #[tokio::test]
    async fn an_open_frame_naming_two_hosts_is_refused_with_both_names() {
        let mut header = proto::header::StreamHeader::new(proto::header::Op::SessionList, ReqId(1));
        header.host = Some(HostId::from("h1"));
        let open = PeerOpen {
            host: HostId::from("h2"),
            forward: ForwardHeader {
                header,
                principal: proto::ids::UserId::from("alice"),
                role: proto::rbac::Role::Viewer,
                cred_id: proto::ids::CredId::from("c1"),
            },
        };
        let frame = proto::frame::to_frame(&open, MAX_PEER_FRAME).unwrap();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        tokio::io::AsyncWriteExt::write_all(&mut client, &frame)
            .await
            .unwrap();
        let mut recv = FramedRecv::new(server, MAX_PEER_FRAME);
        let err = read_open(&mut recv).await.unwrap_err().to_string();
        assert!(err.contains("h1") && err.contains("h2"), "{err}");
    }
}
