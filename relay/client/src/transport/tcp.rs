//! The TCP path to one relay address: where the relay's TCP listener is (`relay_tcp`, else the
//! QUIC address's host and port), whether a proxy is in the way, the TCP connection (direct or
//! through the proxy's CONNECT), then QUIC tunnelled inside TLS ([`crate::tunnel`]).

use super::Transport;
use crate::relay_addrs;
use crate::{DialOptions, DialTarget, LinkError, proxy, tunnel};
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

/// The TCP target for the QUIC address `quic`: with no `relay_tcp`, the same address under the
/// host name it was configured by (the IP when it was given as one); else the `relay_tcp` entry
/// that resolves to `quic`'s IP (a port-only change like
/// `relay.example.com:443`), else its first entry.
///
/// # Errors
/// A malformed `relay_tcp`, or none of its entries resolves.
pub async fn tcp_target(
    quic: &DialTarget,
    relay_tcp: Option<&str>,
) -> Result<TcpTarget, LinkError> {
    let Some(list) = relay_tcp.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(TcpTarget {
            addr: quic.addr,
            name: quic.host_port(),
        });
    };
    let quic = quic.addr;
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

/// Opens the TCP path to the relay whose QUIC address (and configured name) is `quic`.
///
/// # Errors
/// The target does not resolve, the proxy setting is bad or the proxy refuses, the TCP
/// connection fails, or the tunnel's TLS/pin/QUIC handshake fails.
pub async fn dial_tcp(
    quic: &DialTarget,
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

    fn ip(s: &str) -> DialTarget {
        DialTarget::from(addr(s))
    }

    #[tokio::test]
    async fn without_relay_tcp_the_tcp_path_uses_the_quic_address() {
        let t = tcp_target(&ip("192.0.2.1:7443"), None).await.unwrap();
        assert_eq!(t.addr, addr("192.0.2.1:7443"));
        assert_eq!((t.name.as_str(), t.host()), ("192.0.2.1:7443", "192.0.2.1"));
        let t = tcp_target(&ip("[2001:db8::1]:7443"), None).await.unwrap();
        assert_eq!(
            (t.name.as_str(), t.host()),
            ("[2001:db8::1]:7443", "2001:db8::1")
        );
    }

    #[tokio::test]
    async fn a_relay_configured_by_name_is_matched_and_connected_to_by_that_name() {
        let quic = DialTarget::named(addr("192.0.2.1:7443"), "relay.example.com");
        let t = tcp_target(&quic, None).await.unwrap();
        assert_eq!(
            t.addr,
            addr("192.0.2.1:7443"),
            "a direct connection dials the IP"
        );
        assert_eq!(
            (t.name.as_str(), t.host()),
            ("relay.example.com:7443", "relay.example.com")
        );
        let env = |no_proxy: &'static str| {
            move |k: &str| match k {
                "HTTPS_PROXY" => Some("http://proxy.corp:3128".to_owned()),
                "NO_PROXY" => Some(no_proxy.to_owned()),
                _ => None,
            }
        };
        for list in [
            "relay.example.com",
            ".example.com",
            "example.com",
            "*.example.com",
            "relay.example.com:7443",
            "*",
        ] {
            let chosen = proxy::proxy_for(None, env(list), t.host(), t.addr.port()).unwrap();
            assert_eq!(chosen, None, "NO_PROXY={list}");
        }
        for list in ["192.0.2.1", "relay.example.com:443", "other.example.com"] {
            let chosen = proxy::proxy_for(None, env(list), t.host(), t.addr.port()).unwrap();
            assert!(
                chosen.is_some(),
                "NO_PROXY={list}: the name and port are matched"
            );
        }
    }

    #[tokio::test]
    async fn relay_tcp_pairs_by_ip_else_takes_the_first_entry() {
        let list = "192.0.2.9:443, 192.0.2.1:443";
        let t = tcp_target(&ip("192.0.2.1:7443"), Some(list)).await.unwrap();
        assert_eq!(t.addr, addr("192.0.2.1:443"));
        let t = tcp_target(&ip("198.51.100.1:7443"), Some(list))
            .await
            .unwrap();
        assert_eq!(t.addr, addr("192.0.2.9:443"));
        let t = tcp_target(&ip("127.0.0.1:7443"), Some("localhost:443"))
            .await
            .unwrap();
        assert_eq!((t.name.as_str(), t.host()), ("localhost:443", "localhost"));
    }

    #[tokio::test]
    async fn a_malformed_relay_tcp_says_how_to_write_it() {
        let err = tcp_target(&ip("192.0.2.1:7443"), Some("relay.example"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("has no port"), "{err}");
    }

    /// The TCP path to a relay configured by name asks the proxy for that name (corporate
    /// proxies allow by host name); one given as an IP is asked for by IP.
    #[tokio::test]
    async fn the_connect_line_carries_the_configured_host_name() {
        use crate::proxy::tests::{Behaviour, test_proxy};
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let proxy_port = test_proxy(Behaviour::Record(seen_tx)).await;
        let opts = DialOptions {
            transport: crate::transport::TransportOptions {
                mode: crate::transport::TransportMode::Tcp,
                proxy: Some(format!("http://127.0.0.1:{proxy_port}")),
                ..Default::default()
            },
            ..Default::default()
        };
        let relay = addr("127.0.0.1:7443");
        for (target, want) in [
            (
                DialTarget::named(relay, "relay.example.com"),
                "relay.example.com:7443",
            ),
            (DialTarget::from(relay), "127.0.0.1:7443"),
        ] {
            let err = dial_tcp(&target, "blake3:00", &opts).await.unwrap_err();
            assert!(err.to_string().contains("502"), "{err}");
            assert_eq!(seen.recv().await.as_deref(), Some(want));
        }
    }
}
