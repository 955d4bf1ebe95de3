//! The TCP path to one relay address: where the relay's TCP listener is (`relay_tcp`, else the
//! QUIC address's host and port), whether a proxy is in the way, the TCP connection (direct or
//! through the proxy's CONNECT), then QUIC tunnelled inside TLS ([`crate::tunnel`]).

use super::Transport;
use crate::relay_addrs;
use crate::{DialOptions, LinkError, proxy, tunnel};
use std::net::SocketAddr;

/// Where the TCP path goes for one QUIC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpTarget {
    /// The address to connect to (directly) and to label the tunnel with.
    pub addr: SocketAddr,
    /// `host:port` as written in `relay_tcp` (what a proxy is asked to CONNECT to, and what
    /// `NO_PROXY` is matched against); the address itself when none was written.
    pub name: String,
}

impl TcpTarget {
    fn host(&self) -> &str {
        self.name
            .rsplit_once(':')
            .map_or(self.name.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
    }
}

/// The TCP target for the QUIC address `quic`: with no `relay_tcp`, the same address; else the
/// `relay_tcp` entry that resolves to `quic`'s IP (a port-only change like
/// `relay.example.com:443`), else its first entry.
///
/// # Errors
/// A malformed `relay_tcp`, or none of its entries resolves.
pub async fn tcp_target(quic: SocketAddr, relay_tcp: Option<&str>) -> Result<TcpTarget, LinkError> {
    let Some(list) = relay_tcp.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(TcpTarget {
            addr: quic,
            name: quic.to_string(),
        });
    };
    let mut first = None;
    let mut failure = None;
    for entry in relay_addrs::parse_relay_list(list)? {
        let addrs: Vec<SocketAddr> = match entry.literal {
            Some(a) => vec![a],
            None => match tokio::net::lookup_host(entry.text.as_str()).await {
                Ok(found) => found.collect(),
                Err(e) => {
                    failure.get_or_insert(LinkError::Resolve {
                        addr: entry.text.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            },
        };
        if let Some(same) = addrs.iter().find(|a| a.ip() == quic.ip()) {
            return Ok(TcpTarget {
                addr: *same,
                name: entry.text,
            });
        }
        if first.is_none()
            && let Some(a) = addrs.first()
        {
            first = Some(TcpTarget {
                addr: *a,
                name: entry.text,
            });
        }
    }
    first.ok_or_else(|| {
        failure.unwrap_or_else(|| LinkError::Resolve {
            addr: list.to_owned(),
            reason: "no addresses".into(),
        })
    })
}

/// Opens the TCP path to the relay whose QUIC address is `quic`.
///
/// # Errors
/// The target does not resolve, the proxy setting is bad or the proxy refuses, the TCP
/// connection fails, or the tunnel's TLS/pin/QUIC handshake fails.
pub async fn dial_tcp(
    quic: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<((quinn::Endpoint, quinn::Connection), Transport), LinkError> {
    let target = tcp_target(quic, opts.transport.relay_tcp.as_deref()).await?;
    let failed = |reason: String| LinkError::Connect {
        addr: format!("{} (TCP)", target.name),
        reason,
    };
    let chosen = proxy::proxy_for(
        opts.transport.proxy.as_deref(),
        |k| std::env::var(k).ok(),
        target.host(),
        target.addr.port(),
    )
    .map_err(|e| failed(e.to_string()))?;
    let (stream, transport) = match chosen {
        Some(p) => {
            let stream = proxy::connect_via(&p, &target.name)
                .await
                .map_err(|e| failed(e.to_string()))?;
            (stream, Transport::TcpViaProxy)
        }
        None => {
            let stream = tunnel::connect_tcp(target.addr, opts.idle_timeout)
                .await
                .map_err(|e| {
                    failed(format!(
                        "{e} (is the relay's TCP listener running, and is its TCP port open?)"
                    ))
                })?;
            (stream, Transport::Tcp)
        }
    };
    let _ = stream.set_nodelay(true);
    let pair = tunnel::dial_tunnel_over(stream, target.addr, pin, opts).await?;
    Ok((pair, transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn without_relay_tcp_the_tcp_path_uses_the_quic_address() {
        let t = tcp_target(addr("192.0.2.1:7443"), None).await.unwrap();
        assert_eq!(t.addr, addr("192.0.2.1:7443"));
        assert_eq!(t.host(), "192.0.2.1");
    }

    #[tokio::test]
    async fn relay_tcp_pairs_by_ip_else_takes_the_first_entry() {
        let list = "192.0.2.9:443, 192.0.2.1:443";
        let t = tcp_target(addr("192.0.2.1:7443"), Some(list))
            .await
            .unwrap();
        assert_eq!(t.addr, addr("192.0.2.1:443"));
        let t = tcp_target(addr("198.51.100.1:7443"), Some(list))
            .await
            .unwrap();
        assert_eq!(t.addr, addr("192.0.2.9:443"));
        let t = tcp_target(addr("127.0.0.1:7443"), Some("localhost:443"))
            .await
            .unwrap();
        assert_eq!((t.name.as_str(), t.host()), ("localhost:443", "localhost"));
    }

    #[tokio::test]
    async fn a_malformed_relay_tcp_says_how_to_write_it() {
        let err = tcp_target(addr("192.0.2.1:7443"), Some("relay.example"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has no port"), "{err}");
    }
}
