//! Length-prefixed JSON frames over any `AsyncRead`/`AsyncWrite` (a QUIC stream in production,
//! an in-memory pipe in tests): the thin async shell around `proto::frame`, used by the relay,
//! the agent and the clients. Writes are bounded by [`WRITE_TIMEOUT`], so a peer that stops
//! reading cannot hold a writer forever.

use bytes::BytesMut;
use proto::frame::{self, FrameDecoder, FrameError};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Bound on writing one frame: a peer that stops reading cannot pin a task forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors on a framed stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading failed (connection lost, stream reset).
    #[error("read: {0}")]
    Read(#[source] std::io::Error),
    /// Writing failed (connection lost, stream stopped).
    #[error("write: {0}")]
    Write(#[source] std::io::Error),
    /// The peer did not take a frame in time.
    #[error("the peer did not read within {0:?}")]
    WriteTimeout(Duration),
    /// The peer sent a frame we refuse.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended before the expected frame.
    #[error("stream closed before a reply arrived")]
    Closed,
}

/// A receive stream that yields decoded frames.
#[derive(Debug)]
pub struct FramedRecv<R = quinn::RecvStream> {
    recv: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

/// Room made for a read when the buffer is full: small, because every idle stream keeps it.
/// A frame's announced length reserves the rest of it at once (`FrameDecoder::decode`).
const READ_ROOM: usize = 1024;

impl<R: AsyncRead + Unpin> FramedRecv<R> {
    /// Wraps `recv`, refusing frames longer than `max_len`.
    pub fn new(recv: R, max_len: usize) -> Self {
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
            if self.buf.len() == self.buf.capacity() {
                self.buf.reserve(READ_ROOM);
            }
            if self
                .recv
                .read_buf(&mut self.buf)
                .await
                .map_err(StreamError::Read)?
                == 0
            {
                self.decoder.finish(&self.buf)?;
                return Ok(None);
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

    /// Puts raw bytes taken with [`Self::take_buffered`] (or read from [`Self::get_mut`]) back
    /// in front, so later readers see the stream as if they had never been taken.
    pub fn unread(&mut self, bytes: &[u8]) {
        let mut front = BytesMut::with_capacity(bytes.len() + self.buf.len());
        front.extend_from_slice(bytes);
        front.extend_from_slice(&self.buf);
        self.buf = front;
    }

    /// Bytes buffered but not yet decoded (for raw-byte phases after the header).
    pub fn take_buffered(&mut self) -> BytesMut {
        self.buf.split()
    }

    /// The underlying stream (for raw-byte phases, after [`Self::take_buffered`]).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.recv
    }

    /// The underlying stream.
    pub fn into_inner(self) -> R {
        self.recv
    }
}

impl FramedRecv<quinn::RecvStream> {
    /// Tells the peer to stop sending.
    pub fn stop(&mut self, code: u32) {
        let _ = self.recv.stop(quinn::VarInt::from_u32(code));
    }
}

/// Writes `value` as one frame of at most `max_len` bytes, within [`WRITE_TIMEOUT`].
///
/// # Errors
/// Oversize value, a transport failure, or [`StreamError::WriteTimeout`] (the stream is then
/// unusable: part of the frame may have been written).
pub async fn send_frame<W: AsyncWrite + Unpin, T: Serialize>(
    send: &mut W,
    value: &T,
    max_len: usize,
) -> Result<(), StreamError> {
    let bytes = frame::to_frame(value, max_len)?;
    write_within(send, &bytes, WRITE_TIMEOUT).await
}

/// Writes already-framed `bytes` within `limit`.
///
/// # Errors
/// A transport failure or [`StreamError::WriteTimeout`].
pub async fn write_within<W: AsyncWrite + Unpin>(
    send: &mut W,
    bytes: &[u8],
    limit: Duration,
) -> Result<(), StreamError> {
    tokio::time::timeout(limit, async {
        send.write_all(bytes).await?;
        send.flush().await
    })
    .await
    .map_err(|_| StreamError::WriteTimeout(limit))?
    .map_err(StreamError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_eof_is_clean() {
        let (a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            send_frame(&mut b, &serde_json::json!({"x": 1}), 1024)
                .await
                .unwrap();
            send_frame(&mut b, &"two", 1024).await.unwrap();
        });
        let mut r = FramedRecv::new(a, 1024);
        assert_eq!(
            r.next::<serde_json::Value>().await.unwrap(),
            Some(serde_json::json!({"x": 1}))
        );
        assert_eq!(r.next::<String>().await.unwrap().as_deref(), Some("two"));
        writer.await.unwrap();
        assert_eq!(r.next::<String>().await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversize_frames_are_refused() {
        let (a, mut b) = tokio::io::duplex(1024);
        send_frame(&mut b, &"x".repeat(100), 1024).await.unwrap();
        let mut r = FramedRecv::new(a, 10);
        assert!(matches!(
            r.next::<String>().await,
            Err(StreamError::Frame(FrameError::Oversize { .. }))
        ));
        let mut sink = tokio::io::sink();
        assert!(send_frame(&mut sink, &"x".repeat(100), 10).await.is_err());
    }

    #[tokio::test]
    async fn an_end_inside_a_frame_is_truncation_and_expect_needs_a_frame() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(&[0, 0, 0, 9, b'"']).await.unwrap();
        drop(b);
        let mut r = FramedRecv::new(a, 1024);
        assert!(matches!(
            r.next::<String>().await,
            Err(StreamError::Frame(FrameError::Truncated { .. }))
        ));
        let (a, b) = tokio::io::duplex(64);
        drop(b);
        assert!(matches!(
            FramedRecv::new(a, 1024).expect::<String>().await,
            Err(StreamError::Closed)
        ));
    }

    #[tokio::test]
    async fn an_unread_frame_is_read_again_before_the_rest() {
        let (a, mut b) = tokio::io::duplex(256);
        send_frame(&mut b, &"first", 1024).await.unwrap();
        send_frame(&mut b, &"second", 1024).await.unwrap();
        let mut r = FramedRecv::new(a, 1024);
        let body = r.next_raw().await.unwrap().unwrap();
        r.unread_frame(&body);
        assert_eq!(r.expect::<String>().await.unwrap(), "first");
        assert_eq!(r.expect::<String>().await.unwrap(), "second");
    }

    #[tokio::test]
    async fn raw_bytes_put_back_are_decoded_before_the_rest() {
        let (a, mut b) = tokio::io::duplex(256);
        send_frame(&mut b, &"first", 1024).await.unwrap();
        send_frame(&mut b, &"second", 1024).await.unwrap();
        drop(b);
        let mut r = FramedRecv::new(a, 1024);
        // Read past the first frame and take it all raw, as a raw-byte phase would.
        let mut raw = r.take_buffered().to_vec();
        r.get_mut().read_to_end(&mut raw).await.unwrap();
        r.unread(&raw);
        assert_eq!(r.expect::<String>().await.unwrap(), "first");
        assert_eq!(r.expect::<String>().await.unwrap(), "second");
        assert_eq!(r.next::<String>().await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_reads_cannot_hold_a_writer_forever() {
        // The peer's end stays open but is never read: the pipe fills and the write stalls.
        let (mut ours, _never_read) = tokio::io::duplex(64);
        let frame = "x".repeat(1_000);
        // Without a bound the write would wait forever; the outer limit turns that into a failure.
        let r = tokio::time::timeout(WRITE_TIMEOUT * 2, send_frame(&mut ours, &frame, 4096))
            .await
            .expect("the write gave up by itself");
        assert!(
            matches!(r, Err(StreamError::WriteTimeout(t)) if t == WRITE_TIMEOUT),
            "{r:?}"
        );
    }
}
