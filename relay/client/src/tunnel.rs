//! QUIC tunnelled in TLS 1.3 over TCP (issue #21). The outer TLS uses the relay's own key (the
//! same pin) and its own ALPN ([`TUNNEL_ALPN`]); inside it, each QUIC datagram travels as one
//! length-prefixed record. Both ends plug a [`quinn::AsyncUdpSocket`] of their own into a
//! normal quinn endpoint, so the QUIC connection, its TLS exporter and everything above it
//! are exactly those of the UDP path.

use crate::{DialOptions, LinkError};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// ALPN of the outer TLS on the relay's TCP listener.
pub const TUNNEL_ALPN: &[u8] = b"codemantle-tcp/1";

/// Opens a QUIC connection to the relay through `stream`, an established TCP connection to
/// its TCP listener (direct or through a proxy's CONNECT): outer TLS with the pinned key,
/// then QUIC inside. `remote` labels the relay's address (logs, errors). The connection is
/// closed as soon as the TCP stream ends, so the owner reconnects at once.
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
    let _ = (stream, pin, opts);
    Err(LinkError::Connect {
        addr: remote.to_string(),
        reason: "the TCP transport is not built yet".into(),
    })
}

/// The relay's TCP listener as a quinn socket: accepts TCP connections on `addr`, runs the
/// outer TLS with `tls` (its ALPN must be [`TUNNEL_ALPN`]), and hands every datagram to the
/// endpoint under the TCP peer's address. Returns the socket and the bound address.
///
/// # Errors
/// The address cannot be bound.
pub async fn bind_tunnel_listener(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(Arc<dyn quinn::AsyncUdpSocket>, SocketAddr)> {
    let _ = (addr, tls);
    Err(std::io::Error::other("the TCP transport is not built yet"))
}
