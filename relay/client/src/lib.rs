//! `cm-client`: the client side of the relay protocol, shared by `cm-agent` and `cm-tui`: dial
//! with a pinned key, then either authenticate (h1/h2) or log in, and talk framed JSON on
//! streams ([`framed`]). The relay server depends on this crate for the pieces both ends share
//! (framing, QUIC/TLS transport settings, the clock, the small helpers every binary uses), never
//! the other way round.

pub mod backoff;
mod call;
mod dial;
pub mod e2e;
pub mod finding;
pub mod framed;
mod hosts;
pub mod pipe;
pub mod proxy;
pub mod relay_addrs;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod signal;
pub mod task_end;
pub mod time;
pub mod tls;
pub mod toml_file;
pub mod transport;
pub mod tunnel;

pub use call::call;
pub use dial::{
    DIAL_ATTEMPT_TIMEOUT, Dialed, dial, dial_addr, dial_any, dial_endpoint, dial_quic, resolve,
    resolve_all, resolve_targets,
};
pub use hosts::{HostWatch, host_list};
pub use relay_addrs::{AddrError, DialTarget};

use crate::framed::{FramedRecv, StreamError, send_frame};
use crate::time::{now_ms, random32};
use crate::tls::TlsError;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{
    self, ClientHello, EXPORTER_LABEL, EXPORTER_LEN, HandshakeError, IssuedCredential, Key,
    LoginRequest, PeerKind, ServerHello,
};
use proto::header::StreamHeader;
use proto::ids::{ConnId, CredId};
use proto::message::{CloseReason, Reply};
use proto::wire_error::{ErrorCode, WireError};
use serde::{Serialize, de::DeserializeOwned};
use std::net::SocketAddr;
use std::time::Duration;

/// How long to wait for the relay to answer a handshake or login before giving up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why talking to the relay failed. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The relay string is not a `host:port` list.
    #[error(transparent)]
    Address(#[from] AddrError),
    /// The relay address does not resolve.
    #[error("cannot resolve relay address {addr}: {reason}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// Resolver explanation.
        reason: String,
    },
    /// Local socket or endpoint setup failed.
    #[error("cannot open a local UDP socket: {0}")]
    Socket(#[source] std::io::Error),
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The relay presented another key than the pinned one.
    #[error(
        "relay key pin mismatch: expected {expected}, the relay presented {presented}. \
         Someone may be intercepting the connection, or the relay was re-initialised; \
         get a fresh token from the relay's admin"
    )]
    PinMismatch {
        /// The pin we trust.
        expected: String,
        /// The pin the relay presented.
        presented: String,
    },
    /// The connection could not be established.
    #[error("cannot connect to relay {addr}: {reason}")]
    Connect {
        /// The relay address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection dropped.
    #[error("relay connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The relay's h2 did not verify: it does not hold our key.
    #[error("the relay failed to prove it knows this credential ({0}); check the relay address")]
    RelayProof(HandshakeError),
    /// The relay refused us with a typed error.
    #[error("{0}")]
    Refused(WireError),
    /// The relay answered with something else than expected.
    #[error("unexpected answer from the relay: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("the relay did not answer within {0:?}")]
    Timeout(Duration),
}

impl LinkError {
    /// Whether retrying with the same credential cannot help (auth refused, pin mismatch).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::PinMismatch { .. }
                | Self::RelayProof(_)
                | Self::Refused(WireError {
                    code: ErrorCode::AuthFailed | ErrorCode::LoginFailed,
                    ..
                })
        )
    }
}

/// Dial options.
#[derive(Debug, Clone)]
pub struct DialOptions {
    /// Transport idle timeout.
    pub idle_timeout: Duration,
    /// Which transports to use and how to choose between them.
    pub transport: transport::TransportOptions,
}

impl Default for DialOptions {
    fn default() -> Self {
        Self {
            idle_timeout: tls::DEFAULT_IDLE_TIMEOUT,
            transport: transport::TransportOptions::default(),
        }
    }
}

fn exporter(conn: &quinn::Connection) -> Result<[u8; EXPORTER_LEN], LinkError> {
    let mut out = [0u8; EXPORTER_LEN];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| LinkError::Protocol("TLS exporter unavailable".into()))?;
    Ok(out)
}

/// An authenticated connection with its control stream.
#[derive(Debug)]
pub struct Session {
    /// The QUIC connection.
    pub conn: quinn::Connection,
    /// The relay's id for it.
    pub conn_id: ConnId,
    /// Control stream, send half.
    pub control_send: quinn::SendStream,
    /// Control stream, receive half.
    pub control_recv: FramedRecv,
}

async fn with_timeout<T>(
    fut: impl std::future::Future<Output = Result<T, LinkError>>,
) -> Result<T, LinkError> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .map_err(|_| LinkError::Timeout(HANDSHAKE_TIMEOUT))?
}

/// Runs h1/h2 on a fresh connection.
///
/// # Errors
/// Refusal by the relay ([`LinkError::Refused`], generic on purpose), a relay that cannot prove
/// it holds the key ([`LinkError::RelayProof`]), or transport failures.
pub async fn authenticate(
    conn: quinn::Connection,
    kind: PeerKind,
    cred_id: &CredId,
    key: &Key,
) -> Result<Session, LinkError> {
    with_timeout(async {
        let exporter = exporter(&conn)?;
        let nonce = random32().map_err(|e| LinkError::Protocol(e.to_string()))?;
        let h1 = handshake::build_h1(key, kind, cred_id.clone(), nonce, now_ms(), &exporter);
        let (mut send, recv) = conn.open_bi().await?;
        let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
        send_frame(&mut send, &ClientHello::H1(h1.clone()), MAX_HEADER_LEN).await?;
        match recv.expect::<ServerHello>().await {
            Ok(ServerHello::H2(h2)) => {
                handshake::verify_h2(key, &h1, &h2, now_ms()).map_err(LinkError::RelayProof)?;
                recv.set_max_len(MAX_FRAME_LEN);
                Ok(Session {
                    conn: conn.clone(),
                    conn_id: h2.conn_id,
                    control_send: send,
                    control_recv: recv,
                })
            }
            Ok(ServerHello::Error(e)) => Err(LinkError::Refused(e)),
            Ok(ServerHello::LoginOk(_) | ServerHello::Time { .. }) => {
                Err(LinkError::Protocol("unexpected answer to h1".into()))
            }
            // The relay closes the connection right after an error frame; report the refusal.
            Err(StreamError::Closed) => Err(closed_reason(&conn)),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

fn closed_reason(conn: &quinn::Connection) -> LinkError {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(close))
            if CloseReason::from_code(close.error_code.into_inner()) == CloseReason::AuthFailed =>
        {
            LinkError::Refused(WireError::auth_failed())
        }
        Some(e) => LinkError::Connection(e),
        None => LinkError::Stream(StreamError::Closed),
    }
}

/// Exchanges an invite or password for a credential, on its own short connection.
///
/// # Errors
/// [`LinkError::Refused`] with `login_failed` when the relay says no.
pub async fn login(
    addr: &str,
    pin: &str,
    request: LoginRequest,
) -> Result<IssuedCredential, LinkError> {
    login_with(addr, pin, request, &DialOptions::default()).await
}

/// [`login`] dialled with `opts` (the client's transport settings: `transport`, `relay_tcp`,
/// `proxy`).
///
/// # Errors
/// As [`login`].
pub async fn login_with(
    addr: &str,
    pin: &str,
    request: LoginRequest,
    opts: &DialOptions,
) -> Result<IssuedCredential, LinkError> {
    let conn = dial(addr, pin, opts).await?;
    let result = with_timeout(async {
        let (mut send, recv) = conn.open_bi().await?;
        let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
        send_frame(&mut send, &ClientHello::Login(request), MAX_HEADER_LEN).await?;
        let _ = send.finish();
        match recv.expect::<ServerHello>().await? {
            ServerHello::LoginOk(cred) => Ok(cred),
            ServerHello::Error(e) => Err(LinkError::Refused(e)),
            ServerHello::H2(_) | ServerHello::Time { .. } => {
                Err(LinkError::Protocol("unexpected answer to login".into()))
            }
        }
    })
    .await;
    conn.close(CloseReason::Normal.code().into(), b"done");
    result
}

/// Opens a request stream, sends `header` (and `body` if any), and reads one reply.
///
/// # Errors
/// [`LinkError::Refused`] carries the typed error of a refused request.
pub async fn request<B: Serialize, T: DeserializeOwned>(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: Option<&B>,
) -> Result<T, LinkError> {
    let (mut send, recv) = conn.open_bi().await?;
    let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
    send_frame(&mut send, header, MAX_HEADER_LEN).await?;
    if let Some(body) = body {
        send_frame(&mut send, body, MAX_FRAME_LEN).await?;
    }
    let _ = send.finish();
    let reply: Reply<T> = recv.expect().await?;
    reply.into_result().map_err(LinkError::Refused)
}

/// Opens a subscription stream: sends `header` and returns the receive side for a stream of
/// frames.
///
/// # Errors
/// Transport failures.
pub async fn subscribe(
    conn: &quinn::Connection,
    header: &StreamHeader,
) -> Result<(quinn::SendStream, FramedRecv), LinkError> {
    let (mut send, recv) = conn.open_bi().await?;
    send_frame(&mut send, header, MAX_HEADER_LEN).await?;
    Ok((send, FramedRecv::new(recv, MAX_FRAME_LEN)))
}

/// Asks the relay's clock without authenticating: returns (relay clock − our clock) in ms,
/// measured at the midpoint of the round trip. Also proves the relay is reachable with the pin.
///
/// # Errors
/// Dial, pin or transport failures.
pub async fn clock_skew(addr: &str, pin: &str) -> Result<i64, LinkError> {
    let conn = dial(addr, pin, &DialOptions::default()).await?;
    skew_on(conn).await
}

/// [`clock_skew`] against one address of a relay list (`cm-agent doctor` checks each), dialled
/// with `opts` (`cm-relay doctor` asks for QUIC alone to check its UDP listener).
///
/// # Errors
/// Dial, pin or transport failures.
pub async fn clock_skew_at(
    remote: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<i64, LinkError> {
    let (_endpoint, conn) = dial_addr(remote, pin, opts).await?;
    skew_on(conn).await
}

async fn skew_on(conn: quinn::Connection) -> Result<i64, LinkError> {
    let result = with_timeout(async {
        let sent = now_ms();
        let (mut send, recv) = conn.open_bi().await?;
        let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
        send_frame(&mut send, &ClientHello::Time, MAX_HEADER_LEN).await?;
        let _ = send.finish();
        match recv.expect::<ServerHello>().await? {
            ServerHello::Time { ts_ms } => {
                let mid = sent + now_ms().saturating_sub(sent) / 2;
                Ok(i64::try_from(i128::from(ts_ms) - i128::from(mid)).unwrap_or(i64::MAX))
            }
            ServerHello::Error(e) => Err(LinkError::Refused(e)),
            ServerHello::H2(_) | ServerHello::LoginOk(_) => Err(LinkError::Protocol(
                "unexpected answer to a time request".into(),
            )),
        }
    })
    .await;
    conn.close(CloseReason::Normal.code().into(), b"done");
    result
}
