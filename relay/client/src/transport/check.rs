//! "Which transports work from here?" for `cm-agent doctor` and `cm-tui status`: QUIC and the
//! TCP path are each tried once against one relay address ([`probe_both`]), and [`verdict`]
//! (no I/O) says what that means and what to open when something does not work.

use super::{Transport, TransportMode, dial_tcp, tcp_target};
use crate::{DIAL_ATTEMPT_TIMEOUT, DialOptions, DialTarget, LinkError, dial_quic};
use proto::message::CloseReason;
use std::net::SocketAddr;

/// The outcome of trying each transport once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// The QUIC address tried.
    pub quic_addr: SocketAddr,
    /// Where the TCP path went (`relay_tcp` or the same address).
    pub tcp_addr: String,
    /// QUIC: fine, or why not.
    pub quic: Result<(), String>,
    /// TCP: the path that worked (direct or via proxy), or why not.
    pub tcp: Result<Transport, String>,
    /// Whether a pin mismatch was seen (someone in the way, or a re-initialised relay).
    pub pin_mismatch: bool,
}

/// Tries QUIC and the TCP path to `remote` side by side (each within
/// [`DIAL_ATTEMPT_TIMEOUT`]), ignoring the configured mode: the report says what works here.
pub async fn probe_both(
    target: impl Into<DialTarget>,
    pin: &str,
    opts: &DialOptions,
) -> Reachability {
    let target = target.into();
    let remote = target.addr;
    let bound = DIAL_ATTEMPT_TIMEOUT.min(opts.idle_timeout);
    let timed_out = || format!("no answer within {bound:?}");
    let quic = async {
        match tokio::time::timeout(bound, dial_quic(remote, pin, opts)).await {
            Ok(Ok((_endpoint, conn))) => {
                conn.close(CloseReason::Normal.code().into(), b"doctor");
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LinkError::Connect {
                addr: remote.to_string(),
                reason: timed_out(),
            }),
        }
    };
    let tcp = async {
        match tokio::time::timeout(bound, dial_tcp(&target, pin, opts)).await {
            Ok(Ok(((_endpoint, conn), transport))) => {
                conn.close(CloseReason::Normal.code().into(), b"doctor");
                Ok(transport)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LinkError::Connect {
                addr: remote.to_string(),
                reason: timed_out(),
            }),
        }
    };
    let (quic, tcp) = tokio::join!(quic, tcp);
    let pin_mismatch = matches!(quic, Err(LinkError::PinMismatch { .. }))
        || matches!(tcp, Err(LinkError::PinMismatch { .. }));
    let tcp_addr = tcp_target(&target, opts.transport.relay_tcp.as_deref())
        .await
        .map_or_else(|_| remote.to_string(), |t| t.name);
    Reachability {
        quic_addr: remote,
        tcp_addr,
        quic: quic.map_err(|e| e.to_string()),
        tcp: tcp.map_err(|e| e.to_string()),
        pin_mismatch,
    }
}

/// What [`Reachability`] means under `mode`: whether the client can connect (`true`), and one
/// line saying which transports work and, when one does not, what to open.
pub fn verdict(r: &Reachability, mode: TransportMode) -> (bool, String) {
    let quic_port = r.quic_addr.port();
    let tcp = r.tcp_addr.as_str();
    let line = match (&r.quic, &r.tcp) {
        (Ok(()), Ok(t)) => format!("QUIC and {t} both work from here"),
        (Err(q), Ok(t)) => format!(
            "{t} works, QUIC does not ({q}): this network (or the relay's firewall) drops UDP \
             {quic_port}; clients use {t} here"
        ),
        (Ok(()), Err(e)) => format!(
            "QUIC works, TCP to {tcp} does not ({e}); fine here, but on a network that drops UDP \
             only TCP gets through: open TCP {tcp} on the relay (or its load balancer)"
        ),
        (Err(q), Err(e)) => format!(
            "neither transport works from here: QUIC ({q}); TCP to {tcp} ({e}). Open UDP \
             {quic_port} and TCP {tcp} to the relay, or set proxy = \"http://host:port\" if this \
             network only allows a web proxy"
        ),
    };
    let usable = match mode {
        TransportMode::Auto => r.quic.is_ok() || r.tcp.is_ok(),
        TransportMode::Quic => r.quic.is_ok(),
        TransportMode::Tcp => r.tcp.is_ok(),
    };
    let line = match (usable, mode) {
        (false, TransportMode::Quic) if r.tcp.is_ok() => {
            format!("{line}; transport = \"quic\" forbids TCP: set transport = \"auto\"")
        }
        (false, TransportMode::Tcp) if r.quic.is_ok() => {
            format!("{line}; transport = \"tcp\" forbids QUIC: set transport = \"auto\"")
        }
        _ => line,
    };
    (usable && !r.pin_mismatch, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(quic: Result<(), &str>, tcp: Result<Transport, &str>) -> Reachability {
        Reachability {
            quic_addr: "192.0.2.1:7443".parse().unwrap(),
            tcp_addr: "192.0.2.1:443".into(),
            quic: quic.map_err(str::to_owned),
            tcp: tcp.map_err(str::to_owned),
            pin_mismatch: false,
        }
    }

    #[test]
    fn the_verdict_names_what_works_and_what_to_open() {
        let (ok, line) = verdict(&r(Ok(()), Ok(Transport::Tcp)), TransportMode::Auto);
        assert!(ok && line.contains("QUIC and TCP both work"), "{line}");
        let (ok, line) = verdict(
            &r(Err("no answer"), Ok(Transport::TcpViaProxy)),
            TransportMode::Auto,
        );
        assert!(
            ok && line.contains("TCP via proxy works") && line.contains("UDP 7443"),
            "{line}"
        );
        let (ok, line) = verdict(&r(Ok(()), Err("refused")), TransportMode::Auto);
        assert!(ok && line.contains("open TCP 192.0.2.1:443"), "{line}");
        let (ok, line) = verdict(&r(Err("no answer"), Err("refused")), TransportMode::Auto);
        assert!(
            !ok && line.contains("Open UDP 7443 and TCP 192.0.2.1:443") && line.contains("proxy"),
            "{line}"
        );
    }

    #[test]
    fn a_forced_transport_that_does_not_work_here_says_to_use_auto() {
        let (ok, line) = verdict(
            &r(Err("no answer"), Ok(Transport::Tcp)),
            TransportMode::Quic,
        );
        assert!(!ok && line.contains("set transport = \"auto\""), "{line}");
        let (ok, _) = verdict(&r(Err("no answer"), Ok(Transport::Tcp)), TransportMode::Tcp);
        assert!(ok);
    }
}
