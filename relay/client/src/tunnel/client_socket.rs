//! The client's tunnel socket: a [`quinn::AsyncUdpSocket`] over one TLS-over-TCP stream to the
//! relay. Sends go through a bounded queue to a writer task; when it is full, `try_send` says
//! `WouldBlock` and the connection's poller waits for room (backpressure, nothing dropped).
//! A reader task feeds received datagrams to the endpoint as coming from the relay's address.
//! When the stream ends or fails, [`TunnelEnded`] fires.

use super::config::MAX_RECORD_LEN;
use super::queue::{Push, SendQueue};
use super::record::{self, Decoder};
use super::recv::RecvQueue;
use super::stream_io::{self, ReadEnd};
use bytes::BytesMut;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// Datagrams waiting for the writer (at most `SEND_QUEUE * TUNNEL_MTU` bytes, 1 MiB).
pub(crate) const SEND_QUEUE: usize = 128;
/// Datagrams received but not yet taken by the endpoint.
pub(crate) const RECV_QUEUE: usize = 256;

/// How long the end waits for the endpoint to take the datagrams received before it.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Fires once the tunnel's TCP stream ended or failed (or the socket is gone).
#[derive(Debug, Clone)]
pub(crate) struct TunnelEnded(watch::Receiver<bool>);

impl TunnelEnded {
    /// Resolves once the stream is over.
    pub(crate) async fn wait(mut self) {
        // An error means the sender is gone: the socket was dropped, which also ends it.
        let _ = self.0.wait_for(|ended| *ended).await;
    }
}

/// The socket (see the module documentation).
#[derive(Debug)]
pub(crate) struct ClientSocket {
    queue: Arc<SendQueue>,
    recv: RecvQueue,
    local: SocketAddr,
    reader: AbortHandle,
}

impl ClientSocket {
    /// Starts the reader and writer tasks on `stream` (the outer TLS, established); datagrams
    /// received are reported as coming from `remote`.
    pub(crate) fn start<S>(stream: S, remote: SocketAddr) -> (Arc<Self>, TunnelEnded)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let (ended_tx, ended_rx) = watch::channel(false);
        let ended_tx = Arc::new(ended_tx);
        let queue = Arc::new(SendQueue::new(SEND_QUEUE));
        let (recv, inbound) = RecvQueue::new(RECV_QUEUE);
        let (q, ended) = (Arc::clone(&queue), Arc::clone(&ended_tx));
        tokio::spawn(async move {
            if let Err(e) = stream_io::write_records(write, q).await {
                tracing::debug!(error = %e, "tcp tunnel: write failed");
            }
            ended.send_replace(true);
        });
        let q = Arc::clone(&queue);
        let reader = tokio::spawn(async move {
            let taken = inbound.clone();
            let end =
                stream_io::read_records(read, Decoder::new(MAX_RECORD_LEN), remote, inbound, None)
                    .await;
            // What arrived before the end (a CONNECTION_CLOSE saying why, say) is taken by the
            // endpoint before the end is announced: once every slot is free, it all was.
            let _ =
                tokio::time::timeout(DRAIN_WAIT, taken.reserve_many(taken.max_capacity())).await;
            match end {
                ReadEnd::Eof | ReadEnd::EndpointGone => {
                    tracing::debug!(reason = %end, "tcp tunnel ended");
                }
                other => tracing::info!(reason = %other, "tcp tunnel broke"),
            }
            q.close();
            ended_tx.send_replace(true);
        })
        .abort_handle();
        let local = if remote.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = Arc::new(Self {
            queue,
            recv,
            local,
            reader,
        });
        (socket, TunnelEnded(ended_rx))
    }
}

impl Drop for ClientSocket {
    fn drop(&mut self) {
        // The writer sends what is queued (a CONNECTION_CLOSE, say), then ends the stream.
        self.queue.close();
        self.reader.abort();
    }
}

/// Encodes every datagram of `transmit` (one, or several of `segment_size`) as records.
pub(crate) fn encode_transmit(transmit: &Transmit<'_>) -> std::io::Result<BytesMut> {
    let mut out = BytesMut::new();
    let size = transmit
        .segment_size
        .unwrap_or(transmit.contents.len())
        .max(1);
    for datagram in transmit.contents.chunks(size) {
        record::encode(datagram, MAX_RECORD_LEN, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    Ok(out)
}

impl AsyncUdpSocket for ClientSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(RoomPoller(Arc::clone(&self.queue)))
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> std::io::Result<()> {
        let records = match encode_transmit(transmit) {
            Ok(r) => r,
            Err(e) => {
                // Only a datagram above the tunnel MTU, which the endpoint settings rule out;
                // an error here would stop the connection's driver, so it is dropped like UDP.
                tracing::warn!(error = %e, "tcp tunnel: datagram dropped");
                return Ok(());
            }
        };
        match self.queue.try_push(records.freeze()) {
            Push::Queued | Push::Closed => Ok(()),
            Push::Full => Err(std::io::ErrorKind::WouldBlock.into()),
        }
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

/// Writable when the send queue has room (or is closed: sends are then dropped).
#[derive(Debug)]
struct RoomPoller(Arc<SendQueue>);

impl UdpPoller for RoomPoller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_room(cx).map(Ok)
    }
}
