//! `cm-agent doctor`'s trust lines: the mode, and for a zero-trust host its end-to-end key, the
//! freshness of the newest owner-signed revocation list (stale or none: new work is refused, so
//! that is a failure with what to do) and where signatures are checked beside the work.

use super::show::{Freshness, RELAY_TRUSTED_HINT, report};
use cm_client::finding::Finding;
use std::path::Path;

/// The trust findings from `state_dir`; `key_found` says whether the secret store holds the
/// end-to-end key (asked only of zero-trust hosts by the caller; `None`: not asked).
pub fn findings(
    state_dir: &Path,
    key_found: Option<bool>,
    max_age_ms: u64,
    now_ms: u64,
) -> Vec<Finding> {
    let report = match report(state_dir, None, max_age_ms, now_ms) {
        Ok(r) => r,
        Err(e) => return vec![Finding::fail("trust", e.to_string())],
    };
    if report.freshness == Freshness::NotNeeded {
        return vec![Finding::ok("trust", RELAY_TRUSTED_HINT)];
    }
    let roots: Vec<String> = report
        .roots
        .iter()
        .map(|r| format!("{} {}", r.user, r.fingerprint))
        .collect();
    let mut out = vec![Finding::ok(
        "trust",
        format!(
            "zero-trust: operators are verified here against {}",
            roots.join(", ")
        ),
    )];
    out.push(signature_checks(
        crate::signature_check::IdleVerifier::start().is_idle_class(),
    ));
    if key_found == Some(false) {
        out.push(Finding::fail(
            "host key",
            "no end-to-end key in the secret store; re-enroll with a token from `cm-tui admin host add` (the agent does not start without it)",
        ));
    }
    let line = report.freshness.describe(max_age_ms);
    // A host enrolled a moment ago has no list yet: the relay hands it over at the first
    // connection. Only once the limit has passed since enrollment is "none" a problem.
    let enrolled_ms = super::store::TrustFile::load(state_dir)
        .ok()
        .flatten()
        .map_or(0, |f| f.enrolled_ms);
    let just_enrolled = now_ms.saturating_sub(enrolled_ms) <= max_age_ms;
    out.push(match report.freshness {
        Freshness::Fresh { .. } | Freshness::NotNeeded => Finding::ok("revocations", line),
        Freshness::None if just_enrolled => Finding::ok(
            "revocations",
            "none yet: the relay hands the owner-signed list over when the agent connects \
             (new work waits for it)",
        ),
        Freshness::None | Freshness::Stale { .. } | Freshness::Ahead { .. } => {
            Finding::fail("revocations", line)
        }
    });
    out
}

/// Where a zero-trust host verifies the signatures it checks beside the work
/// ([`crate::signature_check`]). Without the idle class the checks are as correct, only
/// competing with the answers for the cores, so that is not a failure.
fn signature_checks(idle_class: bool) -> Finding {
    Finding::ok(
        "signatures",
        if idle_class {
            "beside the work, at the idle scheduling class (a core only when nothing else wants one)"
        } else {
            "beside the work, at the normal class: this system refused the idle scheduling class \
             (SCHED_IDLE; a seccomp or container profile?), so checks share the cores with the \
             answers under load"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::store::{TrustFile, TrustMode, save_revocations};
    use super::*;
    use proto::ids::HostId;
    use proto::trust::{DeviceKey, RevocationBody, Root, Signed};

    const HOUR: u64 = 3_600_000;

    fn lines(f: &[Finding]) -> Vec<String> {
        f.iter().map(Finding::line).collect()
    }

    #[test]
    fn doctor_says_relay_trusted_hosts_are_fine_but_can_be_re_enrolled() {
        let tmp = tempfile::tempdir().unwrap();
        let f = findings(tmp.path(), None, HOUR, 0);
        assert_eq!(f.len(), 1);
        assert!(f[0].problem.is_none());
        assert!(f[0].detail.contains("relay-trusted"), "{:?}", lines(&f));
    }

    #[test]
    fn doctor_fails_a_zero_trust_host_without_fresh_revocations_or_key() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([3; 32]).unwrap();
        TrustFile {
            version: 1,
            mode: TrustMode::ZeroTrust,
            host: HostId::from("box"),
            relay: "r:1".into(),
            roots: vec![Root {
                user: "olivia".into(),
                key: owner.public(),
            }],
            bind: None,
            enrolled_ms: 0,
            rotations: Default::default(),
        }
        .save(tmp.path())
        .unwrap();
        let just = findings(tmp.path(), Some(true), HOUR, HOUR / 2);
        let text = lines(&just).join("\n");
        assert!(
            text.contains("ok    revocations") && text.contains("when the agent connects"),
            "a host enrolled a moment ago: {text}"
        );
        let none = findings(tmp.path(), Some(true), HOUR, 5 * HOUR);
        let text = lines(&none).join("\n");
        assert!(
            text.contains("ok    trust") && text.contains("zero-trust"),
            "{text}"
        );
        assert!(
            text.contains("FAIL  revocations") && text.contains("none yet"),
            "{text}"
        );
        let list = Signed::sign(
            &RevocationBody {
                issuer_user: "olivia".into(),
                seq: 1,
                issued_ms: 3 * HOUR,
                serials: Vec::new(),
                keys: Vec::new(),
            },
            &owner,
        );
        save_revocations(tmp.path(), &[list], &[]).unwrap();
        let stale = lines(&findings(tmp.path(), Some(true), HOUR, 5 * HOUR)).join("\n");
        assert!(
            stale.contains("FAIL  revocations") && stale.contains("2 h 0 min old"),
            "{stale}"
        );
        assert!(stale.contains("limit 1 h 0 min"), "{stale}");
        let fresh = lines(&findings(tmp.path(), Some(true), 3 * HOUR, 5 * HOUR)).join("\n");
        assert!(fresh.contains("ok    revocations"), "{fresh}");
        assert!(
            fresh.contains("ok    signatures") && fresh.contains("idle scheduling class"),
            "{fresh}"
        );
        let no_key = lines(&findings(tmp.path(), Some(false), 3 * HOUR, 5 * HOUR)).join("\n");
        assert!(no_key.contains("FAIL  host key"), "{no_key}");
    }

    #[test]
    fn without_the_idle_class_doctor_says_why_checks_share_the_cores_and_does_not_fail() {
        let f = signature_checks(false);
        assert!(f.problem.is_none());
        assert!(
            f.line().contains("refused the idle scheduling class"),
            "{}",
            f.line()
        );
    }
}
