//! One type for callers over plain (relay-trusted hosts) and sealed (zero-trust hosts) streams.

use super::stream::{SealedRecv, SealedSend};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream's reading half, plain (relay-trusted hosts) or sealed.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per stream, held for its life; boxing would only add an indirection"
)]
pub enum MaybeSealedRecv<R> {
    /// No end-to-end encryption.
    Plain(R),
    /// End-to-end sealed.
    Sealed(SealedRecv<R>),
}

impl<R> MaybeSealedRecv<R> {
    /// The inner stream.
    pub fn get_mut(&mut self) -> &mut R {
        match self {
            Self::Plain(r) => r,
            Self::Sealed(r) => r.get_mut(),
        }
    }

    /// Whether reads are end-to-end authenticated.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MaybeSealedRecv<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(r) => Pin::new(r).poll_read(cx, buf),
            Self::Sealed(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// A stream's writing half, plain (relay-trusted hosts) or sealed.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per stream, held for its life; boxing would only add an indirection"
)]
pub enum MaybeSealedSend<W> {
    /// No end-to-end encryption.
    Plain(W),
    /// End-to-end sealed.
    Sealed(SealedSend<W>),
}

impl<W> MaybeSealedSend<W> {
    /// The inner stream.
    pub fn get_mut(&mut self) -> &mut W {
        match self {
            Self::Plain(w) => w,
            Self::Sealed(w) => w.get_mut(),
        }
    }

    /// Whether writes are end-to-end sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Self::Sealed(_))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for MaybeSealedSend<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_write(cx, buf),
            Self::Sealed(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_flush(cx),
            Self::Sealed(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(w) => Pin::new(w).poll_shutdown(cx),
            Self::Sealed(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}
