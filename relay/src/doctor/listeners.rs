//! `cm-relay doctor`'s listener checks: the UDP port (QUIC) and the TCP port (QUIC in TLS over
//! TCP). A free port is fine (the relay binds it when it starts); a port in use is asked
//! whether a relay with this key answers there.

use crate::finding::Finding;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a probe of a port in use may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where to probe a listen address from this machine (a wildcard listens on loopback too).
fn probe_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// What a probe of a port in use found.
enum Probe {
    /// A relay with the pin answered.
    Ours,
    /// Something answered with another key.
    OtherKey(String),
    /// Nothing usable answered.
    NoAnswer(String),
}

fn classify(result: Result<(), cm_client::LinkError>) -> Probe {
    match result {
        Ok(()) => Probe::Ours,
        Err(cm_client::LinkError::PinMismatch { presented, .. }) => Probe::OtherKey(presented),
        Err(e) => Probe::NoAnswer(e.to_string()),
    }
}

fn probe_udp(addr: SocketAddr, pin: &str) -> Probe {
    let Some(rt) = runtime() else {
        return Probe::NoAnswer("cannot start a runtime for the probe".into());
    };
    classify(rt.block_on(async {
        tokio::time::timeout(
            PROBE_TIMEOUT,
            cm_client::clock_skew_at(addr, pin, &quic_only()),
        )
        .await
        .map_err(|_| cm_client::LinkError::Timeout(PROBE_TIMEOUT))
        .and_then(|r| r.map(|_| ()))
    }))
}

fn probe_tcp(addr: SocketAddr, pin: &str) -> Probe {
    let Some(rt) = runtime() else {
        return Probe::NoAnswer("cannot start a runtime for the probe".into());
    };
    classify(rt.block_on(cm_client::tunnel::check_tcp_listener(
        addr,
        pin,
        PROBE_TIMEOUT,
    )))
}

/// The UDP port: free, or answered by a relay with `pin` (when the pin is known).
pub(super) fn udp(listen: SocketAddr, pin: Option<&str>) -> Finding {
    const CHECK: &str = "udp port";
    match std::net::UdpSocket::bind(listen) {
        Ok(_) => Finding::ok(CHECK, format!("{listen} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let Some(pin) = pin else {
                return Finding::ok(
                    CHECK,
                    format!(
                        "{listen} is in use: fine if this relay is running (otherwise stop what holds it)"
                    ),
                );
            };
            match probe_udp(probe_addr(listen), pin) {
                Probe::Ours => {
                    Finding::ok(CHECK, format!("{listen}: this relay answers QUIC there"))
                }
                Probe::OtherKey(presented) => Finding::fail(
                    CHECK,
                    format!(
                        "{listen} is held by a relay with another key ({presented}); stop it, or give this relay another --listen"
                    ),
                ),
                Probe::NoAnswer(why) => Finding::fail(
                    CHECK,
                    format!(
                        "{listen} is in use but no relay answers QUIC there ({why}); find what holds it with `ss -ulpn 'sport = :{}'` and stop it, or choose another --listen",
                        listen.port()
                    ),
                ),
            }
        }
        Err(e) => Finding::fail(
            CHECK,
            format!(
                "cannot bind {listen}: {e} (a running relay holds it; otherwise choose another --listen, or grant CAP_NET_BIND_SERVICE for ports below 1024)"
            ),
        ),
    }
}

/// The TCP port (`None`: `listen_tcp = "off"`): free, or answered with TLS and `pin`.
pub(super) fn tcp(listen_tcp: Option<SocketAddr>, pin: Option<&str>) -> Finding {
    const CHECK: &str = "tcp port";
    let Some(listen) = listen_tcp else {
        return Finding::ok(
            CHECK,
            "off (listen_tcp = \"off\"): clients on networks that drop UDP cannot reach this relay",
        );
    };
    match std::net::TcpListener::bind(listen) {
        Ok(_) => Finding::ok(CHECK, format!("{listen} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let Some(pin) = pin else {
                return Finding::ok(
                    CHECK,
                    format!(
                        "{listen} is in use: fine if this relay is running (otherwise stop what holds it)"
                    ),
                );
            };
            match probe_tcp(probe_addr(listen), pin) {
                Probe::Ours => Finding::ok(
                    CHECK,
                    format!("{listen}: this relay answers TLS with its key there"),
                ),
                Probe::OtherKey(presented) => Finding::fail(
                    CHECK,
                    format!(
                        "{listen} answers TLS with another key ({presented}): another relay, or a TLS-terminating proxy in front of it (forward the port as plain TCP instead)"
                    ),
                ),
                Probe::NoAnswer(why) => Finding::fail(
                    CHECK,
                    format!(
                        "{listen} is in use but this relay does not answer there ({why}); find what holds it with `ss -tlpn 'sport = :{}'` and stop it, or set listen_tcp (--listen-tcp) to another address or \"off\"",
                        listen.port()
                    ),
                ),
            }
        }
        Err(e) => Finding::fail(
            CHECK,
            format!(
                "cannot bind {listen}: {e} (choose another --listen-tcp, or grant CAP_NET_BIND_SERVICE for ports below 1024, or set listen_tcp = \"off\")"
            ),
        ),
    }
}

/// Dial options that use QUIC alone: the UDP check must not be answered by the TCP listener on
/// the same port.
fn quic_only() -> cm_client::DialOptions {
    let mut opts = cm_client::DialOptions::default();
    opts.transport.mode = cm_client::transport::TransportMode::Quic;
    opts
}
