//! The `[forward]` table: which host ports operators may forward, and the limits.

use super::{ConfigError, invalid};
use crate::forward::policy::{AllowRule, ForwardPolicy, MAX_CONNECTIONS_PER_HOST_LIMIT};
use cm_client::time::parse_duration;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One `allow` entry as written: a port number, or `"detected"`, `"3000"`, `"8000-8100"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowEntry {
    /// A port number.
    Port(i64),
    /// `"detected"` or a port or range as text.
    Text(String),
}

/// The `[forward]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// Ports that may be forwarded: `"detected"` (ports a workspace's OpenCode started, the
    /// default), port numbers and `"first-last"` ranges; `[]` forwards nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<AllowEntry>>,
    /// Connections at once through one forward (one credential, one port); default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Connections at once on this host; default 32, at most 96 (the rest of the agent's 128
    /// relay streams stays for operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_host: Option<u32>,
    /// Close a connection with no traffic for this long, e.g. `10m` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
}

impl ForwardSection {
    /// The rules, or what is wrong with the table.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(self, path: &Path) -> Result<ForwardPolicy, ConfigError> {
        let mut p = ForwardPolicy::default();
        if let Some(entries) = self.allow {
            p.allow = entries
                .iter()
                .map(|e| {
                    let rule = match e {
                        AllowEntry::Port(n) => u16::try_from(*n)
                            .ok()
                            .filter(|n| *n > 0)
                            .map(AllowRule::Port),
                        AllowEntry::Text(s) => AllowRule::parse(s),
                    };
                    rule.ok_or_else(|| {
                        invalid(
                            path,
                            format!(
                                "[forward] allow: {e:?} is not \"detected\", a port (1-65535) or a \
                                 \"first-last\" range"
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        for (key, value, slot) in [
            (
                "max_connections",
                self.max_connections,
                &mut p.max_connections,
            ),
            (
                "max_connections_per_host",
                self.max_connections_per_host,
                &mut p.max_connections_per_host,
            ),
        ] {
            if let Some(v) = value {
                if v == 0 {
                    return Err(invalid(
                        path,
                        format!(
                            "[forward] {key} must be above zero (use allow = [] to forward nothing)"
                        ),
                    ));
                }
                *slot = v;
            }
        }
        if p.max_connections_per_host > MAX_CONNECTIONS_PER_HOST_LIMIT {
            return Err(invalid(
                path,
                format!(
                    "[forward] max_connections_per_host = {} is above {MAX_CONNECTIONS_PER_HOST_LIMIT}: \
                     forwarded connections would take the streams operations need",
                    p.max_connections_per_host
                ),
            ));
        }
        if let Some(t) = self.idle_timeout.as_deref() {
            p.idle_timeout = parse_duration(t)
                .map_err(|e| invalid(path, format!("[forward] idle_timeout: {e}")))?;
            if p.idle_timeout.is_zero() {
                return Err(invalid(path, "[forward] idle_timeout must be above zero"));
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ForwardPolicy, ConfigError> {
        let s: ForwardSection =
            toml::from_str(text).map_err(|e| invalid(Path::new("a.toml"), e.to_string()))?;
        s.validate(Path::new("a.toml"))
    }

    #[test]
    fn the_table_parses_mixed_allow_entries_and_limits() {
        let p = parse(
            "allow = [\"detected\", 3000, \"8000-8100\"]\nmax_connections = 4\n\
             max_connections_per_host = 9\nidle_timeout = \"30s\"\n",
        )
        .unwrap();
        assert_eq!(
            p.allow,
            [
                AllowRule::Detected,
                AllowRule::Port(3000),
                AllowRule::Range(8000, 8100)
            ]
        );
        assert_eq!((p.max_connections, p.max_connections_per_host), (4, 9));
        assert_eq!(p.idle_timeout, std::time::Duration::from_secs(30));
        assert_eq!(parse("").unwrap(), ForwardPolicy::default());
    }

    #[test]
    fn bad_entries_name_the_key() {
        for (text, needle) in [
            ("allow = [70000]", "[forward] allow: Port(70000)"),
            ("allow = [\"every\"]", "[forward] allow"),
            (
                "max_connections = 0",
                "[forward] max_connections must be above zero",
            ),
            ("idle_timeout = \"soon\"", "[forward] idle_timeout"),
            ("allows = []", "allows"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_host_cannot_let_forwards_take_the_streams_operations_need() {
        let e = parse("max_connections_per_host = 97")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("forwarded connections would take the streams operations need"),
            "{e}"
        );
        assert_eq!(
            parse("max_connections_per_host = 96")
                .unwrap()
                .max_connections_per_host,
            96
        );
    }
}
