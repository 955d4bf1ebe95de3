//! The relay's tunnel socket: a [`quinn::AsyncUdpSocket`] whose "datagrams" arrive on, and
//! leave through, the TCP connections its listener accepted ([`super::accept`]). A datagram is
//! seen as coming from its TCP peer's address (unique while that connection lives); a send to
//! an address goes to that connection's queue, and to an unknown address is dropped, as UDP
//! would. A full queue drops too: quinn's write-readiness poller does not say which peer it
//! waits for, so waiting for one slow connection would stall sends to every other one; the
//! loss makes that connection's congestion controller slow down instead.

use super::client_socket::encode_transmit;
use super::queue::SendQueue;
use super::recv::RecvQueue;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::task::AbortHandle;

/// The live connections by peer address.
#[derive(Debug, Default)]
pub(crate) struct Routes(Mutex<HashMap<SocketAddr, Arc<SendQueue>>>);

impl Routes {
    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Arc<SendQueue>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Routes sends for `peer` to `queue`.
    pub(crate) fn insert(&self, peer: SocketAddr, queue: Arc<SendQueue>) {
        self.lock().insert(peer, queue);
    }

    /// Forgets `peer` if it still routes to `queue` (a newer connection from a reused address
    /// keeps its route).
    pub(crate) fn remove(&self, peer: SocketAddr, queue: &Arc<SendQueue>) {
        let mut routes = self.lock();
        if routes.get(&peer).is_some_and(|q| Arc::ptr_eq(q, queue)) {
            routes.remove(&peer);
        }
    }

    /// The queue for `peer`.
    pub(crate) fn get(&self, peer: &SocketAddr) -> Option<Arc<SendQueue>> {
        self.lock().get(peer).cloned()
    }
}

/// The socket (see the module documentation).
#[derive(Debug)]
pub(crate) struct ServerSocket {
    pub(super) routes: Arc<Routes>,
    pub(super) recv: RecvQueue,
    pub(super) local: SocketAddr,
    /// The accept task; its connections end with it.
    pub(super) acceptor: AbortHandle,
}

impl Drop for ServerSocket {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl AsyncUdpSocket for ServerSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> std::io::Result<()> {
        let Some(queue) = self.routes.get(&transmit.destination) else {
            return Ok(());
        };
        match encode_transmit(transmit) {
            Ok(records) => {
                // Full or closed: dropped, like a datagram on a congested or dead path.
                let _ = queue.try_push(records.freeze());
            }
            Err(e) => tracing::warn!(error = %e, "tcp tunnel: datagram dropped"),
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<std::io::Result<usize>> {
        self.recv.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn may_fragment(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct AlwaysWritable;

impl UdpPoller for AlwaysWritable {
    fn poll_writable(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
