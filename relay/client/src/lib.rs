//! `cm-client`: the client side of the relay protocol, shared by `cm-agent` and `cm-tui`: dial
//! with a pinned key, then either authenticate (h1/h2) or log in, and talk framed JSON on
//! streams ([`framed`]). The relay server depends on this crate for the pieces both ends share
//! (framing, QUIC/TLS transport settings, the clock, the small helpers every binary uses), never
//! the other way round.

pub mod backoff;
mod call;
pub mod finding;
pub mod framed;
mod hosts;
pub mod pipe;
pub mod relay_addrs;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod signal;
pub mod task_end;
pub mod time;
pub mod tls;
pub mod toml_file;

pub use call::call;
pub use hosts::{HostWatch, host_list};
pub use relay_addrs::AddrError;

use crate::framed::{FramedRecv, StreamError, send_frame};
use crate::time::{now_ms, random32};
use crate::tls::{PinObservation, RELAY_SERVER_NAME, TlsError};
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
}

impl Default for DialOptions {
    fn default() -> Self {
        Self {
            idle_timeout: tls::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// With several relay addresses, how long one may take to answer before the next is tried (a
/// stopped relay does not answer at all; its QUIC handshake would wait for the idle timeout).
pub const DIAL_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves the first address of `relay` (see [`resolve_all`]).
///
/// # Errors
/// As [`resolve_all`].
pub async fn resolve(relay: &str) -> Result<SocketAddr, LinkError> {
    let all = resolve_all(relay).await?;
    all.first().copied().ok_or_else(|| LinkError::Resolve {
        addr: relay.to_owned(),
        reason: "no addresses".into(),
    })
}

/// Every address of `relay`, in order, without duplicates: `relay` is one `host:port` or a
/// comma-separated list ([`relay_addrs::parse_relay_list`]); IP literals need no DNS, and a
/// name contributes every address it resolves to. An entry that does not resolve is skipped
/// while another one does (a fleet stays reachable when one of its names is gone).
///
/// # Errors
/// [`LinkError::Address`] for a malformed string; [`LinkError::Resolve`] when no entry resolves.
pub async fn resolve_all(relay: &str) -> Result<Vec<SocketAddr>, LinkError> {
    let entries = relay_addrs::parse_relay_list(relay)?;
    let mut out = Vec::new();
    let mut failure = None;
    for entry in entries {
        if let Some(addr) = entry.literal {
            relay_addrs::push_distinct(&mut out, [addr]);
            continue;
        }
        let found = tokio::net::lookup_host(entry.text.as_str()).await;
        match found {
            Ok(found) => relay_addrs::push_distinct(&mut out, found),
            Err(e) => {
                failure.get_or_insert(LinkError::Resolve {
                    addr: entry.text.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if out.is_empty() {
        return Err(failure.unwrap_or_else(|| LinkError::Resolve {
            addr: relay.to_owned(),
            reason: "no addresses".into(),
        }));
    }
    Ok(out)
}

/// Opens a QUIC connection to the relay at `addr`, accepting only the key with `pin`. `addr`
/// may list several relays ([`resolve_all`]): they are tried in order ([`dial_any`]).
///
/// # Errors
/// Resolution, socket, TLS or pin failures, each with its own variant.
pub async fn dial(
    addr: &str,
    pin: &str,
    opts: &DialOptions,
) -> Result<quinn::Connection, LinkError> {
    dial_endpoint(addr, pin, opts).await.map(|(_, conn)| conn)
}

/// [`dial`], also returning the endpoint, for a caller that must know its close reached the
/// relay before the process exits (`Endpoint::wait_idle` after `Connection::close`).
///
/// # Errors
/// As [`dial`].
pub async fn dial_endpoint(
    addr: &str,
    pin: &str,
    opts: &DialOptions,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    let addrs = resolve_all(addr).await?;
    dial_any(&addrs, 0, pin, opts)
        .await
        .map(|d| (d.endpoint, d.conn))
}

/// A connection [`dial_any`] made, and which address answered.
#[derive(Debug)]
pub struct Dialed {
    /// Index of the answering address in the list given.
    pub index: usize,
    /// The answering address.
    pub addr: SocketAddr,
    /// The local endpoint.
    pub endpoint: quinn::Endpoint,
    /// The connection.
    pub conn: quinn::Connection,
}

/// Dials `addrs` in order from `start` (wrapping around), each for at most
/// [`DIAL_ATTEMPT_TIMEOUT`] when there are several, and returns the first that answers with
/// the pinned key. A pin mismatch stops at once: that relay is not ours, or someone is in the
/// way, and trying the next address would hide it.
///
/// # Errors
/// The pin mismatch; else, when none answered, the one failure (one address) or a
/// [`LinkError::Connect`] naming every address and why it failed.
pub async fn dial_any(
    addrs: &[SocketAddr],
    start: usize,
    pin: &str,
    opts: &DialOptions,
) -> Result<Dialed, LinkError> {
    let n = addrs.len();
    let mut failures: Vec<(SocketAddr, LinkError)> = Vec::new();
    for step in 0..n {
        let index = (start + step) % n;
        let addr = addrs[index];
        let attempt = dial_addr(addr, pin, opts);
        let result = if n > 1 {
            let bound = DIAL_ATTEMPT_TIMEOUT.min(opts.idle_timeout);
            tokio::time::timeout(bound, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(LinkError::Connect {
                        addr: addr.to_string(),
                        reason: format!("no answer within {bound:?}"),
                    })
                })
        } else {
            attempt.await
        };
        match result {
            Ok((endpoint, conn)) => {
                return Ok(Dialed {
                    index,
                    addr,
                    endpoint,
                    conn,
                });
            }
            Err(e @ LinkError::PinMismatch { .. }) => return Err(e),
            Err(e) => failures.push((addr, e)),
        }
    }
    if failures.len() == 1
        && let Some((_, e)) = failures.pop()
    {
        return Err(e);
    }
    Err(LinkError::Connect {
        addr: addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        reason: if failures.is_empty() {
            "no relay address to dial".into()
        } else {
            failures
                .iter()
                .map(|(a, e)| format!("{a}: {e}"))
                .collect::<Vec<_>>()
                .join("; ")
        },
    })
}

/// Opens a QUIC connection to the relay at the socket address `remote`.
///
/// # Errors
/// Socket, TLS, pin or connection failures.
pub async fn dial_addr(
    remote: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    let addr = remote.to_string();
    let bind: SocketAddr = if remote.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(LinkError::Socket)?;
    let (cfg, seen) = tls::client_config(pin, opts.idle_timeout)?;
    endpoint.set_default_client_config(cfg);
    let connecting =
        endpoint
            .connect(remote, RELAY_SERVER_NAME)
            .map_err(|e| LinkError::Connect {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
    match connecting.await {
        Ok(conn) => Ok((endpoint, conn)),
        Err(e) => Err(classify_connect_error(&addr, pin, &seen, e)),
    }
}

fn classify_connect_error(
    addr: &str,
    pin: &str,
    seen: &PinObservation,
    e: quinn::ConnectionError,
) -> LinkError {
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
                "no answer (is the relay running, and is its UDP port open?)".to_owned()
            }
            other => other.to_string(),
        },
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
    let conn = dial(addr, pin, &DialOptions::default()).await?;
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

/// [`clock_skew`] against one address of a relay list (`cm-agent doctor` checks each).
///
/// # Errors
/// Dial, pin or transport failures.
pub async fn clock_skew_at(remote: SocketAddr, pin: &str) -> Result<i64, LinkError> {
    let (_endpoint, conn) = dial_addr(remote, pin, &DialOptions::default()).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_comma_list_of_literals_resolves_in_order_without_duplicates() {
        let all = resolve_all("127.0.0.1:2, 127.0.0.1:1,127.0.0.1:2,[::1]:3")
            .await
            .unwrap();
        assert_eq!(
            all,
            vec![addr("127.0.0.1:2"), addr("127.0.0.1:1"), addr("[::1]:3")]
        );
        assert_eq!(
            resolve("127.0.0.1:9,127.0.0.1:8").await.unwrap(),
            addr("127.0.0.1:9")
        );
    }

    #[tokio::test]
    async fn a_name_contributes_every_address_it_resolves_to() {
        let all = resolve_all("localhost:7443").await.unwrap();
        assert!(!all.is_empty());
        assert!(
            all.iter().all(|a| a.ip().is_loopback() && a.port() == 7443),
            "{all:?}"
        );
    }

    #[tokio::test]
    async fn an_unresolvable_entry_is_skipped_while_another_resolves() {
        let all = resolve_all("no-such-relay.invalid:7443,127.0.0.1:5")
            .await
            .unwrap();
        assert_eq!(all, vec![addr("127.0.0.1:5")]);
        let err = resolve_all("no-such-relay.invalid:7443").await.unwrap_err();
        assert!(
            matches!(&err, LinkError::Resolve { addr, .. } if addr == "no-such-relay.invalid:7443"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_malformed_list_is_refused_before_any_lookup() {
        let err = resolve_all("127.0.0.1:1,,127.0.0.1:2").await.unwrap_err();
        assert!(
            matches!(err, LinkError::Address(AddrError::EmptyEntry { .. })),
            "{err}"
        );
        let err = dial("relay.example.com", "blake3:00", &DialOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("has no port; write host:port"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dialing_nothing_says_so() {
        let err = dial_any(&[], 0, "blake3:00", &DialOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no relay address to dial"),
            "{err}"
        );
    }
}
