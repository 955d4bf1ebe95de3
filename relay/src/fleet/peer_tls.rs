//! TLS of the relay-to-relay endpoint: mutual, pinned, ALPN [`PEER_ALPN`]. Each side presents
//! its peer identity (`fleet::identity`). The accepting relay takes a client certificate only
//! if its pin is one of the registered, not retired peers' pins, read from the
//! [`PeerDirectory`] during each handshake (a retired relay is refused at its next
//! connection); the dialling relay accepts the server only with the pin registered for the
//! relay it dialled. Certificate names and chains carry no trust; the pins do.

use super::directory::PeerDirectory;
use crate::tls::{self, TlsError};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;

/// The ALPN of relay-to-relay connections (operators and agents use `codemantle/1`, so neither
/// can open a peer connection, nor a peer an operator one).
pub const PEER_ALPN: &[u8] = b"cm-peer/1";

/// Streams one peer connection carries at once: every operator stream from this relay to the
/// peer's agents shares it (each agent connection still allows only
/// [`tls::MAX_CONCURRENT_STREAMS`]). quinn keeps about 80 bytes per allowed stream, and a
/// relay has one connection per peer each way.
pub const PEER_MAX_STREAMS: u32 = 4096;

/// Idle timeout of peer connections (keep-alives every second): a peer that vanished without
/// closing (killed, cut off) is noticed within this, and its streams fail over to the next
/// relay, instead of waiting for the operators' longer timeout.
pub const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

/// The transport settings of peer connections: the shared ones, with more streams.
fn transport(idle_timeout: Duration) -> Arc<quinn::TransportConfig> {
    let mut transport = tls::transport_config(idle_timeout);
    transport.max_concurrent_bidi_streams(quinn::VarInt::from_u32(PEER_MAX_STREAMS));
    Arc::new(transport)
}

/// This relay's peer identity: what it presents to peers, both ways.
#[derive(Debug)]
pub struct PeerIdentity {
    /// Its certificate chain (`peer.crt`).
    pub certs: Vec<CertificateDer<'static>>,
    /// Its key (`peer.key`).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for PeerIdentity {
    fn clone(&self) -> Self {
        Self {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// The pin a certificate presents, or a TLS error naming why it has none.
fn presented_pin(cert: &CertificateDer<'_>) -> Result<String, rustls::Error> {
    tls::pin_of_certificate(cert).map_err(|e| rustls::Error::General(e.to_string()))
}

/// Accepts a client certificate only if its pin is a registered peer's, now.
#[derive(Debug)]
struct RegisteredPeers {
    directory: Arc<dyn PeerDirectory>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RegisteredPeers {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let pin = presented_pin(end_entity)?;
        if self.directory.peers().iter().any(|p| p.peer_pin == pin) {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(%pin, "refused a peer connection: its pin is not a registered relay's");
            Err(rustls::Error::General(format!(
                "relay peer pin {pin} is not registered (or is retired): `cm-relay cluster add` \
                 registers a relay"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The quinn server configuration of the peer endpoint.
///
/// # Errors
/// rustls refuses the key or certificate.
pub fn server_config(
    identity: PeerIdentity,
    directory: Arc<dyn PeerDirectory>,
    idle_timeout: Duration,
) -> Result<quinn::ServerConfig, TlsError> {
    let provider = tls::provider();
    let verifier = RegisteredPeers {
        directory,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.certs, identity.key)?;
    config.alpn_protocols = vec![PEER_ALPN.to_vec()];
    config.max_early_data_size = 0;
    // Each handshake reads the directory anew: no resumption of a session a retired relay
    // could present.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    let crypto = QuicServerConfig::try_from(config).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport(idle_timeout));
    Ok(server)
}

/// The quinn client configuration for dialling the peer whose registered pin is `pin`.
///
/// # Errors
/// rustls refuses the key or certificate.
pub fn client_config(
    identity: PeerIdentity,
    pin: &str,
    idle_timeout: Duration,
) -> Result<quinn::ClientConfig, TlsError> {
    let provider = tls::provider();
    // The same pin check clients make of the relay, with the peer's registered pin.
    let verifier = cm_client::tls::PinVerifier::new(pin, &provider, Default::default());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.certs, identity.key)?;
    config.alpn_protocols = vec![PEER_ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    let crypto = QuicClientConfig::try_from(config).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport(idle_timeout));
    Ok(client)
}

/// The pin of the certificate a peer connection presented (the relay it is, by its identity).
pub fn pin_of_connection(conn: &quinn::Connection) -> Option<String> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    tls::pin_of_certificate(certs.first()?).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fleet::directory::{PeerInfo, RelayId};
    use parking_lot::Mutex;
    use proto::ids::HostId;
    use std::collections::HashMap;
    use std::net::SocketAddr;

    /// A fixed table of peers, changeable by tests (retire a relay, move a host).
    #[derive(Debug)]
    pub(crate) struct FixedDirectory {
        pub(crate) local: RelayId,
        pub(crate) peers: Mutex<Vec<PeerInfo>>,
        pub(crate) holding: Mutex<HashMap<HostId, Vec<RelayId>>>,
        pub(crate) unreachable: Mutex<Vec<RelayId>>,
    }

    impl FixedDirectory {
        pub(crate) fn new(local: &str) -> Self {
            Self {
                local: RelayId::from(local),
                peers: Mutex::default(),
                holding: Mutex::default(),
                unreachable: Mutex::default(),
            }
        }
    }

    impl PeerDirectory for FixedDirectory {
        fn local_id(&self) -> &RelayId {
            &self.local
        }
        fn relays_holding(&self, host: &HostId) -> Vec<RelayId> {
            self.holding.lock().get(host).cloned().unwrap_or_default()
        }
        fn peer(&self, id: &RelayId) -> Option<PeerInfo> {
            self.peers.lock().iter().find(|p| &p.id == id).cloned()
        }
        fn peers(&self) -> Vec<PeerInfo> {
            self.peers.lock().clone()
        }
        fn unreachable(&self, id: &RelayId) {
            self.unreachable.lock().push(id.clone());
        }
    }

    /// A fresh peer identity and its pin.
    pub(crate) fn identity() -> (PeerIdentity, String) {
        let certified = rcgen::generate_simple_self_signed(vec![
            crate::fleet::identity::PEER_SERVER_NAME.to_owned(),
        ])
        .unwrap();
        let cert = certified.cert.der().clone();
        let pin = tls::pin_of_certificate(&cert).unwrap();
        let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der()).unwrap();
        (
            PeerIdentity {
                certs: vec![cert],
                key,
            },
            pin,
        )
    }

    pub(crate) fn info(id: &str, addr: SocketAddr, pin: &str) -> PeerInfo {
        PeerInfo {
            id: RelayId::from(id),
            peer_addr: addr.to_string(),
            peer_pin: pin.to_owned(),
        }
    }

    pub(crate) const IDLE: Duration = PEER_IDLE_TIMEOUT;

    fn server(identity: PeerIdentity, directory: Arc<FixedDirectory>) -> quinn::Endpoint {
        let config = server_config(identity, directory, IDLE).unwrap();
        quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap()
    }

    /// One handshake of `identity` (expecting the server's `pin`) with `server`: what the
    /// client and the server each made of it.
    pub(crate) async fn handshake(
        server: &quinn::Endpoint,
        identity: PeerIdentity,
        pin: &str,
    ) -> (
        Result<quinn::Connection, quinn::ConnectionError>,
        Result<quinn::Connection, quinn::ConnectionError>,
    ) {
        let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        client.set_default_client_config(client_config(identity, pin, IDLE).unwrap());
        let connecting = client
            .connect(
                server.local_addr().unwrap(),
                crate::fleet::identity::PEER_SERVER_NAME,
            )
            .unwrap();
        let accepting = async { server.accept().await.expect("endpoint open").await };
        tokio::join!(connecting, accepting)
    }

    fn directory_with(peers: Vec<PeerInfo>) -> Arc<FixedDirectory> {
        let directory = FixedDirectory::new("b");
        *directory.peers.lock() = peers;
        Arc::new(directory)
    }

    #[tokio::test]
    async fn registered_peers_connect_both_ways_pinned() {
        let (a, a_pin) = identity();
        let (b, b_pin) = identity();
        let dir = directory_with(Vec::new());
        let endpoint = server(b, Arc::clone(&dir));
        dir.peers
            .lock()
            .push(info("a", endpoint.local_addr().unwrap(), &a_pin));
        let (client, server) = handshake(&endpoint, a, &b_pin).await;
        let (client, server) = (client.expect("registered"), server.expect("registered"));
        assert_eq!(pin_of_connection(&client).as_deref(), Some(b_pin.as_str()));
        assert_eq!(pin_of_connection(&server).as_deref(), Some(a_pin.as_str()));
    }

    #[tokio::test]
    async fn a_relay_whose_pin_is_not_registered_is_refused() {
        let (a, _a_pin) = identity();
        let (b, b_pin) = identity();
        let (_other, other_pin) = identity();
        let dir = directory_with(Vec::new());
        let endpoint = server(b, Arc::clone(&dir));
        dir.peers
            .lock()
            .push(info("other", endpoint.local_addr().unwrap(), &other_pin));
        let (_, server) = handshake(&endpoint, a, &b_pin).await;
        assert!(server.is_err(), "an unregistered relay was accepted");
    }

    #[tokio::test]
    async fn a_server_presenting_another_pin_is_refused() {
        let (a, a_pin) = identity();
        let (b, _b_pin) = identity();
        let (_other, other_pin) = identity();
        let dir = directory_with(Vec::new());
        let endpoint = server(b, Arc::clone(&dir));
        dir.peers
            .lock()
            .push(info("a", endpoint.local_addr().unwrap(), &a_pin));
        let (client, _) = handshake(&endpoint, a, &other_pin).await;
        assert!(client.is_err(), "a server with another pin was accepted");
    }
}
