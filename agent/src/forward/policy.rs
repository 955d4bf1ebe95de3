//! The host's `[forward]` rules, as data, and the one decision: may this port be forwarded,
//! and to which loopback address (pure).
//!
//! ```toml
//! [forward]
//! allow = ["detected", 3000, "8000-8100"]  # default ["detected"]
//! max_connections = 8                      # per forward (one credential, one port)
//! max_connections_per_host = 32
//! idle_timeout = "10m"
//! ```

use super::detect::Detected;
use proto::forward::ListeningPort;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Default connections per forward (one credential forwarding one port): a browser opens
/// about 6 to one server. Each is a stream of the operator's quota at the relay (32 to one
/// host), so one forward leaves room for the operator's prompts and watches.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Default connections on the whole host.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: u32 = 32;
/// Most connections a host may allow at once: each is one of the
/// `cm_client::tls::MAX_CONCURRENT_STREAMS` (128) streams of the agent's relay connection, and
/// a quarter of those stays for operations whatever forwards hold.
pub const MAX_CONNECTIONS_PER_HOST_LIMIT: u32 = 96;
/// Default time a forwarded connection may carry no byte either way.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// One entry of `allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowRule {
    /// Ports detected as belonging to a workspace's OpenCode (its tool processes).
    Detected,
    /// One port.
    Port(u16),
    /// A range, both ends included.
    Range(u16, u16),
}

impl AllowRule {
    /// Parses `"detected"`, `"3000"` or `"8000-8100"`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == "detected" {
            return Some(Self::Detected);
        }
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            return (a > 0 && a <= b).then_some(Self::Range(a, b));
        }
        s.parse().ok().filter(|p| *p > 0).map(Self::Port)
    }

    fn matches(self, port: u16, detected: bool) -> bool {
        match self {
            Self::Detected => detected,
            Self::Port(p) => p == port,
            Self::Range(a, b) => (a..=b).contains(&port),
        }
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detected => f.write_str("\"detected\""),
            Self::Port(p) => write!(f, "{p}"),
            Self::Range(a, b) => write!(f, "\"{a}-{b}\""),
        }
    }
}

/// The `[forward]` rules in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPolicy {
    /// Which ports may be forwarded.
    pub allow: Vec<AllowRule>,
    /// Connections at once per forward (one credential, one port).
    pub max_connections: u32,
    /// Connections at once on this host.
    pub max_connections_per_host: u32,
    /// A connection with no byte either way for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ForwardPolicy {
    fn default() -> Self {
        Self {
            allow: vec![AllowRule::Detected],
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Why a port may not be forwarded (operator-facing, names the rule).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// OpenCode's server or the agent's own port.
    #[error("port {0} is OpenCode's own server or the agent's on this host and is never forwarded")]
    Reserved(u16),
    /// Not in `allow`.
    #[error(
        "port {port} is not allowed by this host's [forward] policy (allow = [{allow}]{why}); \
         the host owner can add it to [forward] allow in agent.toml"
    )]
    NotAllowed {
        /// The port.
        port: u16,
        /// The rules, as written in `agent.toml`.
        allow: String,
        /// Why "detected" did not match, when it is a rule.
        why: &'static str,
    },
    /// Nothing listens on it.
    #[error("nothing listens on port {0} on this host's loopback (127.0.0.1 or ::1)")]
    NotListening(u16),
    /// Too many connections at once.
    #[error(
        "{open} connections are already open {scope} (the host's [forward] {key} is {max}); \
         close some and try again"
    )]
    Busy {
        /// How many are open.
        open: u32,
        /// The limit.
        max: u32,
        /// `max_connections` or `max_connections_per_host`.
        key: &'static str,
        /// "through this forward" or "on this host".
        scope: &'static str,
    },
}

impl ForwardPolicy {
    /// Whether `port` is allowed, given whether it was detected as a workspace's.
    pub fn allows(&self, port: u16, detected: bool) -> bool {
        self.allow.iter().any(|r| r.matches(port, detected))
    }

    fn allow_text(&self) -> String {
        self.allow
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What `port_list` shows: the ports of workspaces' OpenCode and the ports this policy lets
    /// be forwarded, each marked forwardable or not; never another host service (a viewer
    /// learns nothing of the host beyond that). With `workspace`, only that workspace's.
    pub fn listing(&self, found: Detected, workspace: Option<&str>) -> Vec<ListeningPort> {
        let reserved = found.reserved;
        found
            .ports
            .into_iter()
            .filter(|p| workspace.is_none() || p.workspace.as_deref() == workspace)
            .map(|mut p| {
                p.forwardable =
                    !reserved.contains(&p.port) && self.allows(p.port, p.workspace.is_some());
                p
            })
            .filter(|p| p.workspace.is_some() || p.forwardable)
            .collect()
    }

    /// Whether `port` may be forwarded now, and the loopback address to connect to.
    ///
    /// # Errors
    /// A [`Refusal`] naming the rule.
    pub fn decide(&self, port: u16, found: &Detected) -> Result<IpAddr, Refusal> {
        if found.reserved.contains(&port) {
            return Err(Refusal::Reserved(port));
        }
        let on_port: Vec<_> = found.ports.iter().filter(|p| p.port == port).collect();
        let detected = on_port.iter().any(|p| p.workspace.is_some());
        if !self.allows(port, detected) {
            let why = if !self.allow.contains(&AllowRule::Detected) {
                ""
            } else if on_port.is_empty() {
                "; nothing listens on it"
            } else {
                "; it was not started by a workspace's OpenCode"
            };
            return Err(Refusal::NotAllowed {
                port,
                allow: self.allow_text(),
                why,
            });
        }
        let addrs: Vec<IpAddr> = on_port.iter().filter_map(|p| p.addr.parse().ok()).collect();
        if addrs.iter().any(|a| a.is_ipv4() || is_v4_mapped(a)) {
            Ok(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else if addrs.iter().any(IpAddr::is_ipv6) {
            Ok(IpAddr::V6(Ipv6Addr::LOCALHOST))
        } else {
            Err(Refusal::NotListening(port))
        }
    }
}

fn is_v4_mapped(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(port: u16, addr: &str, workspace: Option<&str>) -> ListeningPort {
        ListeningPort {
            port,
            addr: addr.into(),
            pid: Some(1),
            process: Some("p".into()),
            workspace: workspace.map(str::to_owned),
            forwardable: false,
        }
    }

    fn found(ports: Vec<ListeningPort>, reserved: &[u16]) -> Detected {
        Detected {
            ports,
            reserved: reserved.iter().copied().collect(),
        }
    }

    #[test]
    fn allow_entries_parse_and_bad_ones_do_not() {
        assert_eq!(AllowRule::parse("detected"), Some(AllowRule::Detected));
        assert_eq!(AllowRule::parse("3000"), Some(AllowRule::Port(3000)));
        assert_eq!(
            AllowRule::parse("8000-8100"),
            Some(AllowRule::Range(8000, 8100))
        );
        for bad in ["", "0", "70000", "9-1", "x", "1-", "detect", "0-5"] {
            assert_eq!(AllowRule::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn by_default_only_ports_detected_as_a_workspaces_are_forwarded() {
        let p = ForwardPolicy::default();
        let ws = found(vec![port(8000, "0.0.0.0", Some("demo"))], &[]);
        assert_eq!(p.decide(8000, &ws), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let host = found(vec![port(5432, "127.0.0.1", None)], &[]);
        let e = p.decide(5432, &host).unwrap_err();
        assert!(matches!(e, Refusal::NotAllowed { port: 5432, .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("[forward] policy (allow = [\"detected\"]; it was not started by a workspace's OpenCode)"),
            "{text}"
        );
    }

    #[test]
    fn forwarding_never_reaches_opencode_or_the_agent_whatever_the_allow_list() {
        let p = ForwardPolicy {
            allow: vec![AllowRule::Range(1, u16::MAX)],
            ..ForwardPolicy::default()
        };
        let f = found(vec![port(3000, "127.0.0.1", Some("demo"))], &[4096]);
        assert_eq!(p.decide(4096, &f), Err(Refusal::Reserved(4096)));
        assert!(p.decide(3000, &f).is_ok());
    }

    #[test]
    fn explicit_ports_and_ranges_are_allowed_and_the_loopback_family_follows_the_listener() {
        let p = ForwardPolicy {
            allow: vec![AllowRule::Port(3000), AllowRule::Range(8000, 8100)],
            ..ForwardPolicy::default()
        };
        let f = found(
            vec![
                port(3000, "::1", None),
                port(8050, "::", None),
                port(8050, "0.0.0.0", None),
                port(9000, "127.0.0.1", Some("demo")),
            ],
            &[],
        );
        assert_eq!(p.decide(3000, &f), Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        assert_eq!(p.decide(8050, &f), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(matches!(
            p.decide(8101, &f),
            Err(Refusal::NotAllowed { port: 8101, .. })
        ));
        assert!(
            matches!(p.decide(9000, &f), Err(Refusal::NotAllowed { why: "", .. })),
            "detected is not a rule here"
        );
        assert_eq!(
            ForwardPolicy {
                allow: vec![AllowRule::Port(3001)],
                ..ForwardPolicy::default()
            }
            .decide(3001, &f),
            Err(Refusal::NotListening(3001))
        );
    }

    #[test]
    fn host_services_nobody_allowed_are_not_listed() {
        let p = ForwardPolicy {
            allow: vec![AllowRule::Detected, AllowRule::Port(3000)],
            ..ForwardPolicy::default()
        };
        let f = found(
            vec![
                port(3000, "127.0.0.1", None),
                port(5432, "127.0.0.1", None),
                port(8000, "0.0.0.0", Some("demo")),
                port(9000, "127.0.0.1", Some("other")),
            ],
            &[],
        );
        let all: Vec<(u16, bool)> = p
            .listing(f.clone(), None)
            .iter()
            .map(|l| (l.port, l.forwardable))
            .collect();
        assert_eq!(all, [(3000, true), (8000, true), (9000, true)]);
        let demo: Vec<u16> = p.listing(f, Some("demo")).iter().map(|l| l.port).collect();
        assert_eq!(demo, [8000]);
        // A workspace's port stays listed, not forwardable, when the host forwards nothing.
        let none = ForwardPolicy {
            allow: vec![],
            ..ForwardPolicy::default()
        };
        let f = found(vec![port(8000, "0.0.0.0", Some("demo"))], &[]);
        assert!(!none.listing(f, None)[0].forwardable);
    }
}
