//! The relay's TCP listener: accepts connections, runs the outer TLS (bounded in time and in
//! how many run at once), then carries the connection's records between its TCP stream and
//! the tunnel socket ([`super::server_socket`]). A client that fails TLS, offers another ALPN
//! or sends something else than records is dropped quietly (a debug log line), without
//! affecting anyone else.

use super::TUNNEL_ALPN;
use super::config::{ListenerLimits, MAX_RECORD_LEN};
use super::per_address::{AddressPermit, PerAddress};
use super::queue::SendQueue;
use super::record::Decoder;
use super::server_socket::Routes;
use super::stream_io::{self, Inbound};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

/// How long a TCP client has to complete the outer TLS handshake.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Outer TLS handshakes running at once; connections beyond it are closed at once (an
/// unauthenticated flood cannot hold more than this many sockets and handshake states).
pub(crate) const MAX_PENDING_HANDSHAKES: usize = 256;
/// Of those, how many one address may run (see [`PerAddress`]).
pub(crate) const MAX_PENDING_HANDSHAKES_PER_ADDRESS: usize = 16;
/// TCP connections at once, whatever their state; one beyond it is closed at once (bounds the
/// file descriptors and queues the listener can be made to hold).
pub(crate) const MAX_CONNECTIONS: usize = 8192;
/// A tunnel silent this long is closed (a live QUIC connection sends keep-alives every few
/// seconds; this also ends a connection that completed TLS but never spoke QUIC).
pub(crate) const READ_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Datagrams waiting for one connection's writer (beyond: dropped, see the socket); at most
/// 1 MiB of 8 KiB packets.
pub(crate) const CONNECTION_SEND_QUEUE: usize = 128;
/// How long to pause after a failed `accept` (out of file descriptors) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts TCP connections on `listener` until the task is aborted (its connections end with
/// it).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    routes: Arc<Routes>,
    inbound: mpsc::Sender<Inbound>,
    limits: ListenerLimits,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let open = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = PerAddress::new(MAX_PENDING_HANDSHAKES_PER_ADDRESS);
    let open_per_address = PerAddress::new(limits.open_per_address);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(slot) = Arc::clone(&open).try_acquire_owned() else {
                        tracing::warn!(%peer, "tcp tunnel: {MAX_CONNECTIONS} connections open; connection dropped");
                        continue;
                    };
                    let Some(held) = open_per_address.try_acquire(peer.ip()) else {
                        tracing::debug!(%peer, limit = limits.open_per_address, "tcp tunnel: this address holds its limit of open connections (tcp_connections_per_address); connection dropped");
                        continue;
                    };
                    let Some(mine) = per_address.try_acquire(peer.ip()) else {
                        tracing::debug!(%peer, "tcp tunnel: too many TLS handshakes from this address; connection dropped");
                        continue;
                    };
                    let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                        tracing::debug!(%peer, "tcp tunnel: too many TLS handshakes in progress; connection dropped");
                        continue;
                    };
                    connections.spawn(serve(
                        tcp,
                        peer,
                        (slot, held, permit, mine),
                        tls.clone(),
                        Arc::clone(&routes),
                        inbound.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "tcp tunnel: accept failed");
                    // Not synchronisation: a pause so a persistent error (EMFILE) does not spin.
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One TCP connection: the outer TLS, then its records both ways until either side ends.
async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    (_slot, _held, handshake, mine): (
        OwnedSemaphorePermit,
        AddressPermit,
        OwnedSemaphorePermit,
        AddressPermit,
    ),
    tls: tokio_rustls::TlsAcceptor,
    routes: Arc<Routes>,
    inbound: mpsc::Sender<Inbound>,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "tcp tunnel: cannot set TCP_NODELAY");
    }
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "tcp tunnel: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "tcp tunnel: TLS handshake timed out");
            return;
        }
    };
    if stream.get_ref().1.alpn_protocol() != Some(TUNNEL_ALPN) {
        tracing::debug!(%peer, "tcp tunnel: the client did not ask for ALPN codemantle-tcp/1");
        return;
    }
    drop((handshake, mine));
    let queue = Arc::new(SendQueue::new(CONNECTION_SEND_QUEUE));
    routes.insert(peer, Arc::clone(&queue));
    tracing::debug!(%peer, "tcp tunnel connection open");
    let (read, write) = tokio::io::split(stream);
    let reader = stream_io::read_records(
        read,
        Decoder::new(MAX_RECORD_LEN),
        peer,
        inbound,
        Some(READ_IDLE_TIMEOUT),
    );
    tokio::select! {
        end = reader => tracing::debug!(%peer, reason = %end, "tcp tunnel connection closed"),
        result = stream_io::write_records(write, Arc::clone(&queue)) => {
            tracing::debug!(%peer, ?result, "tcp tunnel connection closed (write side)");
        }
    }
    routes.remove(peer, &queue);
    queue.close();
}
