//! The relay's TLS and QUIC server configuration. The settings both ends share (crypto
//! provider, transport limits, pins) and the client's pinned-key verifier live in
//! `cm_client::tls` and are re-exported here.

pub use cm_client::tls::{
    DEFAULT_IDLE_TIMEOUT, KEEP_ALIVE_INTERVAL, MAX_CONCURRENT_STREAMS, PinObservation,
    RELAY_SERVER_NAME, TlsError, client_config, pin_of_certificate, provider, transport_config,
};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use std::time::Duration;

/// A quinn server configuration for the relay's certificate chain and key.
///
/// # Errors
/// Fails if rustls refuses the key or certificate.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    idle_timeout: Duration,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![proto::ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport_config(idle_timeout)));
    // A client whose address changes (Wi-Fi to a hotspot) keeps its connection (issue #21).
    cfg.migration(true);
    Ok(cfg)
}

/// Bidirectional streams a client may open on the relay's listeners before it authenticated:
/// the hello stream, which an agent keeps as its control stream and never opens another.
/// quinn keeps a map entry for every stream the peer may open (see [`MAX_CONCURRENT_STREAMS`]),
/// about 11 KiB per connection at the shared limit (heaptrack, scenario 8), so an agent's
/// connection holds one; an operator's is raised to [`MAX_CONCURRENT_STREAMS`] when it
/// authenticates (`net::conn`).
pub const HELLO_STREAMS: u32 = 1;

/// The transport of the relay's client listeners (QUIC and the TCP path): `transport` with
/// [`HELLO_STREAMS`].
fn until_authenticated(mut transport: quinn::TransportConfig) -> Arc<quinn::TransportConfig> {
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(HELLO_STREAMS));
    Arc::new(transport)
}

/// The relay's QUIC listener: [`server_config`] whose clients may open only the hello stream
/// until they authenticate (see [`HELLO_STREAMS`]).
///
/// # Errors
/// As [`server_config`].
pub fn listener_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    idle_timeout: Duration,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut cfg = server_config(certs, key, idle_timeout)?;
    cfg.transport_config(until_authenticated(transport_config(idle_timeout)));
    Ok(cfg)
}

/// The outer TLS of the relay's TCP listener (issue #21): the same certificate and key as QUIC,
/// so clients check the same pin; TLS 1.3; ALPN `codemantle-tcp/1`.
///
/// # Errors
/// Fails if rustls refuses the key or certificate.
pub fn tunnel_tls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    tls.alpn_protocols = vec![cm_client::tunnel::TUNNEL_ALPN.to_vec()];
    Ok(Arc::new(tls))
}

/// The QUIC server configuration of the TCP listener's endpoint: `quic`'s (same crypto, same
/// migration rule) with the tunnel's transport settings (large packets, no MTU discovery) and,
/// as on [`listener_config`], only the hello stream until the client authenticated.
pub fn tunnel_server_config(
    quic: &quinn::ServerConfig,
    idle_timeout: Duration,
) -> quinn::ServerConfig {
    let mut cfg = quic.clone();
    cfg.transport_config(until_authenticated(
        cm_client::tunnel::config::transport_config(idle_timeout),
    ));
    cfg
}
