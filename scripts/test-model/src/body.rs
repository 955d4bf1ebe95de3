//! The HTTP response body type: either a complete buffer or a stream fed through a channel.
//!
//! Streaming replies are produced by a task that sends each SSE event into a channel; hyper
//! writes every received frame as its own HTTP chunk. When the client goes away, hyper drops the
//! body, the channel closes and the producer stops at its next send.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// A response body: a full buffer, or chunks received from a channel until it closes.
#[derive(Debug)]
pub(crate) enum ReplyBody {
    /// The whole body at once (`None` once sent).
    Full(Option<Bytes>),
    /// Chunks from a producer task.
    Channel(mpsc::Receiver<Bytes>),
}

impl ReplyBody {
    /// A complete body.
    pub(crate) fn full(data: impl Into<Bytes>) -> Self {
        Self::Full(Some(data.into()))
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Self::Channel(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Channel(_) => SizeHint::default(),
        }
    }
}
