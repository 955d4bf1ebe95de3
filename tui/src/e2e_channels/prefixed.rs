//! A receive stream with bytes already read from it put back in front: the first frame of a
//! sealed stream is read raw (to tell a plaintext refusal from a sealed record), then handed
//! back to the reader that opens the records.

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// `inner` with `front` read first.
#[derive(Debug)]
pub struct Prefixed<R> {
    front: Vec<u8>,
    at: usize,
    inner: R,
}

impl<R> Prefixed<R> {
    /// `inner`, nothing in front.
    pub fn new(inner: R) -> Self {
        Self::with_front(Vec::new(), inner)
    }

    /// `inner` with `front` read first.
    pub fn with_front(front: Vec<u8>, inner: R) -> Self {
        Self {
            front,
            at: 0,
            inner,
        }
    }

    /// Puts `bytes` in front of what is still to be read.
    pub fn put_back(&mut self, mut bytes: Vec<u8>) {
        bytes.extend_from_slice(&self.front[self.at..]);
        self.front = bytes;
        self.at = 0;
    }

    /// The inner stream (e.g. to stop a QUIC receive stream).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Prefixed<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.front.len() {
            let rest = &this.front[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            if this.at == this.front.len() {
                this.front = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn the_front_comes_first_then_the_stream() {
        let inner: &[u8] = b" world";
        let mut r = Prefixed::with_front(b"hello".to_vec(), inner);
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
