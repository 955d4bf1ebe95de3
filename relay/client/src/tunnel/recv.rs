//! The receive side both tunnel sockets share: datagrams the readers queued, copied into the
//! buffers quinn's endpoint driver offers ([`quinn::AsyncUdpSocket::poll_recv`]).

use super::stream_io::Inbound;
use quinn::udp::RecvMeta;
use std::io::IoSliceMut;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The endpoint's receive queue (filled by every reader of the socket).
#[derive(Debug)]
pub(crate) struct RecvQueue(Mutex<mpsc::Receiver<Inbound>>);

impl RecvQueue {
    /// A queue holding at most `capacity` datagrams, and the sender readers feed.
    pub(crate) fn new(capacity: usize) -> (Self, mpsc::Sender<Inbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self(Mutex::new(rx)), tx)
    }

    /// Fills `bufs`/`meta` with as many queued datagrams as are ready. A datagram larger than
    /// its buffer is dropped (the decoder's limit keeps them within the endpoint's maximum).
    /// Never an error: when every reader is gone the socket just stays quiet.
    pub(crate) fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        let mut rx = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let next = if n == 0 {
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) | Poll::Pending => return Poll::Pending,
                }
            } else {
                match rx.try_recv() {
                    Ok(item) => item,
                    Err(_) => break,
                }
            };
            let (from, datagram) = next;
            let Some(buf) = bufs[n].get_mut(..datagram.len()) else {
                tracing::debug!(
                    len = datagram.len(),
                    "tunnel datagram larger than the receive buffer dropped"
                );
                continue;
            };
            buf.copy_from_slice(&datagram);
            let m = &mut meta[n];
            m.addr = from;
            m.len = datagram.len();
            m.stride = datagram.len();
            m.ecn = None;
            m.dst_ip = None;
            n += 1;
        }
        Poll::Ready(Ok(n))
    }
}
