//! Length-prefixed JSON frames over any `AsyncRead`/`AsyncWrite` (a QUIC stream in production,
//! an in-memory pipe in tests): the thin async shell around `proto::frame`.

use bytes::BytesMut;
use proto::frame::{self, FrameDecoder, FrameError};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Bound on writing one frame: a peer that stops reading cannot pin a task forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reading or writing a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameIoError {
    /// Transport failure.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// Framing or JSON problem.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer did not take the frame in time.
    #[error("the peer did not read within {0:?}")]
    Timeout(Duration),
}

/// Decodes frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads frames of at most `max_len` bytes.
    pub fn new(inner: R, max_len: usize) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(max_len),
        }
    }

    /// Changes the limit (header limit, then body limit).
    pub fn set_max_len(&mut self, max_len: usize) {
        self.decoder = FrameDecoder::new(max_len);
    }

    /// The next frame as `T`; `Ok(None)` at a clean end of stream.
    ///
    /// # Errors
    /// Oversize or truncated frames, bad JSON, transport failures.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameIoError> {
        loop {
            if let Some(body) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(frame::parse_json(&body)?));
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                self.decoder.finish(&self.buf)?;
                return Ok(None);
            }
        }
    }
}

/// Writes `value` as one frame of at most `max_len` bytes, within [`WRITE_TIMEOUT`].
///
/// # Errors
/// Oversize value, transport failure, timeout.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    out: &mut W,
    value: &T,
    max_len: usize,
) -> Result<(), FrameIoError> {
    let bytes = frame::to_frame(value, max_len)?;
    tokio::time::timeout(WRITE_TIMEOUT, async {
        out.write_all(&bytes).await?;
        out.flush().await
    })
    .await
    .map_err(|_| FrameIoError::Timeout(WRITE_TIMEOUT))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_eof_is_clean() {
        let (a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            write_frame(&mut b, &serde_json::json!({"x": 1}), 1024)
                .await
                .unwrap();
            write_frame(&mut b, &"two", 1024).await.unwrap();
        });
        let mut r = FrameReader::new(a, 1024);
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
        write_frame(&mut b, &"x".repeat(100), 1024).await.unwrap();
        let mut r = FrameReader::new(a, 10);
        assert!(matches!(
            r.next::<String>().await,
            Err(FrameIoError::Frame(FrameError::Oversize { .. }))
        ));
        let mut sink = tokio::io::sink();
        assert!(write_frame(&mut sink, &"x".repeat(100), 10).await.is_err());
    }
}
