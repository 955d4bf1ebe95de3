//! Async shells over the record layer: [`SealedRecv`] opens records from an inner `AsyncRead`,
//! [`SealedSend`] seals into an inner `AsyncWrite` (TLS-stream style: what `poll_write` accepts
//! is sealed at once and kept until the inner writer takes it).

use super::E2eError;
use super::keys::StreamKeys;
use super::record::{
    FLAG_DATA, FLAG_FIN, LEN_PREFIX, MAX_CIPHERTEXT, MAX_RECORD_DATA, Opened, RecordOpener,
    RecordSealer, ciphertext_len,
};
use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Receive buffer: room for two whole records, so a read from the inner stream is never tiny.
const RECV_BUF: usize = 2 * (LEN_PREFIX + MAX_CIPHERTEXT);
/// `poll_write` stops sealing once this much ciphertext is pending.
const SEND_BATCH: usize = 4 * (LEN_PREFIX + MAX_CIPHERTEXT);

/// Wraps a stream's halves after the header: everything written is sealed, everything read is
/// opened.
pub fn seal_stream<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    keys: StreamKeys,
    recv: R,
    send: W,
) -> (SealedRecv<R>, SealedSend<W>) {
    (
        SealedRecv::new(&keys.recv, recv),
        SealedSend::new(&keys.send, send),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    /// The fin record was read; the inner stream must end now.
    FinSeen,
    /// Fin and inner EOF: the stream ended cleanly.
    Done,
}

/// The reading half of a sealed stream: yields only authenticated bytes, and EOF only after the
/// peer's fin record and the inner stream's end.
pub struct SealedRecv<R> {
    inner: R,
    opener: RecordOpener,
    buf: Box<[u8]>,
    /// Bytes received into `buf`.
    filled: usize,
    /// Start of the next unopened record in `buf`.
    next: usize,
    /// Opened data not yet handed out.
    data: Range<usize>,
    state: RecvState,
    failed: Option<E2eError>,
}

impl<R> fmt::Debug for SealedRecv<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedRecv")
            .field("state", &self.state)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<R> SealedRecv<R> {
    fn new(key: &[u8; 32], inner: R) -> Self {
        Self {
            inner,
            opener: RecordOpener::new(key),
            buf: vec![0u8; RECV_BUF].into_boxed_slice(),
            filled: 0,
            next: 0,
            data: 0..0,
            state: RecvState::Open,
            failed: None,
        }
    }

    /// The inner stream (e.g. to stop a QUIC receive stream).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn fail(&mut self, e: E2eError) -> io::Error {
        self.failed = Some(e.clone());
        e.into_io()
    }

    /// Opens the next whole buffered record, if there is one. `Ok(false)`: need more bytes.
    fn open_buffered(&mut self) -> Result<bool, E2eError> {
        let available = self.filled - self.next;
        if available == 0 {
            return Ok(false);
        }
        if self.state != RecvState::Open {
            return Err(E2eError::DataAfterFin);
        }
        let Some(prefix) = self.buf[self.next..self.filled].first_chunk::<LEN_PREFIX>() else {
            return Ok(false);
        };
        let len = ciphertext_len(*prefix)?;
        if available < LEN_PREFIX + len {
            return Ok(false);
        }
        let start = self.next + LEN_PREFIX;
        self.next = start + len;
        match self.opener.open(&mut self.buf[start..start + len])? {
            Opened::Data(range) => self.data = start + range.start..start + range.end,
            Opened::Fin => {
                self.state = RecvState::FinSeen;
                if self.next != self.filled {
                    return Err(E2eError::DataAfterFin);
                }
            }
        }
        Ok(true)
    }

    /// Moves the unopened tail to the front of the buffer.
    fn compact(&mut self) {
        if self.next > 0 {
            self.buf.copy_within(self.next..self.filled, 0);
            self.filled -= self.next;
            self.next = 0;
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for SealedRecv<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(E2eError::Failed(Box::new(e.clone())).into_io()));
        }
        loop {
            if !this.data.is_empty() {
                let n = this.data.len().min(out.remaining());
                out.put_slice(&this.buf[this.data.start..this.data.start + n]);
                this.data.start += n;
                return Poll::Ready(Ok(()));
            }
            if this.state == RecvState::Done {
                return Poll::Ready(Ok(()));
            }
            match this.open_buffered() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(this.fail(e))),
            }
            this.compact();
            let mut read = ReadBuf::new(&mut this.buf[this.filled..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                if this.state == RecvState::FinSeen {
                    this.state = RecvState::Done;
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(this.fail(E2eError::Truncated)));
            }
            this.filled += n;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendState {
    Open,
    /// The fin record is sealed (maybe not yet written).
    FinSealed,
    /// The inner writer is shut down.
    Closed,
}

/// The writing half of a sealed stream. `poll_shutdown` sends the fin record, then shuts the
/// inner writer down; a stream dropped without shutdown reads as truncated on the other end.
pub struct SealedSend<W> {
    inner: W,
    sealer: RecordSealer,
    /// Sealed bytes the inner writer has not taken yet, from `written` on.
    pending: Vec<u8>,
    written: usize,
    state: SendState,
}

impl<W> fmt::Debug for SealedSend<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSend")
            .field("state", &self.state)
            .field("pending", &(self.pending.len() - self.written))
            .finish_non_exhaustive()
    }
}

impl<W> SealedSend<W> {
    fn new(key: &[u8; 32], inner: W) -> Self {
        Self {
            inner,
            sealer: RecordSealer::new(key),
            pending: Vec::new(),
            written: 0,
            state: SendState::Open,
        }
    }

    /// The inner stream (e.g. to reset a QUIC send stream).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: AsyncWrite + Unpin> SealedSend<W> {
    /// Writes the pending ciphertext to the inner writer.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for SealedSend<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.state != SendState::Open {
            return Poll::Ready(Err(E2eError::WriteAfterShutdown.into_io()));
        }
        // Nothing is accepted while older ciphertext waits: the caller retries with the same buf.
        ready!(this.poll_drain(cx))?;
        let mut taken = 0;
        while taken < buf.len() && this.pending.len() < SEND_BATCH {
            let end = buf.len().min(taken + MAX_RECORD_DATA);
            this.sealer
                .seal(FLAG_DATA, &buf[taken..end], &mut this.pending)?;
            taken = end;
        }
        // `buf[..taken]` is accepted: push what the inner writer takes now, the rest later.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state == SendState::Closed {
            // Shut down already: a QUIC send stream refuses a second finish.
            return Poll::Ready(Ok(()));
        }
        if this.state == SendState::Open {
            this.sealer.seal(FLAG_FIN, &[], &mut this.pending)?;
            this.state = SendState::FinSealed;
        }
        ready!(this.poll_drain(cx))?;
        ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
        this.state = SendState::Closed;
        Poll::Ready(Ok(()))
    }
}
