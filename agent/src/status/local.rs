//! `cm-agent status`: what this host is set up as, read from its files (the running agent is
//! not asked): host, relays, whether it is locked, and its trust mode (zero-trust with the
//! revocation freshness, or relay-trusted with the way to zero-trust).

use crate::trust::TrustReport;
use serde::Serialize;
use std::fmt::Write as _;

/// The status, for people (`render`) and scripts (JSON).
#[derive(Debug, Clone, Serialize)]
pub struct LocalStatus {
    /// The host id (`None`: no valid configuration).
    pub host: Option<String>,
    /// The relays (`None`: no valid configuration).
    pub relays: Option<String>,
    /// Whether `cm-agent lock` is in force.
    pub locked: bool,
    /// The trust mode and what it holds.
    pub trust: TrustReport,
    /// The running agent's connected links and their transports (empty: not running, or not
    /// connected).
    pub links: Vec<crate::status::links::LinkNow>,
}

impl LocalStatus {
    /// The status for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "host: {}",
            self.host.as_deref().unwrap_or("(not configured)")
        );
        if let Some(relays) = &self.relays {
            let _ = writeln!(out, "relays: {relays}");
        }
        let locked = if self.locked {
            "yes (`cm-agent unlock` to serve again)"
        } else {
            "no"
        };
        let _ = writeln!(out, "locked: {locked}");
        if self.links.is_empty() {
            let _ = writeln!(
                out,
                "transport: (not connected, or the agent is not running)"
            );
        }
        for link in &self.links {
            let _ = writeln!(out, "transport: {} to {}", link.transport, link.relay);
        }
        match self.trust.hint {
            Some(hint) => {
                let _ = writeln!(out, "mode: {hint}");
            }
            None => {
                let _ = writeln!(
                    out,
                    "mode: zero-trust ({} owner key(s) pinned)",
                    self.trust.roots.len()
                );
                let _ = writeln!(
                    out,
                    "revocations: {}",
                    self.trust
                        .freshness
                        .describe(self.trust.revocation_max_age_ms)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_mode_and_for_relay_trusted_hosts_the_way_out() {
        let tmp = tempfile::tempdir().unwrap();
        let trust = crate::trust::report(tmp.path(), None, 60_000, 0).unwrap();
        let status = LocalStatus {
            host: Some("box".into()),
            relays: Some("r:1".into()),
            locked: false,
            trust,
            links: vec![crate::status::links::LinkNow {
                relay: "192.0.2.1:7443".into(),
                transport: "TCP via proxy".into(),
                since_ms: 1,
                pid: None,
            }],
        };
        let text = status.render();
        assert!(
            text.contains("transport: TCP via proxy to 192.0.2.1:7443"),
            "{text}"
        );
        assert!(text.contains("mode: relay-trusted"), "{text}");
        assert!(text.contains("cm-tui admin host add"), "{text}");
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["trust"]["mode"], "relay-trusted");
        assert_eq!(json["links"][0]["transport"], "TCP via proxy");
    }
}
