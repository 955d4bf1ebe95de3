//! QUIC endpoints for the bench: the relay's own TLS and transport settings
//! (`cm_relay::tls::{server_config, client_config}`) and the relay's 4 MiB UDP buffers, on
//! every socket, so the baseline differs from the relayed path only by the relay.

use anyhow::{Context, Result};
use cm_relay::config::UDP_BUFFER_BYTES;
use cm_relay::tls::{self, DEFAULT_IDLE_TIMEOUT, RELAY_SERVER_NAME};
use quinn::udp::UdpSocketState;
use std::net::SocketAddr;
use std::sync::Arc;

/// A UDP socket on 127.0.0.1 with an OS-chosen port and the relay's buffer sizes.
fn socket() -> Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket")?;
    let state = UdpSocketState::new((&socket).into())?;
    state.set_send_buffer_size((&socket).into(), UDP_BUFFER_BYTES)?;
    state.set_recv_buffer_size((&socket).into(), UDP_BUFFER_BYTES)?;
    Ok(socket)
}

fn endpoint(server: Option<quinn::ServerConfig>) -> Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket()?,
        Arc::new(quinn::TokioRuntime),
    )
    .context("creating a QUIC endpoint")
}

/// A client endpoint that trusts the key with `pin`. Call inside the runtime that will drive it.
///
/// # Errors
/// Socket or TLS setup failures.
pub fn client_endpoint(pin: &str) -> Result<quinn::Endpoint> {
    let mut ep = endpoint(None)?;
    let (cfg, _) = tls::client_config(pin, DEFAULT_IDLE_TIMEOUT)?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}

/// A server endpoint with the relay's TLS settings for `dir`'s certificate.
///
/// # Errors
/// Missing TLS material or socket failures.
pub fn server_endpoint(dir: &cm_relay::state::StateDir) -> Result<quinn::Endpoint> {
    let (certs, key, _) = dir.load_tls()?;
    endpoint(Some(tls::server_config(certs, key, DEFAULT_IDLE_TIMEOUT)?))
}

/// Opens a QUIC connection (TLS handshake included).
///
/// # Errors
/// The handshake fails.
pub async fn connect(ep: &quinn::Endpoint, addr: SocketAddr) -> Result<quinn::Connection> {
    Ok(ep.connect(addr, RELAY_SERVER_NAME)?.await?)
}
