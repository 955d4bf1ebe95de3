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

use crate::{DialOptions, LinkError};
use std::net::SocketAddr;
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

/// The client's transport settings, part of [`crate::DialOptions`].
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Dials the relay at the QUIC address `remote` with the transports `opts` allows, raced as
/// the module says; remembers the winner for this network (`auto` mode).
///
/// # Errors
/// A pin mismatch on either path at once; else the failure of every path tried.
pub async fn dial_racing(
    remote: SocketAddr,
    pin: &str,
    opts: &DialOptions,
) -> Result<((quinn::Endpoint, quinn::Connection), Transport), LinkError> {
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
        || dial_tcp(remote, pin, opts),
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
