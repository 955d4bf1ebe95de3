//! Framed JSON over QUIC streams: the thin async shell around `proto::frame`.

use bytes::BytesMut;
use proto::frame::{self, FrameDecoder, FrameError};
use serde::{Serialize, de::DeserializeOwned};

/// Errors on a framed stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading failed (connection lost, stream reset).
    #[error("read: {0}")]
    Read(#[from] quinn::ReadError),
    /// Writing failed (connection lost, stream stopped).
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    /// The peer sent a frame we refuse.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended before the expected frame.
    #[error("stream closed before a reply arrived")]
    Closed,
}

/// A receive stream that yields decoded frames.
#[derive(Debug)]
pub struct FramedRecv {
    recv: quinn::RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

/// Largest chunk read at once.
const READ_CHUNK: usize = 64 * 1024;

impl FramedRecv {
    /// Wraps `recv`, refusing frames longer than `max_len`.
    pub fn new(recv: quinn::RecvStream, max_len: usize) -> Self {
        Self {
            recv,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_len),
        }
    }

    /// Changes the frame limit (e.g. from the header limit to the body limit).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.decoder = FrameDecoder::new(max_len);
    }

    /// The next frame body; `Ok(None)` on a clean end of stream.
    ///
    /// # Errors
    /// Oversize, truncated (end inside a frame), or a transport failure.
    pub async fn next_raw(&mut self) -> Result<Option<BytesMut>, StreamError> {
        loop {
            if let Some(body) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(body));
            }
            match self.recv.read_chunk(READ_CHUNK, true).await? {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None => {
                    self.decoder.finish(&self.buf)?;
                    return Ok(None);
                }
            }
        }
    }

    /// The next frame parsed as `T`; `Ok(None)` on a clean end of stream.
    ///
    /// # Errors
    /// As [`Self::next_raw`], plus malformed JSON.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StreamError> {
        match self.next_raw().await? {
            None => Ok(None),
            Some(body) => Ok(Some(frame::parse_json(&body)?)),
        }
    }

    /// The next frame parsed as `T`; a clean end of stream is an error here.
    ///
    /// # Errors
    /// As [`Self::next`], plus [`StreamError::Closed`].
    pub async fn expect<T: DeserializeOwned>(&mut self) -> Result<T, StreamError> {
        self.next().await?.ok_or(StreamError::Closed)
    }

    /// Puts a frame body read with [`Self::next_raw`] back in front, exactly as it arrived
    /// (length prefix and body), so later readers and raw forwarding see the same bytes.
    pub fn unread_frame(&mut self, body: &[u8]) {
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let mut front = BytesMut::with_capacity(frame::LEN_PREFIX + body.len() + self.buf.len());
        front.extend_from_slice(&len.to_be_bytes());
        front.extend_from_slice(body);
        front.extend_from_slice(&self.buf);
        self.buf = front;
    }

    /// Bytes buffered but not yet decoded (for raw-byte phases after the header).
    pub fn take_buffered(&mut self) -> BytesMut {
        self.buf.split()
    }

    /// The underlying stream.
    pub fn into_inner(self) -> quinn::RecvStream {
        self.recv
    }

    /// Tells the peer to stop sending.
    pub fn stop(&mut self, code: u32) {
        let _ = self.recv.stop(quinn::VarInt::from_u32(code));
    }
}

/// Writes `value` as one frame.
///
/// # Errors
/// Oversize value or a transport failure.
pub async fn send_frame<T: Serialize>(
    send: &mut quinn::SendStream,
    value: &T,
    max_len: usize,
) -> Result<(), StreamError> {
    let bytes = frame::to_frame(value, max_len)?;
    send.write_all(&bytes).await?;
    Ok(())
}
