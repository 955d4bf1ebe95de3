//! Which transport carries a connection to the relay, and the client's policy for choosing one
//! (issue #21): QUIC over UDP first, QUIC tunnelled in TLS over TCP when UDP does not get
//! through (raced "happy eyeballs" style), optionally through an HTTP CONNECT proxy.
//!
//! Everything above the transport (h1/h2 bound to the TLS exporter, framing, operations,
//! watches, the offline queue) is the same on both: the TCP path carries the very same QUIC
//! connection's datagrams ([`crate::tunnel`]), so no authentication code forks.

pub mod check;
mod memory;
mod probe;
mod race;
mod remember;
mod settings;
mod tcp;

pub use memory::{MAX_REMEMBERED, MEMORY_TTL_MS, Memory, MemoryFileError, Won, network_key};
pub use probe::quic_comes_back;
pub use remember::local_source_ip;
pub use settings::{MAX_TCP_DELAY_MS, MIN_QUIC_PROBE_SECS, TransportKeys};
pub use tcp::{TcpTarget, dial_tcp, tcp_target};

use crate::{DialOptions, DialTarget, LinkError};
use std::path::PathBuf;
use std::time::Duration;

/// The file name of the per-network transport memory in a state folder.
pub const MEMORY_FILE_NAME: &str = "transport-memory.json";

/// How long QUIC may take to complete its handshake before TCP is started beside it.
pub const DEFAULT_TCP_DELAY: Duration = Duration::from_millis(250);

/// While on TCP, how often QUIC is tried again in the background.
pub const DEFAULT_QUIC_PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// The transport a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// QUIC over UDP.
    Quic,
    /// QUIC tunnelled in TLS 1.3 over TCP, directly.
    Tcp,
    /// QUIC tunnelled in TLS 1.3 over TCP, through an HTTP CONNECT proxy.
    TcpViaProxy,
}

impl Transport {
    /// Short text for status lines: `QUIC`, `TCP`, `TCP via proxy`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Quic => "QUIC",
            Self::Tcp => "TCP",
            Self::TcpViaProxy => "TCP via proxy",
        }
    }

    /// Whether this is one of the TCP paths.
    pub fn is_tcp(self) -> bool {
        !matches!(self, Self::Quic)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Which transports a client may use (`transport = "auto" | "quic" | "tcp"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportMode {
    /// Race QUIC and TCP, keep the first that answers, move back to QUIC when it works.
    #[default]
    Auto,
    /// QUIC only (the behaviour before the TCP path existed).
    Quic,
    /// TCP only (a network known to drop UDP).
    Tcp,
}

impl TransportMode {
    /// The setting's spelling: `auto`, `quic`, `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Quic => "quic",
            Self::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for TransportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `transport` setting that is none of `auto`, `quic`, `tcp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "transport {0:?} is not one of \"auto\" (race QUIC and TCP), \"quic\" (UDP only) or \"tcp\" \
     (TCP only)"
)]
pub struct BadTransportMode(pub String);

impl std::str::FromStr for TransportMode {
    type Err = BadTransportMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Self::Auto),
            "quic" | "udp" => Ok(Self::Quic),
            "tcp" => Ok(Self::Tcp),
            _ => Err(BadTransportMode(s.to_owned())),
        }
    }
}

/// The client's transport settings, part of [`crate::DialOptions`]. Its `Debug` hides the
/// proxy's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// Which transports to use.
    pub mode: TransportMode,
    /// How long QUIC gets before TCP starts beside it.
    pub tcp_delay: Duration,
    /// The relay's TCP address(es) (`relay_tcp = "host:port[,host:port]"`); `None`: the same
    /// host and port as each QUIC address.
    pub relay_tcp: Option<String>,
    /// An explicit proxy (`proxy = "http://[user:pass@]host:port"`); `None`: `HTTPS_PROXY` /
    /// `https_proxy` unless `NO_PROXY` matches the relay.
    pub proxy: Option<String>,
    /// While on TCP, how often QUIC is probed in the background.
    pub quic_probe_interval: Duration,
    /// Where the per-network memory of the transport that worked is kept; `None`: in memory.
    pub memory_file: Option<PathBuf>,
}

impl std::fmt::Debug for TransportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The proxy URL may carry a password: show where it goes, never the user info.
        let proxy = self.proxy.as_deref().map(crate::proxy::without_credentials);
        f.debug_struct("TransportOptions")
            .field("mode", &self.mode)
            .field("tcp_delay", &self.tcp_delay)
            .field("relay_tcp", &self.relay_tcp)
            .field("proxy", &proxy)
            .field("quic_probe_interval", &self.quic_probe_interval)
            .field("memory_file", &self.memory_file)
            .finish()
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            mode: TransportMode::Auto,
            tcp_delay: DEFAULT_TCP_DELAY,
            relay_tcp: None,
            proxy: None,
            quic_probe_interval: DEFAULT_QUIC_PROBE_INTERVAL,
            memory_file: None,
        }
    }
}

/// Dials the relay at `target` (its QUIC address, and the host name it was configured by) with
/// the transports `opts` allows, raced as the module says; remembers the winner for this
/// network (`auto` mode).
///
/// # Errors
/// A pin mismatch on either path at once; else the failure of every path tried.
pub async fn dial_racing(
    target: impl Into<DialTarget>,
    pin: &str,
    opts: &DialOptions,
) -> Result<((quinn::Endpoint, quinn::Connection), Transport), LinkError> {
    let target = target.into();
    let remote = target.addr;
    let t = &opts.transport;
    let network = remember::network_of(remote);
    let tcp_won_here = network
        .as_deref()
        .is_some_and(|key| remember::tcp_won_here(t, key));
    let plan = race::plan(t.mode, t.tcp_delay, tcp_won_here);
    let won = race::race(
        &remote.to_string(),
        plan,
        crate::dial_quic(remote, pin, opts),
        || dial_tcp(&target, pin, opts),
    )
    .await?;
    if let Some(key) = &network {
        remember::record(t, key, Won::from(won.1));
    }
    Ok(won)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A UDP socket bound and never read (QUIC's packets vanish: a network that drops UDP) and
    /// a TCP listener on the same port number.
    async fn black_hole_and_listener() -> (std::net::UdpSocket, tokio::net::TcpListener, SocketAddr)
    {
        loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = udp.local_addr().unwrap();
            if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
                return (udp, tcp, addr);
            }
        }
    }

    fn quick(dir: &std::path::Path) -> DialOptions {
        DialOptions {
            idle_timeout: Duration::from_secs(1),
            transport: TransportOptions {
                tcp_delay: Duration::from_millis(20),
                memory_file: Some(dir.join(MEMORY_FILE_NAME)),
                ..TransportOptions::default()
            },
        }
    }

    #[tokio::test]
    async fn with_udp_dropped_the_race_dials_tcp_and_a_failure_names_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (_udp, tcp, addr) = black_hole_and_listener().await;
        let opts = quick(dir.path());
        let dial = tokio::spawn(async move { dial_racing(addr, "blake3:00", &opts).await });
        // TCP is dialed while QUIC still waits for an answer that never comes.
        let (stream, _) = tcp.accept().await.unwrap();
        drop(stream);
        let err = dial.await.unwrap().unwrap_err().to_string();
        assert!(
            err.contains("over QUIC") && err.contains("over TCP"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn with_a_proxy_set_the_tcp_path_asks_it_to_connect_to_the_relay() {
        let dir = tempfile::tempdir().unwrap();
        let (_udp, _tcp, relay) = black_hole_and_listener().await;
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut opts = quick(dir.path());
        opts.transport.mode = TransportMode::Tcp;
        opts.transport.proxy = Some(format!("http://{}", proxy.local_addr().unwrap()));
        let dial = tokio::spawn(async move { dial_racing(relay, "blake3:00", &opts).await });
        let (mut stream, _) = proxy.accept().await.unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut b).await.unwrap() == 1 {
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(
            head.starts_with(&format!("CONNECT {relay} HTTP/1.1\r\n")),
            "{head}"
        );
        stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            .await
            .unwrap();
        let err = dial.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("403 Forbidden"), "{err}");
    }

    #[test]
    fn a_proxy_password_never_shows_in_debug_output() {
        let opts = DialOptions {
            transport: TransportOptions {
                proxy: Some("http://ann:hunter2@proxy.corp:3128".into()),
                ..TransportOptions::default()
            },
            ..DialOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("ann"),
            "{shown}"
        );
        assert!(shown.contains("proxy.corp:3128"), "{shown}");
    }

    #[test]
    fn transport_modes_parse_or_say_what_is_allowed() {
        assert_eq!("auto".parse(), Ok(TransportMode::Auto));
        assert_eq!(" QUIC ".parse(), Ok(TransportMode::Quic));
        assert_eq!("tcp".parse(), Ok(TransportMode::Tcp));
        let err = "websocket"
            .parse::<TransportMode>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("websocket") && err.contains("\"auto\""),
            "{err}"
        );
    }
}
