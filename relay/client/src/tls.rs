//! TLS and QUIC settings both ends share (ring as the one crypto provider, TLS 1.3 only, ALPN
//! `codemantle/1`, the transport limits), and the client's configuration: a verifier that
//! accepts exactly the pinned relay key (like SSH host keys) instead of a CA chain. The relay's
//! server configuration is in `cm_relay::tls`.

use proto::token::pin_from_spki;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server name clients put in SNI; the relay certificate carries it as a SAN. With pinning
/// the name carries no trust, it only has to be well-formed.
pub const RELAY_SERVER_NAME: &str = "codemantle-relay";

/// How often an idle connection sends a QUIC keep-alive (well below the idle timeout).
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// Transport idle timeout default: a peer silent this long is gone (design: detect within 10 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent bidirectional streams a peer may open on one connection (every open watch of
/// every operator holds one on the agent's connection). quinn keeps about 80 bytes per allowed
/// stream on every connection (measured by cm-bench: 1,024 made a connection 124 KiB, 256 made
/// it 64 KiB), so this stays small; a request beyond it waits 5 s and is refused as
/// `unavailable`.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// Errors building TLS configurations.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rustls refused the configuration (bad key, unsupported version).
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// quinn refused the rustls configuration.
    #[error("quic crypto configuration: {0}")]
    Quic(String),
    /// The certificate is not parseable.
    #[error("certificate is not valid DER: {0}")]
    BadCertificate(String),
}

/// The one crypto provider used everywhere (ring; see docs/architecture.md).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The pin of a DER certificate: BLAKE3 of its SubjectPublicKeyInfo.
///
/// # Errors
/// Fails if the certificate cannot be parsed.
pub fn pin_of_certificate(cert: &CertificateDer<'_>) -> Result<String, TlsError> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| TlsError::BadCertificate(format!("{e:?}")))?;
    Ok(pin_from_spki(ee.subject_public_key_info().as_ref()))
}

/// Transport settings shared by both ends.
pub fn transport_config(idle_timeout: Duration) -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    // Every forwarded request and every watch is its own stream on the agent's connection;
    // quinn's default of 100 made the 101st concurrent one wait (measured by cm-bench).
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(MAX_CONCURRENT_STREAMS));
    // Nothing opens unidirectional streams; quinn's default of 100 kept a map entry for each
    // on every connection (and pushed the receive map to the next size, about 6 KiB).
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    t.keep_alive_interval(Some(KEEP_ALIVE_INTERVAL.min(idle_timeout / 3)));
    // An idle timeout above quinn's VarInt range cannot be configured; fall back to quinn's default.
    if let Ok(idle) = quinn::IdleTimeout::try_from(idle_timeout) {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// What the pin verifier saw, so a mismatch can be reported precisely (TLS errors lose detail
/// on their way through QUIC).
#[derive(Debug, Default, Clone)]
pub struct PinObservation(Arc<Mutex<Option<String>>>);

impl PinObservation {
    /// The pin the relay presented, if a certificate was seen.
    pub fn presented(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

/// Accepts exactly the certificate whose public key matches the pin; still checks the
/// handshake signatures so the peer must hold the private key. Clients dial the relay with it,
/// and relays dial each other with it (the peer's registered pin).
#[derive(Debug)]
pub struct PinVerifier {
    pin: String,
    algorithms: WebPkiSupportedAlgorithms,
    seen: PinObservation,
}

impl PinVerifier {
    /// A verifier for `pin` with `provider`'s signature algorithms; what it saw goes to `seen`.
    pub fn new(pin: &str, provider: &rustls::crypto::CryptoProvider, seen: PinObservation) -> Self {
        Self {
            pin: pin.to_owned(),
            algorithms: provider.signature_verification_algorithms,
            seen,
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented =
            pin_of_certificate(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        if let Ok(mut g) = self.seen.0.lock() {
            *g = Some(presented.clone());
        }
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "relay key pin mismatch: expected {}, relay presented {presented}",
                self.pin
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

/// A rustls client configuration (TLS 1.3, ALPN `alpn`) that trusts only the relay key with
/// `pin`, and what the relay presented: QUIC's and the TCP tunnel's outer TLS share it.
///
/// # Errors
/// Fails if rustls refuses the configuration.
pub fn pinned_client_config(
    pin: &str,
    alpn: &[u8],
) -> Result<(rustls::ClientConfig, PinObservation), TlsError> {
    let provider = provider();
    let seen = PinObservation::default();
    let verifier = PinVerifier::new(pin, &provider, seen.clone());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    Ok((tls, seen))
}

/// A quinn client configuration that trusts only the relay key with `pin`.
///
/// # Errors
/// Fails if rustls refuses the configuration.
pub fn client_config(
    pin: &str,
    idle_timeout: Duration,
) -> Result<(quinn::ClientConfig, PinObservation), TlsError> {
    let (tls, seen) = pinned_client_config(pin, proto::ALPN)?;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport_config(idle_timeout)));
    Ok((cfg, seen))
}
