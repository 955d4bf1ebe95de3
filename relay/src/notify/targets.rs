//! Where the relay may send notifications (`[notify]` of `relay.toml`): a user names the URL,
//! so without a rule any user could make the relay reach its loopback, its private network
//! or a cloud metadata address (169.254.169.254). By default an address that is not public is
//! refused; `allow_private_targets = true`, or naming the host or address in `allow_hosts`,
//! lets an operator permit them. Sans-IO: the addresses are resolved by the caller, which
//! then connects to exactly the addresses this module let through (no DNS-rebinding gap).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The settings to change, named in every refusal.
const HOW_TO_ALLOW: &str = "an operator may allow it in relay.toml: [notify] allow_hosts = [\"HOST\"] (this host only) or allow_private_targets = true";

/// An `allow_hosts` entry: a host name (as written in URLs) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// Any address this name resolves to.
    Name(String),
    /// This address, whatever name led to it.
    Addr(IpAddr),
}

impl AllowEntry {
    /// Parses `ntfy.lan`, `10.0.0.5` or `fd00::5` (no scheme, port or brackets).
    ///
    /// # Errors
    /// Anything else, with what to write.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(ip));
        }
        let ok = !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if ok {
            Ok(Self::Name(s.to_ascii_lowercase()))
        } else {
            Err(format!(
                "allow_hosts entry {s:?}: write a host name or an address, e.g. \"ntfy.lan\" or \"10.0.0.5\" (no scheme or port)"
            ))
        }
    }
}

/// Which targets the relay may connect to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Every address is allowed (`allow_private_targets = true`).
    pub allow_private: bool,
    /// Names and addresses allowed even though they are not public (`allow_hosts`).
    pub allow_hosts: Vec<AllowEntry>,
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} is refused: {addr} is {what}; the relay only notifies public addresses, and {HOW_TO_ALLOW}"
)]
pub struct Refused {
    /// The host as the URL names it.
    pub host: String,
    /// The address it is (or resolved to).
    pub addr: IpAddr,
    /// What kind of address that is (`a loopback address`).
    pub what: &'static str,
}

/// What kind of non-public address `ip` is, or `None` for a public one. IPv4 addresses inside
/// IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are
/// judged as the IPv4 address they stand for.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => non_public_v4(v4),
            None => non_public_v6(v6),
        },
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_broadcast() => "the broadcast address",
        (0, _) => "an unspecified (this-network) address",
        (127, _) => "a loopback address",
        (10, _) | (192, 168) => "a private (RFC 1918) address",
        (172, b) if (16..32).contains(&b) => "a private (RFC 1918) address",
        (169, 254) => "a link-local address (cloud metadata lives here)",
        (100, b) if (64..128).contains(&b) => "a carrier-grade NAT (100.64/10) address",
        (224..=239, _) => "a multicast address",
        (240..=255, _) => "a reserved address",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if first & 0xfe00 == 0xfc00 {
        "a unique-local (fc00::/7) address"
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        "a link-local address"
    } else if first & 0xff00 == 0xff00 {
        "a multicast address"
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 one stands for: IPv4-mapped, IPv4-compatible (deprecated, but
/// stacks still route it) or the well-known NAT64 prefix.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let compatible = s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(tail)
}

impl TargetPolicy {
    /// Whether `host` (as the URL names it) may be reached at `addr`.
    ///
    /// # Errors
    /// [`Refused`], naming the settings that would allow it.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), Refused> {
        let Some(what) = non_public(addr) else {
            return Ok(());
        };
        let allowed = self.allow_private
            || self.allow_hosts.iter().any(|entry| match entry {
                AllowEntry::Name(name) => name.eq_ignore_ascii_case(host),
                AllowEntry::Addr(allowed) => same_address(*allowed, addr),
            });
        if allowed {
            Ok(())
        } else {
            Err(Refused {
                host: host.to_owned(),
                addr,
                what,
            })
        }
    }

    /// The check at `notify_add`, before any lookup: a literal address is judged as is, and a
    /// name that is local by definition (`localhost`, `*.localhost`) as loopback. `Ok(false)`:
    /// a name to resolve and check with [`TargetPolicy::allowed_addrs`].
    ///
    /// # Errors
    /// [`Refused`].
    pub fn check_literal(&self, host: &str) -> Result<bool, Refused> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.check(host, ip).map(|()| true);
        }
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            return self
                .check(host, IpAddr::V4(Ipv4Addr::LOCALHOST))
                .map(|()| true);
        }
        Ok(false)
    }

    /// Of the addresses `host` resolved to, those the relay may connect to.
    ///
    /// # Errors
    /// [`Refused`] (for the first address) when none may be reached.
    pub fn allowed_addrs(
        &self,
        host: &str,
        resolved: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| match self.check(host, a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        match first_refusal {
            Some(refused) if allowed.is_empty() => Err(refused),
            _ => Ok(allowed),
        }
    }
}

/// `10.0.0.5` allows `::ffff:10.0.0.5` too.
fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_kind_of_non_public_address_is_refused_by_default() {
        let policy = TargetPolicy::default();
        for addr in [
            "127.0.0.1",
            "127.8.9.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
        ] {
            let err = policy.check("h", ip(addr)).unwrap_err();
            assert_eq!(err.addr, ip(addr));
            let text = err.to_string();
            assert!(
                text.contains("allow_hosts") && text.contains("allow_private_targets"),
                "{text}"
            );
        }
        for public in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(policy.check("h", ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn the_metadata_address_says_what_it_is() {
        let err = TargetPolicy::default()
            .check("169.254.169.254", ip("169.254.169.254"))
            .unwrap_err();
        assert!(err.to_string().contains("link-local"), "{err}");
    }

    #[test]
    fn allow_hosts_permits_a_named_host_or_an_address_and_nothing_else() {
        let policy = TargetPolicy {
            allow_private: false,
            allow_hosts: vec![
                AllowEntry::parse("NTFY.lan").unwrap(),
                AllowEntry::parse("10.0.0.5").unwrap(),
            ],
        };
        assert_eq!(policy.check("ntfy.LAN", ip("192.168.1.9")), Ok(()));
        assert_eq!(policy.check("anything", ip("10.0.0.5")), Ok(()));
        assert_eq!(policy.check("anything", ip("::ffff:10.0.0.5")), Ok(()));
        assert!(policy.check("anything", ip("10.0.0.6")).is_err());
        assert!(policy.check("other.lan", ip("192.168.1.9")).is_err());
        let all = TargetPolicy {
            allow_private: true,
            allow_hosts: vec![],
        };
        assert_eq!(all.check("h", ip("127.0.0.1")), Ok(()));
        for bad in ["http://x", "x:80", "[::1]", "", "a b"] {
            assert!(AllowEntry::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            AllowEntry::parse("fd00::5"),
            Ok(AllowEntry::Addr(ip("fd00::5")))
        );
    }

    #[test]
    fn literals_and_localhost_are_judged_before_any_lookup() {
        let policy = TargetPolicy::default();
        assert!(policy.check_literal("127.0.0.1").is_err());
        assert!(policy.check_literal("::1").is_err());
        assert!(policy.check_literal("localhost").is_err());
        assert!(policy.check_literal("api.LOCALHOST.").is_err());
        assert_eq!(policy.check_literal("1.1.1.1"), Ok(true));
        assert_eq!(policy.check_literal("ntfy.sh"), Ok(false));
    }

    #[test]
    fn only_the_addresses_that_pass_are_connected_to() {
        let policy = TargetPolicy::default();
        let a = |s: &str| SocketAddr::new(ip(s), 443);
        assert_eq!(
            policy.allowed_addrs("h", vec![a("127.0.0.1"), a("1.1.1.1")]),
            Ok(vec![a("1.1.1.1")])
        );
        let err = policy
            .allowed_addrs("rebind.example", vec![a("127.0.0.1"), a("10.0.0.1")])
            .unwrap_err();
        assert_eq!(
            (err.host.as_str(), err.addr),
            ("rebind.example", ip("127.0.0.1"))
        );
        assert_eq!(policy.allowed_addrs("h", vec![]), Ok(vec![]));
    }
}
