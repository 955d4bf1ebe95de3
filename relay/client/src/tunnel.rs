//! QUIC tunnelled in TLS 1.3 over TCP (issue #21). The outer TLS uses the relay's own key (the
//! same pin) and its own ALPN ([`TUNNEL_ALPN`]); inside it, each QUIC datagram travels as one
//! length-prefixed record ([`record`]). Both ends plug a [`quinn::AsyncUdpSocket`] of their own
//! into a normal quinn endpoint, so the QUIC connection, its TLS exporter and everything above
//! it are exactly those of the UDP path.

mod accept;
mod client_socket;
pub mod config;
mod outer_tls;
mod per_address;
mod queue;
pub mod record;
mod recv;
mod server_socket;
mod stream_io;

use crate::tls::{self, PinObservation, RELAY_SERVER_NAME};
use crate::{DialOptions, LinkError};
use proto::message::CloseReason;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

use client_socket::TunnelEnded;

/// ALPN of the outer TLS on the relay's TCP listener.
pub const TUNNEL_ALPN: &[u8] = b"codemantle-tcp/1";

/// The reason a tunnelled connection is closed with when its TCP stream ends.
pub const TUNNEL_CLOSED_REASON: &[u8] = b"tcp tunnel closed";

/// Opens a QUIC connection to the relay through `stream`, an established TCP connection to
/// its TCP listener (direct or through a proxy's CONNECT): outer TLS with the pinned key,
/// then QUIC inside. `remote` labels the relay's address (logs, errors). The connection is
/// closed as soon as the TCP stream ends (locally, reason [`TUNNEL_CLOSED_REASON`]), so the
/// owner reconnects at once instead of waiting for the idle timeout.
///
/// # Errors
/// TLS or pin failures on the outer or inner handshake, or connection failures.
pub async fn dial_tunnel_over<S>(
    stream: S,
    remote: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = remote.to_string();
    let tls_stream = outer_tls::connect(stream, remote, pin, opts.idle_timeout).await?;
    let (socket, ended) = client_socket::ClientSocket::start(tls_stream, remote);
    let mut endpoint = quinn::Endpoint::new_with_abstract_socket(
        config::endpoint_config(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(LinkError::Socket)?;
    let (mut cfg, seen) = tls::client_config(pin, opts.idle_timeout)?;
    cfg.transport_config(Arc::new(config::transport_config(opts.idle_timeout)));
    endpoint.set_default_client_config(cfg);
    let connecting =
        endpoint
            .connect(remote, RELAY_SERVER_NAME)
            .map_err(|e| LinkError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    let conn = tokio::select! {
        result = connecting => result.map_err(|e| classify(&addr, pin, &seen, e))?,
        () = ended.clone().wait() => {
            return Err(LinkError::Connect {
                addr,
                reason: "the TCP connection ended during the QUIC handshake".into(),
            });
        }
    };
    close_when_tunnel_ends(endpoint.clone(), ended);
    Ok((endpoint, conn))
}

/// How long a connection whose tunnel ended may take to act on what came before the end
/// (the relay's CONNECTION_CLOSE, whose reason the owner should see) before it is closed here.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// Closes `endpoint`'s connections (it has one) once the tunnel ends, after [`CLOSE_GRACE`]
/// unless it is idle sooner; gives up waiting once the endpoint has none left, so nothing
/// outlives the connection.
fn close_when_tunnel_ends(endpoint: quinn::Endpoint, ended: TunnelEnded) {
    tokio::spawn(async move {
        tokio::select! {
            () = ended.wait() => {
                // The endpoint took every datagram received before the end (see
                // `ClientSocket`); its connection needs a moment to apply them.
                let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
                tracing::info!("tcp tunnel closed: closing the connection so it is re-established");
                endpoint.close(CloseReason::Normal.code().into(), TUNNEL_CLOSED_REASON);
            }
            () = endpoint.wait_idle() => {}
        }
    });
}

fn classify(addr: &str, pin: &str, seen: &PinObservation, e: quinn::ConnectionError) -> LinkError {
    if let Some(presented) = seen.presented().filter(|p| p != pin) {
        return LinkError::PinMismatch {
            expected: pin.to_owned(),
            presented,
        };
    }
    LinkError::Connect {
        addr: addr.to_owned(),
        reason: match e {
            quinn::ConnectionError::TimedOut => {
                "no QUIC answer inside the TCP tunnel (is the relay's TCP listener a CodeMantle relay?)".to_owned()
            }
            other => other.to_string(),
        },
    }
}

/// Connects to the relay's TCP listener at `addr` directly and opens a QUIC connection
/// through it ([`dial_tunnel_over`]).
///
/// # Errors
/// An unreachable address, or as [`dial_tunnel_over`].
pub async fn dial_tcp_direct(
    addr: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    let tcp = connect_tcp(addr, opts.idle_timeout).await?;
    dial_tunnel_over(tcp, addr, pin, opts).await
}

/// A TCP connection to `addr` within `within`, Nagle off.
///
/// # Errors
/// No answer in time, or the connect failed.
pub async fn connect_tcp(
    addr: SocketAddr,
    within: Duration,
) -> Result<tokio::net::TcpStream, LinkError> {
    let fail = |reason: String| LinkError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let tcp = tokio::time::timeout(within, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| fail(format!("no TCP answer within {within:?}")))?
        .map_err(|e| fail(format!("TCP: {e}")))?;
    // Small QUIC packets (ACKs, keep-alives) must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Checks that the relay's TCP listener at `addr` answers the outer TLS with the key `pin`
/// (`cm-relay doctor`), within `within`.
///
/// # Errors
/// An unreachable address, a TLS failure, or [`LinkError::PinMismatch`].
pub async fn check_tcp_listener(
    addr: SocketAddr,
    pin: &str,
    within: Duration,
) -> Result<(), LinkError> {
    let tcp = connect_tcp(addr, within).await?;
    let mut tls = outer_tls::connect(tcp, addr, pin, within).await?;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
    Ok(())
}

/// The relay's TCP listener as a quinn socket: accepts TCP connections on `addr`, runs the
/// outer TLS with `tls` (its ALPN must be [`TUNNEL_ALPN`]), and hands every datagram to the
/// endpoint under the TCP peer's address, within `limits`. Returns the socket and the bound
/// address. Use it with [`config::endpoint_config`] and a server configuration whose transport
/// is [`config::transport_config`].
///
/// # Errors
/// The address cannot be bound.
pub async fn bind_tunnel_listener(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    limits: config::ListenerLimits,
) -> std::io::Result<(Arc<dyn quinn::AsyncUdpSocket>, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let routes = Arc::new(server_socket::Routes::default());
    let (recv, inbound) = recv::RecvQueue::new(RECV_QUEUE);
    let acceptor = tokio::spawn(accept::accept_loop(
        listener,
        tokio_rustls::TlsAcceptor::from(tls),
        Arc::clone(&routes),
        inbound,
        limits,
    ))
    .abort_handle();
    let socket = server_socket::ServerSocket {
        routes,
        recv,
        local,
        acceptor,
    };
    Ok((Arc::new(socket), local))
}

/// Datagrams received on the relay's listener and not yet taken by its endpoint.
const RECV_QUEUE: usize = 1024;

#[cfg(test)]
mod tests;
