//! Dialing the relay: a relay string resolved into its ordered addresses ([`resolve_all`]),
//! tried in order ([`dial_any`]) with the pinned key; a pin mismatch is told apart from an
//! unreachable relay.

use crate::relay_addrs::{self, DialTarget};
use crate::tls::{self, PinObservation, RELAY_SERVER_NAME};
use crate::{DialOptions, LinkError};
use std::net::SocketAddr;
use std::time::Duration;

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

/// Every address of `relay`, in order, without duplicates (see [`resolve_targets`]).
///
/// # Errors
/// As [`resolve_targets`].
pub async fn resolve_all(relay: &str) -> Result<Vec<SocketAddr>, LinkError> {
    Ok(resolve_targets(relay)
        .await?
        .into_iter()
        .map(|t| t.addr)
        .collect())
}

/// Every address of `relay`, in order, without duplicates, each with the host name it was
/// configured by (the TCP path's proxy decision and CONNECT use the name): `relay` is one
/// `host:port` or a comma-separated list ([`relay_addrs::parse_relay_list`]); IP literals need
/// no DNS, and a name contributes every address it resolves to. An entry that does not resolve
/// is skipped while another one does (a fleet stays reachable when one of its names is gone).
///
/// # Errors
/// [`LinkError::Address`] for a malformed string; [`LinkError::Resolve`] when no entry resolves.
pub async fn resolve_targets(relay: &str) -> Result<Vec<DialTarget>, LinkError> {
    let entries = relay_addrs::parse_relay_list(relay)?;
    let mut out: Vec<DialTarget> = Vec::new();
    let mut failure = None;
    let mut push = |target: DialTarget| {
        if !out.iter().any(|t| t.addr == target.addr) {
            out.push(target);
        }
    };
    for entry in entries {
        if let Some(addr) = entry.literal {
            push(DialTarget::from(addr));
            continue;
        }
        let host = entry.host_name().unwrap_or_default().to_owned();
        match tokio::net::lookup_host(entry.text.as_str()).await {
            Ok(found) => found.for_each(|addr| push(DialTarget::named(addr, host.clone()))),
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
    let targets = resolve_targets(addr).await?;
    dial_any(&targets, 0, pin, opts)
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
    /// The transport that carries it.
    pub transport: crate::transport::Transport,
}

/// Dials `addrs` (socket addresses, or [`DialTarget`]s that keep the configured host name) in
/// order from `start` (wrapping around), each for at most
/// [`DIAL_ATTEMPT_TIMEOUT`] when there are several, and returns the first that answers with
/// the pinned key. A pin mismatch stops at once: that relay is not ours, or someone is in the
/// way, and trying the next address would hide it.
///
/// # Errors
/// The pin mismatch; else, when none answered, the one failure (one address) or a
/// [`LinkError::Connect`] naming every address and why it failed.
pub async fn dial_any<T: Clone + Into<DialTarget>>(
    addrs: &[T],
    start: usize,
    pin: &str,
    opts: &DialOptions,
) -> Result<Dialed, LinkError> {
    let n = addrs.len();
    let mut failures: Vec<(SocketAddr, LinkError)> = Vec::new();
    for step in 0..n {
        let index = (start + step) % n;
        let target: DialTarget = addrs[index].clone().into();
        let addr = target.addr;
        let attempt = crate::transport::dial_racing(target, pin, opts);
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
            Ok(((endpoint, conn), transport)) => {
                return Ok(Dialed {
                    index,
                    addr,
                    endpoint,
                    conn,
                    transport,
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
            .map(|a| Into::<DialTarget>::into(a.clone()).addr.to_string())
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

/// Opens a connection to the relay at the socket address `remote` (its QUIC address), with the
/// transports `opts` allows ([`crate::transport::dial_racing`], which also says which won).
///
/// # Errors
/// Socket, TLS, pin or connection failures.
pub async fn dial_addr(
    remote: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<(quinn::Endpoint, quinn::Connection), LinkError> {
    crate::transport::dial_racing(remote, pin, opts)
        .await
        .map(|(pair, _)| pair)
}

/// Opens a QUIC connection over UDP to the relay at `remote` (no TCP path): the first runner
/// of the race, the background probe, and `doctor`'s QUIC check.
///
/// # Errors
/// Socket, TLS, pin or connection failures.
pub async fn dial_quic(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AddrError;

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
    async fn a_name_keeps_its_host_next_to_each_address_and_a_literal_has_none() {
        let all = resolve_targets("localhost:7443,127.0.0.1:5").await.unwrap();
        let (named, literal): (Vec<_>, Vec<_>) = all.iter().partition(|t| t.host.is_some());
        assert!(!named.is_empty(), "{all:?}");
        assert!(
            named.iter().all(
                |t| t.host.as_deref() == Some("localhost") && t.host_port() == "localhost:7443"
            ),
            "{all:?}"
        );
        assert!(
            literal
                .iter()
                .all(|t| t.addr == addr("127.0.0.1:5") && t.host_port() == "127.0.0.1:5"),
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
        let err = dial_any::<SocketAddr>(&[], 0, "blake3:00", &DialOptions::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no relay address to dial"),
            "{err}"
        );
    }
}
