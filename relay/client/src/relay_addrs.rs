//! A relay string as agents and operators write it: one `host:port`, or several separated by
//! commas (`a.example:7443,b.example:7443`), each host an IP literal or a DNS name that may
//! resolve to several addresses. [`parse_relay_list`] checks the syntax without any I/O;
//! `resolve_all` (in the crate root) turns the entries into the ordered, duplicate-free list of
//! socket addresses to dial.

use std::net::SocketAddr;

/// A relay string that cannot be an address list. Each message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Nothing but blanks.
    #[error("no relay address given; write host:port, e.g. relay.example.com:7443")]
    Empty,
    /// `a:1,,b:2` or a trailing comma.
    #[error(
        "relay address list {list:?} has an empty entry (two commas in a row or a comma at an \
         end); remove it"
    )]
    EmptyEntry {
        /// The list as given.
        list: String,
    },
    /// `relay.example.com` without `:port`.
    #[error("relay address {entry:?} has no port; write host:port, e.g. {entry}:7443")]
    NoPort {
        /// The entry as given.
        entry: String,
    },
    /// `relay:http`, `relay:0`, `relay:70000`.
    #[error("relay address {entry:?}: port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The entry as given.
        entry: String,
        /// The port text.
        port: String,
    },
    /// `quic://relay:7443`.
    #[error(
        "relay address {entry:?}: write host:port without a scheme, e.g. relay.example.com:7443"
    )]
    Scheme {
        /// The entry as given.
        entry: String,
    },
    /// `::1:7443`.
    #[error(
        "relay address {entry:?}: put an IPv6 address in brackets before the port, e.g. [::1]:7443"
    )]
    Ipv6WithoutBrackets {
        /// The entry as given.
        entry: String,
    },
    /// `:7443`, `relay host:7443`, `[nonsense]:7443`.
    #[error(
        "relay address {entry:?}: {host:?} is not a host name or IP address (letters, digits, \
         '.', '-', '_'; IPv6 in brackets)"
    )]
    BadHost {
        /// The entry as given.
        entry: String,
        /// The host part.
        host: String,
    },
}

/// One `host:port` entry of a relay string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayEntry {
    /// The entry as written (trimmed), what DNS is asked about.
    pub text: String,
    /// The address, when the host is an IP literal (no DNS needed).
    pub literal: Option<SocketAddr>,
}

/// Splits a relay string at commas and checks each entry's syntax.
///
/// # Errors
/// The first entry that cannot be an address, with how to write it.
pub fn parse_relay_list(list: &str) -> Result<Vec<RelayEntry>, AddrError> {
    if list.trim().is_empty() {
        return Err(AddrError::Empty);
    }
    list.split(',')
        .map(|raw| {
            let entry = raw.trim();
            if entry.is_empty() {
                return Err(AddrError::EmptyEntry {
                    list: list.to_owned(),
                });
            }
            parse_entry(entry)
        })
        .collect()
}

fn parse_entry(entry: &str) -> Result<RelayEntry, AddrError> {
    let owned = || entry.to_owned();
    if entry.contains("://") {
        return Err(AddrError::Scheme { entry: owned() });
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(AddrError::BadPort {
                entry: owned(),
                port: "0".into(),
            });
        }
        return Ok(RelayEntry {
            text: owned(),
            literal: Some(addr),
        });
    }
    let Some((host, port)) = entry.rsplit_once(':') else {
        return Err(AddrError::NoPort { entry: owned() });
    };
    if entry.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(AddrError::Ipv6WithoutBrackets { entry: owned() });
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err(AddrError::Ipv6WithoutBrackets { entry: owned() });
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => {
            return Err(AddrError::BadPort {
                entry: owned(),
                port: port.to_owned(),
            });
        }
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !name_ok {
        return Err(AddrError::BadHost {
            entry: owned(),
            host: host.to_owned(),
        });
    }
    Ok(RelayEntry {
        text: owned(),
        literal: None,
    })
}

/// One relay address to dial: the socket address DNS gave and, when the relay was written as a
/// name, that name. The TCP path needs the name: `NO_PROXY` entries and a proxy's allow list
/// name hosts, so the proxy is chosen for, and asked to CONNECT to, `relay.example.com:7443`
/// rather than the IP it resolved to. The pin checks the relay's key either way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialTarget {
    /// The resolved address (what QUIC and a direct TCP connection dial).
    pub addr: SocketAddr,
    /// The host name as configured (no port); `None` when the relay was given as an IP.
    pub host: Option<String>,
}

impl DialTarget {
    /// `addr` reached through the configured host name `host`.
    pub fn named(addr: SocketAddr, host: impl Into<String>) -> Self {
        Self {
            addr,
            host: Some(host.into()),
        }
    }

    /// The host to match `NO_PROXY` against: the configured name, else the IP.
    pub fn host_or_ip(&self) -> String {
        self.host
            .clone()
            .unwrap_or_else(|| self.addr.ip().to_string())
    }

    /// `host:port` for a CONNECT line: the configured name with the port, else the address
    /// (`[v6]:port` for IPv6).
    pub fn host_port(&self) -> String {
        match &self.host {
            Some(host) => format!("{host}:{}", self.addr.port()),
            None => self.addr.to_string(),
        }
    }
}

impl From<SocketAddr> for DialTarget {
    fn from(addr: SocketAddr) -> Self {
        Self { addr, host: None }
    }
}

impl RelayEntry {
    /// The host part of a name entry (`relay.example.com` of `relay.example.com:7443`);
    /// `None` for an IP literal.
    pub fn host_name(&self) -> Option<&str> {
        if self.literal.is_some() {
            return None;
        }
        self.text.rsplit_once(':').map(|(host, _)| host)
    }
}

/// Appends `new` to `into`, skipping addresses already there (first occurrence keeps its place).
pub fn push_distinct(into: &mut Vec<SocketAddr>, new: impl IntoIterator<Item = SocketAddr>) {
    for addr in new {
        if !into.contains(&addr) {
            into.push(addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literals(list: &str) -> Vec<SocketAddr> {
        parse_relay_list(list)
            .unwrap()
            .into_iter()
            .map(|e| e.literal.unwrap())
            .collect()
    }

    #[test]
    fn one_ip_literal_needs_no_dns() {
        assert_eq!(
            literals("127.0.0.1:7443"),
            vec!["127.0.0.1:7443".parse().unwrap()]
        );
        assert_eq!(literals("[::1]:7443"), vec!["[::1]:7443".parse().unwrap()]);
    }

    #[test]
    fn a_comma_list_keeps_its_order_and_ignores_blanks_around_entries() {
        assert_eq!(
            literals(" 127.0.0.2:7443 , 127.0.0.1:7443,[::1]:9"),
            vec![
                "127.0.0.2:7443".parse().unwrap(),
                "127.0.0.1:7443".parse().unwrap(),
                "[::1]:9".parse().unwrap()
            ]
        );
    }

    #[test]
    fn names_are_kept_for_dns() {
        let entries = parse_relay_list("relay.example.com:7443,127.0.0.1:1").unwrap();
        assert_eq!(entries[0].text, "relay.example.com:7443");
        assert_eq!(entries[0].literal, None);
        assert!(entries[1].literal.is_some());
    }

    #[test]
    fn bad_entries_say_how_to_write_them() {
        let cases: &[(&str, &str)] = &[
            ("", "no relay address given"),
            ("  ", "no relay address given"),
            ("a:1,,b:2", "empty entry"),
            ("a:1,", "empty entry"),
            ("relay.example.com", "has no port; write host:port"),
            ("::1", "IPv6 address in brackets"),
            ("relay:http", "not a number from 1 to 65535"),
            ("relay:0", "not a number from 1 to 65535"),
            ("127.0.0.1:0", "not a number from 1 to 65535"),
            ("relay:70000", "not a number from 1 to 65535"),
            ("quic://relay:7443", "without a scheme"),
            ("::1:7443", "IPv6 address in brackets"),
            (":7443", "is not a host name"),
            ("relay host:7443", "is not a host name"),
            ("127.0.0.1:7443,bad", "\"bad\" has no port"),
        ];
        for (input, expected) in cases {
            let err = parse_relay_list(input).unwrap_err().to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
    }

    #[test]
    fn a_name_entry_keeps_its_host_for_the_dial_target() {
        let entries = parse_relay_list("relay.example.com:7443,[::1]:9").unwrap();
        assert_eq!(entries[0].host_name(), Some("relay.example.com"));
        assert_eq!(entries[1].host_name(), None);
        let addr: SocketAddr = "192.0.2.1:7443".parse().unwrap();
        let named = DialTarget::named(addr, "relay.example.com");
        assert_eq!(named.host_port(), "relay.example.com:7443");
        assert_eq!(named.host_or_ip(), "relay.example.com");
        let v6 = DialTarget::from("[2001:db8::1]:7443".parse::<SocketAddr>().unwrap());
        assert_eq!(v6.host_port(), "[2001:db8::1]:7443");
        assert_eq!(v6.host_or_ip(), "2001:db8::1");
    }

    #[test]
    fn push_distinct_keeps_the_first_occurrence() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut v = vec![a];
        push_distinct(&mut v, [b, a, b]);
        assert_eq!(v, vec![a, b]);
    }
}
