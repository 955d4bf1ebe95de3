//! The tunnel's outer TLS, client side: TLS 1.3 with ALPN [`TUNNEL_ALPN`], trusting exactly
//! the pinned relay key ([`PinVerifier`]); a different key is a [`LinkError::PinMismatch`],
//! as on QUIC.

use super::TUNNEL_ALPN;
use crate::LinkError;
use crate::tls::{self, PinObservation, RELAY_SERVER_NAME, TlsError};
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

/// A rustls client configuration for the outer TLS trusting only `pin`.
///
/// # Errors
/// rustls refuses the configuration.
pub(crate) fn client_config(
    pin: &str,
) -> Result<(Arc<rustls::ClientConfig>, PinObservation), TlsError> {
    let (cfg, seen) = tls::pinned_client_config(pin, TUNNEL_ALPN)?;
    Ok((Arc::new(cfg), seen))
}

/// Runs the outer TLS handshake on `stream` (bounded by `within`).
///
/// # Errors
/// [`LinkError::PinMismatch`] for another key; [`LinkError::Connect`] for a failed or slow
/// handshake or a server that does not speak the tunnel's ALPN.
pub(crate) async fn connect<S>(
    stream: S,
    remote: SocketAddr,
    pin: &str,
    within: Duration,
) -> Result<TlsStream<S>, LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (cfg, seen) = client_config(pin)?;
    let name = ServerName::try_from(RELAY_SERVER_NAME).map_err(|e| LinkError::Connect {
        addr: remote.to_string(),
        reason: e.to_string(),
    })?;
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let fail = |reason: String| LinkError::Connect {
        addr: remote.to_string(),
        reason,
    };
    let tls = match tokio::time::timeout(within, connector.connect(name, stream)).await {
        Err(_) => {
            return Err(fail(format!(
                "no TLS answer over TCP within {within:?} (is this the relay's TCP port, and does a firewall let it through?)"
            )));
        }
        Ok(Err(e)) => {
            if let Some(presented) = seen.presented().filter(|p| p != pin) {
                return Err(LinkError::PinMismatch {
                    expected: pin.to_owned(),
                    presented,
                });
            }
            return Err(fail(format!(
                "TLS over TCP failed: {e} (is this the relay's TCP port?)"
            )));
        }
        Ok(Ok(tls)) => tls,
    };
    if tls.get_ref().1.alpn_protocol() != Some(TUNNEL_ALPN) {
        return Err(fail(
            "the server does not speak the CodeMantle TCP tunnel (ALPN codemantle-tcp/1); is this the relay's TCP port?"
                .into(),
        ));
    }
    Ok(tls)
}
