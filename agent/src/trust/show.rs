//! `cm-agent trust show` and the doctor's trust lines: what this host pins and holds, read from
//! its state folder (the running agent is not asked).

use super::store::{StoreError, TrustFile, load_revocations};
use proto::trust::{Root, RootPins, Subject, X25519Public};
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
    /// Certificates operators showed (newest first).
    pub certs: Vec<CertLine>,
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
    /// `active`, `retiring` (replaced by a rotation, still trusted until `until_ms`) or
    /// `retired` (never trusted again).
    pub state: &'static str,
    /// For a retiring root: trusted until (unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// For a retiring root: its successor's fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
}

/// The report's lines for `pins` at `now_ms`: active roots, then retiring (a root whose
/// overlap ended counts as retired), then retired.
fn root_lines(pins: &RootPins, now_ms: u64) -> Vec<RootLine> {
    let line = |r: &Root, state| RootLine {
        user: r.user.to_string(),
        fingerprint: r.key.fingerprint(),
        state,
        until_ms: None,
        replaced_by: None,
    };
    let mut out: Vec<RootLine> = pins.active.iter().map(|r| line(r, "active")).collect();
    for r in &pins.retiring {
        if now_ms < r.until_ms {
            out.push(RootLine {
                until_ms: Some(r.until_ms),
                replaced_by: Some(r.replaced_by.fingerprint()),
                ..line(&r.root, "retiring")
            });
        }
    }
    let ended = pins
        .retiring
        .iter()
        .filter(|r| now_ms >= r.until_ms)
        .map(|r| &r.root);
    out.extend(pins.retired.iter().chain(ended).map(|r| line(r, "retired")));
    out
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

/// A certificate an operator showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertLine {
    /// Its serial.
    pub serial: String,
    /// What it says, e.g. `user alice: operator on *` or `host box: x25519:…`.
    pub subject: String,
    /// The issuing key's fingerprint.
    pub issuer: String,
    /// Valid until (unix ms).
    pub not_after_ms: u64,
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
    /// The only owner-signed lists are dated more than the replay window ahead of this clock:
    /// they do not count, and new work is refused.
    Ahead {
        /// How far ahead the nearest one is, in ms.
        ahead_ms: u64,
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
            certs: Vec::new(),
            hint: Some(RELAY_TRUSTED_HINT),
        });
    };
    let mut lists = Vec::new();
    // Judged as the host judges them (`RevocationState::check_fresh`).
    let mut judged = proto::trust::RevocationState::default();
    let held = load_revocations(state_dir)?;
    let pins = file.pins();
    let trusted = pins.trusted(now_ms);
    for list in &held.lists {
        // Held lists were verified when taken; one that no longer opens is not shown.
        let Ok(body) = list.open() else { continue };
        let root = trusted.iter().any(|r| r.key == *list.signer());
        let _ = judged.restore(list);
        lists.push(ListLine {
            issuer_user: body.issuer_user.to_string(),
            signer: list.signer().fingerprint(),
            root,
            seq: body.seq,
            age_ms: now_ms.saturating_sub(body.issued_ms),
            revoked: body.serials.len() + body.keys.len(),
        });
    }
    let newest_root_ms = judged.newest_root_issued_ms(&trusted, now_ms);
    let freshness = match newest_root_ms.map(|ms| now_ms.saturating_sub(ms)) {
        None => match judged.nearest_root_ahead_ms(&trusted, now_ms) {
            Some(ms) => Freshness::Ahead {
                ahead_ms: ms.saturating_sub(now_ms),
            },
            None => Freshness::None,
        },
        Some(age_ms) if age_ms > max_age_ms => Freshness::Stale { age_ms },
        Some(age_ms) => Freshness::Fresh { age_ms },
    };
    Ok(TrustReport {
        mode: "zero-trust",
        host: Some(file.host.to_string()),
        roots: root_lines(&pins, now_ms),
        host_key: host_key.map(|k| k.fingerprint()),
        revocation_lists: lists,
        freshness,
        revocation_max_age_ms: max_age_ms,
        certs: held.certs.iter().filter_map(cert_line).collect(),
        hint: None,
    })
}

fn cert_line(cert: &proto::trust::Cert) -> Option<CertLine> {
    let body = cert.open().ok()?;
    let subject = match body.subject {
        Subject::User {
            user, host, role, ..
        } => format!("user {user}: {role} on {host}"),
        Subject::Host { host, host_key } => format!("host {host}: {}", host_key.fingerprint()),
    };
    Some(CertLine {
        serial: body.serial,
        subject,
        issuer: cert.signer().fingerprint(),
        not_after_ms: body.not_after_ms,
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
            Self::Ahead { ahead_ms } => format!(
                "dated ahead: the owner-signed lists are dated {} ahead of this host's clock and do not count; new work is refused: check the clock of the laptop that signed them (and this host's), then run `cm-tui admin trust refresh`",
                human_age(*ahead_ms)
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
            let state = match (r.until_ms, &r.replaced_by) {
                (Some(until), Some(by)) => format!(
                    "retiring: replaced by {by}, still trusted until {}",
                    cm_client::time::utc(until)
                ),
                _ => r.state.to_owned(),
            };
            let _ = writeln!(out, "  {}  {}  {state}", r.user, r.fingerprint);
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
        if !self.certs.is_empty() {
            let _ = writeln!(out, "certificates operators showed:");
        }
        for c in &self.certs {
            let _ = writeln!(
                out,
                "  {}  serial {}  by {}  until {}",
                c.subject,
                c.serial,
                c.issuer,
                cm_client::time::utc(c.not_after_ms)
            );
        }
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
            rotations: Default::default(),
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
        let grant = Signed::sign(
            &proto::trust::CertBody {
                serial: "00ff".into(),
                subject: Subject::User {
                    user: "alice".into(),
                    device_keys: vec![admin.public()],
                    host: "*".into(),
                    role: proto::rbac::Role::Operator,
                },
                not_before_ms: 0,
                not_after_ms: 20 * HOUR,
            },
            &owner,
        );
        save_revocations(
            tmp.path(),
            &[list(&owner, 8 * HOUR), list(&admin, 10 * HOUR)],
            &[grant],
        )
        .unwrap();
        let key = X25519Public([9; 32]);
        let r = report(tmp.path(), Some(key), HOUR, 10 * HOUR).unwrap();
        assert_eq!(r.mode, "zero-trust");
        assert_eq!(r.roots[0].fingerprint, owner.public().fingerprint());
        assert_eq!(r.roots[0].state, "active");
        assert_eq!(r.host_key, Some(key.fingerprint()));
        assert_eq!(r.revocation_lists.len(), 2);
        // The admin's newer list does not make the owner's old one fresh.
        assert_eq!(r.freshness, Freshness::Stale { age_ms: 2 * HOUR });
        let text = r.render();
        assert!(text.contains("olivia"), "{text}");
        assert!(text.contains("stale"), "{text}");
        assert!(text.contains("user alice: operator on *"), "{text}");
        assert_eq!(r.certs[0].issuer, owner.public().fingerprint());
        let fresh = report(tmp.path(), None, 3 * HOUR, 10 * HOUR).unwrap();
        assert_eq!(fresh.freshness, Freshness::Fresh { age_ms: 2 * HOUR });
        let json = serde_json::to_value(&fresh).unwrap();
        assert_eq!(json["mode"], "zero-trust");
        assert_eq!(json["freshness"]["state"], "fresh");
        // Seen from a clock an hour behind the owner's list: dated ahead, as the host judges it.
        let ahead = report(tmp.path(), None, HOUR, 7 * HOUR).unwrap();
        assert_eq!(ahead.freshness, Freshness::Ahead { ahead_ms: HOUR });
        assert!(ahead.render().contains("dated ahead"), "{}", ahead.render());
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(5 * 60_000), "5 min");
        assert_eq!(human_age(200 * 60_000), "3 h 20 min");
        assert_eq!(human_age(52 * HOUR), "2 d 4 h");
    }

    #[test]
    fn a_rotated_root_shows_the_new_one_active_and_the_old_one_retiring_then_retired() {
        let tmp = tempfile::tempdir().unwrap();
        let old = DeviceKey::from_seed([4; 32]).unwrap();
        let new = DeviceKey::from_seed([6; 32]).unwrap();
        enroll(tmp.path(), &old);
        let mut file = TrustFile::load(tmp.path()).unwrap().unwrap();
        let mut pins = file.pins();
        let statement = Signed::sign(
            &proto::trust::RotationBody {
                user: "olivia".into(),
                old_key: old.public(),
                new_key: new.public(),
                seq: 1,
                issued_ms: HOUR,
            },
            &old,
        );
        pins.accept(&statement, HOUR, 24 * HOUR).unwrap();
        file.set_pins(pins);
        file.save(tmp.path()).unwrap();
        let r = report(tmp.path(), None, HOUR, 2 * HOUR).unwrap();
        let states: Vec<_> = r
            .roots
            .iter()
            .map(|l| (l.fingerprint.clone(), l.state))
            .collect();
        assert_eq!(
            states,
            vec![
                (new.public().fingerprint(), "active"),
                (old.public().fingerprint(), "retiring")
            ]
        );
        assert_eq!(r.roots[1].until_ms, Some(25 * HOUR));
        let text = r.render();
        assert!(
            text.contains(&format!(
                "retiring: replaced by {}",
                new.public().fingerprint()
            )),
            "{text}"
        );
        // After the overlap, the old root shows as retired.
        let later = report(tmp.path(), None, HOUR, 26 * HOUR).unwrap();
        assert_eq!(later.roots[1].state, "retired");
    }
}
