//! `cm-agent trust show` and the doctor's trust lines: what this host pins and holds, read from
//! its state folder (the running agent is not asked).

use super::store::{StoreError, TrustFile, load_revocations};
use proto::trust::X25519Public;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// What `relay-trusted` hosts are told to do.
pub const RELAY_TRUSTED_HINT: &str = "relay-trusted: the relay vouches for operators; re-enroll with a token from `cm-tui admin host add` to verify operators";

/// The host's trust, for people (`render`) and scripts (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustReport {
    /// `zero-trust` or `relay-trusted`.
    pub mode: &'static str,
    /// The host the pins are for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Pinned roots.
    pub roots: Vec<RootLine>,
    /// Fingerprint of the end-to-end key (`None`: unknown to this build or not found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Revocation lists held.
    pub revocation_lists: Vec<ListLine>,
    /// Freshness of the newest owner-signed list.
    pub freshness: Freshness,
    /// The limit (`[trust] revocation_max_age`), in ms.
    pub revocation_max_age_ms: u64,
    /// What to do, for a relay-trusted host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
}

/// A pinned root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootLine {
    /// The owner.
    pub user: String,
    /// Their key's fingerprint.
    pub fingerprint: String,
}

/// A held revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListLine {
    /// Who signed (as the list says).
    pub issuer_user: String,
    /// The signing key's fingerprint.
    pub signer: String,
    /// Whether the signer is a pinned root (only those count for freshness).
    pub root: bool,
    /// Sequence number.
    pub seq: u64,
    /// Age, in ms.
    pub age_ms: u64,
    /// Serials and keys revoked.
    pub revoked: usize,
}

/// Freshness of the newest owner-signed revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Freshness {
    /// A relay-trusted host does not need any.
    NotNeeded,
    /// None held yet: new work is refused until the relay delivers one.
    None,
    /// Within the limit.
    Fresh {
        /// Age, in ms.
        age_ms: u64,
    },
    /// Older than the limit: new work is refused.
    Stale {
        /// Age, in ms.
        age_ms: u64,
    },
}

/// The report from `state_dir`; `host_key` is the end-to-end key when the caller found it.
///
/// # Errors
/// A damaged `trust.json` or `revocations.json`.
pub fn report(
    state_dir: &Path,
    host_key: Option<X25519Public>,
    max_age_ms: u64,
    now_ms: u64,
) -> Result<TrustReport, StoreError> {
    let Some(file) = TrustFile::load(state_dir)? else {
        return Ok(TrustReport {
            mode: "relay-trusted",
            host: None,
            roots: Vec::new(),
            host_key: None,
            revocation_lists: Vec::new(),
            freshness: Freshness::NotNeeded,
            revocation_max_age_ms: max_age_ms,
            hint: Some(RELAY_TRUSTED_HINT),
        });
    };
    let mut lists = Vec::new();
    let mut newest_root_ms = None;
    for list in load_revocations(state_dir)? {
        // Held lists were verified when taken; one that no longer opens is not shown.
        let Ok(body) = list.open() else { continue };
        let root = file.roots.iter().any(|r| r.key == *list.signer());
        if root {
            newest_root_ms = newest_root_ms.max(Some(body.issued_ms));
        }
        lists.push(ListLine {
            issuer_user: body.issuer_user.to_string(),
            signer: list.signer().fingerprint(),
            root,
            seq: body.seq,
            age_ms: now_ms.saturating_sub(body.issued_ms),
            revoked: body.serials.len() + body.keys.len(),
        });
    }
    let freshness = match newest_root_ms.map(|ms| now_ms.saturating_sub(ms)) {
        None => Freshness::None,
        Some(age_ms) if age_ms > max_age_ms => Freshness::Stale { age_ms },
        Some(age_ms) => Freshness::Fresh { age_ms },
    };
    Ok(TrustReport {
        mode: "zero-trust",
        host: Some(file.host.to_string()),
        roots: file
            .roots
            .iter()
            .map(|r| RootLine {
                user: r.user.to_string(),
                fingerprint: r.key.fingerprint(),
            })
            .collect(),
        host_key: host_key.map(|k| k.fingerprint()),
        revocation_lists: lists,
        freshness,
        revocation_max_age_ms: max_age_ms,
        hint: None,
    })
}

/// `5 min`, `3 h 20 min`, `2 d 4 h`.
pub fn human_age(ms: u64) -> String {
    let min = ms / 60_000;
    match min {
        0..60 => format!("{min} min"),
        60..1440 => format!("{} h {} min", min / 60, min % 60),
        _ => format!("{} d {} h", min / 1440, (min % 1440) / 60),
    }
}

impl Freshness {
    /// One line for people, against `limit_ms`.
    pub fn describe(&self, limit_ms: u64) -> String {
        let limit = human_age(limit_ms);
        match self {
            Self::NotNeeded => "not needed (relay-trusted host)".into(),
            Self::None => format!(
                "none yet: new work is refused until the relay delivers an owner-signed list (an owner runs `cm-tui admin trust refresh`); limit {limit}"
            ),
            Self::Fresh { age_ms } => {
                format!(
                    "newest owner-signed list is {} old (limit {limit})",
                    human_age(*age_ms)
                )
            }
            Self::Stale { age_ms } => format!(
                "stale: newest owner-signed list is {} old (limit {limit}); new work is refused until an owner runs `cm-tui admin trust refresh`",
                human_age(*age_ms)
            ),
        }
    }
}

impl TrustReport {
    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "mode: {}", self.mode);
        if let Some(hint) = self.hint {
            let _ = writeln!(out, "  {hint}");
            return out;
        }
        if let Some(host) = &self.host {
            let _ = writeln!(out, "host: {host}");
        }
        let _ = writeln!(
            out,
            "host key: {}",
            self.host_key.as_deref().unwrap_or("(not available)")
        );
        let _ = writeln!(out, "pinned roots:");
        for r in &self.roots {
            let _ = writeln!(out, "  {}  {}", r.user, r.fingerprint);
        }
        let _ = writeln!(out, "revocation lists:");
        if self.revocation_lists.is_empty() {
            let _ = writeln!(out, "  (none held)");
        }
        for l in &self.revocation_lists {
            let _ = writeln!(
                out,
                "  {}  {}{}  seq {}  {} old  {} revoked",
                l.issuer_user,
                l.signer,
                if l.root { " (root)" } else { "" },
                l.seq,
                human_age(l.age_ms),
                l.revoked
            );
        }
        let _ = writeln!(
            out,
            "freshness: {}",
            self.freshness.describe(self.revocation_max_age_ms)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::store::{TrustMode, save_revocations};
    use super::*;
    use proto::handshake::Bytes32;
    use proto::ids::HostId;
    use proto::trust::{DeviceKey, RevocationBody, Root, Signed};

    const HOUR: u64 = 3_600_000;

    fn enroll(dir: &Path, owner: &DeviceKey) {
        TrustFile {
            version: 1,
            mode: TrustMode::ZeroTrust,
            host: HostId::from("box"),
            relay: "r:1".into(),
            roots: vec![Root {
                user: "olivia".into(),
                key: owner.public(),
            }],
            bind: Some(Bytes32([1; 32])),
            enrolled_ms: 0,
        }
        .save(dir)
        .unwrap();
    }

    fn list(key: &DeviceKey, issued_ms: u64) -> proto::trust::RevocationList {
        Signed::sign(
            &RevocationBody {
                issuer_user: "olivia".into(),
                seq: 3,
                issued_ms,
                serials: vec!["aa".into()],
                keys: Vec::new(),
            },
            key,
        )
    }

    #[test]
    fn a_host_without_trust_file_reports_relay_trusted_with_the_way_out() {
        let tmp = tempfile::tempdir().unwrap();
        let r = report(tmp.path(), None, HOUR, 0).unwrap();
        assert_eq!(r.mode, "relay-trusted");
        assert_eq!(r.freshness, Freshness::NotNeeded);
        assert!(
            r.render().contains("cm-tui admin host add"),
            "{}",
            r.render()
        );
    }

    #[test]
    fn report_shows_roots_key_and_lists_and_judges_freshness_by_root_lists_only() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([4; 32]).unwrap();
        let admin = DeviceKey::from_seed([5; 32]).unwrap();
        enroll(tmp.path(), &owner);
        let none = report(tmp.path(), None, HOUR, 10 * HOUR).unwrap();
        assert_eq!(none.freshness, Freshness::None);
        save_revocations(
            tmp.path(),
            &[list(&owner, 8 * HOUR), list(&admin, 10 * HOUR)],
        )
        .unwrap();
        let key = X25519Public([9; 32]);
        let r = report(tmp.path(), Some(key), HOUR, 10 * HOUR).unwrap();
        assert_eq!(r.mode, "zero-trust");
        assert_eq!(r.roots[0].fingerprint, owner.public().fingerprint());
        assert_eq!(r.host_key, Some(key.fingerprint()));
        assert_eq!(r.revocation_lists.len(), 2);
        // The admin's newer list does not make the owner's old one fresh.
        assert_eq!(r.freshness, Freshness::Stale { age_ms: 2 * HOUR });
        let text = r.render();
        assert!(text.contains("olivia"), "{text}");
        assert!(text.contains("stale"), "{text}");
        let fresh = report(tmp.path(), None, 3 * HOUR, 10 * HOUR).unwrap();
        assert_eq!(fresh.freshness, Freshness::Fresh { age_ms: 2 * HOUR });
        let json = serde_json::to_value(&fresh).unwrap();
        assert_eq!(json["mode"], "zero-trust");
        assert_eq!(json["freshness"]["state"], "fresh");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(5 * 60_000), "5 min");
        assert_eq!(human_age(200 * 60_000), "3 h 20 min");
        assert_eq!(human_age(52 * HOUR), "2 d 4 h");
    }
}
