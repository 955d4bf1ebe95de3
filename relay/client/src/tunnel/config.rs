//! QUIC settings for a connection carried in the TCP tunnel. TCP carries datagrams of any
//! size and never loses one, so the inner QUIC starts at a large MTU ([`TUNNEL_MTU`]) and does
//! no path-MTU discovery (its probes would only measure the tunnel's own limit).

use std::time::Duration;

/// Open TCP tunnel connections one address may hold at once by default (see
/// [`ListenerLimits::open_per_address`]).
pub const DEFAULT_OPEN_PER_ADDRESS: usize = 64;

/// Limits of the relay's TCP listener that an operator may change (`relay.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Open TCP connections (from accept to close) one address may hold; one more from it is
    /// closed at once, while other addresses still get in. IPv6 counts per /64. Behind a TCP
    /// load balancer without PROXY protocol every client is the balancer's address: raise it
    /// there (or give the balancer several source addresses).
    pub open_per_address: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            open_per_address: DEFAULT_OPEN_PER_ADDRESS,
        }
    }
}

/// The QUIC packet size inside the tunnel. Larger packets mean fewer packets (less per-packet
/// header, crypto and task work) per byte. Measured on loopback (16 MiB echoed three times,
/// CPU of both ends): 1,452 bytes 0.60 s, 4,096 0.37 s, 8,192 0.34 s, 16,384 0.31 s; so 8 KiB,
/// past which the gain is small, and a packet plus its length still fits one 16 KiB TLS record.
pub const TUNNEL_MTU: u16 = 8192;

/// The largest record either side accepts (what the endpoints also advertise as their
/// maximum UDP payload).
pub const MAX_RECORD_LEN: usize = TUNNEL_MTU as usize;

/// Transport settings for a tunnelled connection: the shared ones
/// ([`crate::tls::transport_config`]) with the tunnel's MTU and no MTU discovery.
pub fn transport_config(idle_timeout: Duration) -> quinn::TransportConfig {
    let mut t = crate::tls::transport_config(idle_timeout);
    t.initial_mtu(TUNNEL_MTU);
    t.min_mtu(TUNNEL_MTU);
    t.mtu_discovery_config(None);
    // quinn's default initial window (14,720 bytes) is ten 1,472-byte packets; keep it ten
    // packets of the tunnel's size.
    let mut cubic = quinn::congestion::CubicConfig::default();
    cubic.initial_window(10 * u64::from(TUNNEL_MTU));
    t.congestion_controller_factory(std::sync::Arc::new(cubic));
    t
}

/// Endpoint settings for a tunnel socket: datagrams up to [`TUNNEL_MTU`].
pub fn endpoint_config() -> quinn::EndpointConfig {
    let mut c = quinn::EndpointConfig::default();
    // In range (1200..=65527) by construction; the default would cap packets at 1472 bytes.
    if c.max_udp_payload_size(TUNNEL_MTU).is_err() {
        tracing::warn!(
            mtu = TUNNEL_MTU,
            "tunnel MTU refused by quinn; using its default"
        );
    }
    c
}
