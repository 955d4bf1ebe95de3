//! The transport keys of agent.toml and tui.toml (issue #21): `transport =
//! "auto"|"quic"|"tcp"`, `relay_tcp = "host:port[,…]"`, `proxy = "http://[user:pass@]host:port"`
//! (or `"none"`), `tcp_delay_ms`, `quic_probe_secs`; `CM_TRANSPORT`, `CM_RELAY_TCP`, `CM_PROXY`
//! override them. One validator for both programs.

use super::{DEFAULT_QUIC_PROBE_INTERVAL, DEFAULT_TCP_DELAY, TransportMode, TransportOptions};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest head start QUIC may get before TCP starts beside it.
pub const MAX_TCP_DELAY_MS: u64 = 10_000;

/// The shortest interval between background QUIC probes (each is a handshake at the relay).
pub const MIN_QUIC_PROBE_SECS: u64 = 5;

/// The transport keys as written (`Debug` hides the proxy's credentials).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportKeys {
    /// `transport`.
    pub transport: Option<String>,
    /// `relay_tcp`.
    pub relay_tcp: Option<String>,
    /// `proxy`.
    pub proxy: Option<String>,
    /// `tcp_delay_ms`.
    pub tcp_delay_ms: Option<u64>,
    /// `quic_probe_secs`.
    pub quic_probe_secs: Option<u64>,
}

impl std::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportKeys")
            .field("transport", &self.transport)
            .field("relay_tcp", &self.relay_tcp)
            .field(
                "proxy",
                &self.proxy.as_deref().map(crate::proxy::without_credentials),
            )
            .field("tcp_delay_ms", &self.tcp_delay_ms)
            .field("quic_probe_secs", &self.quic_probe_secs)
            .finish()
    }
}

impl TransportKeys {
    /// `CM_TRANSPORT`, `CM_RELAY_TCP` and `CM_PROXY` over the written values.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        if let Some(v) = lookup("CM_TRANSPORT") {
            self.transport = Some(v);
        }
        if let Some(v) = lookup("CM_RELAY_TCP") {
            self.relay_tcp = Some(v);
        }
        if let Some(v) = lookup("CM_PROXY") {
            self.proxy = Some(v);
        }
    }

    /// Checks the keys; the error is the message (the caller names the file). The memory file
    /// is left unset (it lives in the state folder, which the caller knows).
    ///
    /// # Errors
    /// An unknown mode, a malformed address list or proxy URL, or an out-of-range number.
    pub fn validate(&self) -> Result<TransportOptions, String> {
        let mut out = TransportOptions::default();
        if let Some(mode) = &self.transport {
            out.mode = mode.parse::<TransportMode>().map_err(|e| e.to_string())?;
        }
        if let Some(list) = self.relay_tcp.as_deref().filter(|s| !s.trim().is_empty()) {
            crate::relay_addrs::parse_relay_list(list).map_err(|e| format!("relay_tcp: {e}"))?;
            out.relay_tcp = Some(list.trim().to_owned());
        }
        if let Some(proxy) = self.proxy.as_deref().filter(|s| !s.trim().is_empty()) {
            if !proxy
                .trim()
                .eq_ignore_ascii_case(crate::proxy::NO_PROXY_SETTING)
            {
                crate::proxy::parse_proxy_url(proxy).map_err(|e| format!("proxy: {e}"))?;
            }
            out.proxy = Some(proxy.trim().to_owned());
        }
        if let Some(ms) = self.tcp_delay_ms {
            if ms > MAX_TCP_DELAY_MS {
                return Err(format!(
                    "tcp_delay_ms = {ms}: at most {MAX_TCP_DELAY_MS} (QUIC's head start before \
                     TCP starts; the default is {})",
                    DEFAULT_TCP_DELAY.as_millis()
                ));
            }
            out.tcp_delay = Duration::from_millis(ms);
        }
        if let Some(secs) = self.quic_probe_secs {
            if secs < MIN_QUIC_PROBE_SECS {
                return Err(format!(
                    "quic_probe_secs = {secs}: at least {MIN_QUIC_PROBE_SECS} (each probe is a \
                     handshake at the relay; the default is {})",
                    DEFAULT_QUIC_PROBE_INTERVAL.as_secs()
                ));
            }
            out.quic_probe_interval = Duration::from_secs(secs);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_race_quic_and_tcp() {
        let t = TransportKeys::default().validate().unwrap();
        assert_eq!(t.mode, TransportMode::Auto);
        assert_eq!(t.tcp_delay, DEFAULT_TCP_DELAY);
        assert_eq!(t.relay_tcp, None);
    }

    #[test]
    fn every_key_is_taken() {
        let t = TransportKeys {
            transport: Some("tcp".into()),
            relay_tcp: Some("relay.example.com:443".into()),
            proxy: Some("http://u:p@proxy:3128".into()),
            tcp_delay_ms: Some(100),
            quic_probe_secs: Some(30),
        }
        .validate()
        .unwrap();
        assert_eq!(t.mode, TransportMode::Tcp);
        assert_eq!(t.relay_tcp.as_deref(), Some("relay.example.com:443"));
        assert_eq!(t.proxy.as_deref(), Some("http://u:p@proxy:3128"));
        assert_eq!(t.tcp_delay, Duration::from_millis(100));
        assert_eq!(t.quic_probe_interval, Duration::from_secs(30));
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let cases = [
            (
                TransportKeys {
                    transport: Some("websocket".into()),
                    ..TransportKeys::default()
                },
                "\"auto\"",
            ),
            (
                TransportKeys {
                    relay_tcp: Some("relay.example.com".into()),
                    ..TransportKeys::default()
                },
                "relay_tcp: relay address \"relay.example.com\" has no port",
            ),
            (
                TransportKeys {
                    proxy: Some("socks5://p:1080".into()),
                    ..TransportKeys::default()
                },
                "proxy: proxy",
            ),
            (
                TransportKeys {
                    tcp_delay_ms: Some(60_000),
                    ..TransportKeys::default()
                },
                "tcp_delay_ms = 60000: at most",
            ),
            (
                TransportKeys {
                    quic_probe_secs: Some(1),
                    ..TransportKeys::default()
                },
                "quic_probe_secs = 1: at least",
            ),
        ];
        for (keys, says) in cases {
            let err = keys.validate().unwrap_err();
            assert!(err.contains(says), "{keys:?}: {err}");
        }
    }

    #[test]
    fn a_proxy_password_in_the_settings_never_shows_in_debug_output() {
        let keys = TransportKeys {
            proxy: Some("http://ann:hunter2@proxy:3128".into()),
            ..TransportKeys::default()
        };
        let shown = format!("{keys:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let env: HashMap<&str, &str> = [
            ("CM_TRANSPORT", "quic"),
            ("CM_RELAY_TCP", "r:443"),
            ("CM_PROXY", "none"),
        ]
        .into();
        let mut keys = TransportKeys {
            transport: Some("tcp".into()),
            proxy: Some("http://p:1".into()),
            ..TransportKeys::default()
        };
        keys.apply_env(|k| env.get(k).map(|v| (*v).to_owned()));
        let t = keys.validate().unwrap();
        assert_eq!(t.mode, TransportMode::Quic);
        assert_eq!(t.relay_tcp.as_deref(), Some("r:443"));
        assert_eq!(t.proxy.as_deref(), Some("none"));
    }
}
