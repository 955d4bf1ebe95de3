//! The `relay` key: one relay string (`"a:7443"`, also `"a:7443,b:7443"` or a DNS name with
//! several addresses) or an array of them, and `relay_connections`: how many links to distinct
//! relay addresses the agent keeps.

use cm_client::relay_addrs::parse_relay_list;
use serde::{Deserialize, Serialize};

/// Links kept to distinct relays when `relay_connections` is not set: one relay's loss leaves
/// the host online on the other.
pub const DEFAULT_RELAY_CONNECTIONS: usize = 2;

/// `relay` as written: a string (what `cm-agent enroll` writes) or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RelaySetting {
    /// `relay = "a:7443"` (may itself be a comma-separated list).
    One(String),
    /// `relay = ["a:7443", "b:7443"]`.
    Many(Vec<String>),
}

impl Default for RelaySetting {
    fn default() -> Self {
        Self::One(String::new())
    }
}

impl From<String> for RelaySetting {
    fn from(s: String) -> Self {
        Self::One(s)
    }
}

impl From<&str> for RelaySetting {
    fn from(s: &str) -> Self {
        Self::One(s.to_owned())
    }
}

impl PartialEq<&str> for RelaySetting {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Self::One(s) if s == other)
    }
}

impl RelaySetting {
    /// The strings as written.
    pub fn written(&self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s.clone()],
            Self::Many(v) => v.clone(),
        }
    }
}

/// The validated relay settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relays {
    /// Every `host:port` entry, in order (comma lists split); DNS is asked when dialing.
    pub entries: Vec<String>,
    /// The relay strings a host secret may be stored under (enrollment stores it under the
    /// token's relay string): each string as written, then each entry, without repeats.
    pub secret_accounts: Vec<String>,
    /// How many links to distinct addresses to keep (at least 1; the link caps it by the
    /// number of addresses).
    pub connections: usize,
}

impl Relays {
    /// The entries as one comma-separated relay string (what `cm_client::resolve_all` reads).
    pub fn list(&self) -> String {
        self.entries.join(",")
    }
}

/// The `host:port` entries of a relay setting, when it is valid.
pub fn relays_of(setting: &RelaySetting) -> Option<Vec<String>> {
    validate(setting, None).ok().map(|r| r.entries)
}

/// Checks `relay` and `relay_connections`; the error is the message (the caller names the
/// file).
///
/// # Errors
/// No relay, a malformed address, or `relay_connections = 0`.
pub(super) fn validate(
    setting: &RelaySetting,
    connections: Option<usize>,
) -> Result<Relays, String> {
    let written = setting.written();
    if written.is_empty() {
        return Err(
            "relay: list at least one relay address, e.g. relay = [\"relay.example.com:7443\"]"
                .into(),
        );
    }
    let mut entries: Vec<String> = Vec::new();
    for s in &written {
        for e in parse_relay_list(s).map_err(|e| format!("relay: {e}"))? {
            if !entries.contains(&e.text) {
                entries.push(e.text);
            }
        }
    }
    let mut secret_accounts: Vec<String> = Vec::new();
    for s in written.iter().chain(&entries) {
        if !secret_accounts.contains(s) {
            secret_accounts.push(s.clone());
        }
    }
    let connections = connections.unwrap_or(DEFAULT_RELAY_CONNECTIONS);
    if connections == 0 {
        return Err("relay_connections must be at least 1".into());
    }
    Ok(Relays {
        entries,
        secret_accounts,
        connections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_an_array_and_a_comma_list_give_the_same_entries() {
        let one = validate(&"a:1, b:2".into(), None).unwrap();
        let many = validate(&RelaySetting::Many(vec!["a:1".into(), "b:2".into()]), None).unwrap();
        assert_eq!(one.entries, vec!["a:1", "b:2"]);
        assert_eq!(many.entries, one.entries);
        assert_eq!(one.list(), "a:1,b:2");
        assert_eq!(one.connections, DEFAULT_RELAY_CONNECTIONS);
    }

    #[test]
    fn the_secret_is_looked_up_under_the_enrolled_string_first() {
        let r = validate(&"a:1,b:2".into(), Some(1)).unwrap();
        assert_eq!(r.secret_accounts, vec!["a:1,b:2", "a:1", "b:2"]);
        let r = validate(&RelaySetting::Many(vec!["a:1".into(), "b:2".into()]), None).unwrap();
        assert_eq!(r.secret_accounts, vec!["a:1", "b:2"]);
    }

    #[test]
    fn bad_settings_say_what_to_write() {
        let cases: Vec<(RelaySetting, Option<usize>, &str)> = vec![
            (
                RelaySetting::Many(vec![]),
                None,
                "list at least one relay address",
            ),
            ("".into(), None, "no relay address given"),
            ("a:1,,b:2".into(), None, "empty entry"),
            (
                RelaySetting::Many(vec!["a:1".into(), "b".into()]),
                None,
                "\"b\" has no port",
            ),
            (
                "a:1".into(),
                Some(0),
                "relay_connections must be at least 1",
            ),
        ];
        for (setting, n, expected) in cases {
            let err = validate(&setting, n).unwrap_err();
            assert!(err.contains(expected), "{setting:?}: {err}");
        }
    }
}
