//! Which certificates the relay served chain to this laptop's pinned roots (the check
//! `cm-tui admin trust show` makes for its `valid` column), for the administration screen's
//! certificates tab: the relay stores certificates but cannot make one, and this says which
//! it could not have made.

use super::{HostStreams, locked};
use crate::trust::OperatorTrust;
use proto::trust::{RevocationState, TrustBundle, Verifier};

impl HostStreams {
    /// [`vouched_by`] this laptop's trust; `None` on a relay-trusted laptop (no roots).
    pub fn vouched(&self, bundle: &TrustBundle, now_ms: u64) -> Option<Vec<bool>> {
        let trust = locked(self.trust.as_ref()?);
        trust
            .zero_trust()
            .then(|| vouched_by(&trust, bundle, now_ms))
    }
}

/// Per certificate of `bundle`: valid at `now_ms`, not revoked (by what `trust` knows, or by a
/// revocation list in `bundle` signed by a root or a certified admin), and signed by a pinned
/// root or by an admin whose chain reaches one. Nothing is kept: `trust` is not changed.
fn vouched_by(trust: &OperatorTrust, bundle: &TrustBundle, now_ms: u64) -> Vec<bool> {
    let mut all = trust.certs.clone();
    for c in &bundle.certs {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    let mut lists = RevocationState::default();
    for list in &bundle.revocations {
        // A list no root or certified admin signed is refused, as everywhere.
        let _ = lists.accept(list, &trust.roots, &all, now_ms);
    }
    let mut revoked = trust.revoked.clone();
    let served = lists.revoked();
    revoked.serials.extend(served.serials);
    revoked.keys.extend(served.keys);
    let verifier = Verifier::new(&trust.roots, &revoked);
    bundle
        .certs
        .iter()
        .map(|c| {
            c.open()
                .is_ok_and(|b| b.valid_at(now_ms) && !revoked.serials.contains(&b.serial))
                && verifier.is_admin_key(c.signer(), &all, now_ms)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::file::TrustFile;
    use proto::ids::UserId;
    use proto::rbac::Role;
    use proto::trust::{Cert, CertBody, DeviceKey, RevocationBody, RevocationList, Root, Subject};

    fn key(seed: u8) -> DeviceKey {
        DeviceKey::from_seed([seed; 32]).expect("a key")
    }

    fn grant(signer: &DeviceKey, serial: &str, user: &str, role: Role, not_after_ms: u64) -> Cert {
        let body = CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from(user),
                device_keys: vec![key(serial.len() as u8 + 10).public()],
                host: "*".into(),
                role,
            },
            not_before_ms: 0,
            not_after_ms,
        };
        Cert::sign(&body, signer)
    }

    #[test]
    fn only_certificates_signed_under_the_pinned_roots_and_still_valid_are_vouched_for() {
        let root = key(1);
        let admin = key(2);
        let relay = key(3);
        let file = TrustFile {
            roots: vec![Root {
                user: UserId::from("alice"),
                key: root.public(),
            }],
            ..TrustFile::default()
        };
        let mut trust = OperatorTrust::from_file(UserId::from("me"), key(9), file);
        // carol is an admin under the root, so what she signs chains to it.
        let carol = {
            let body = CertBody {
                serial: "c".into(),
                subject: Subject::User {
                    user: UserId::from("carol"),
                    device_keys: vec![admin.public()],
                    host: "*".into(),
                    role: Role::Admin,
                },
                not_before_ms: 0,
                not_after_ms: 1_000,
            };
            Cert::sign(&body, &root)
        };
        let certs = vec![
            carol,
            grant(&admin, "bob", "bob", Role::Operator, 1_000),
            grant(&relay, "mallory", "mallory", Role::Owner, 1_000),
            grant(&root, "old", "dave", Role::Viewer, 10),
            grant(&root, "gone", "erin", Role::Viewer, 1_000),
        ];
        trust.revoked.serials.insert("gone".into());
        let mut bundle = TrustBundle {
            certs,
            ..TrustBundle::default()
        };
        assert_eq!(
            vouched_by(&trust, &bundle, 500),
            [true, true, false, false, false],
            "root, admin under it, the relay's own key, expired, revoked"
        );
        // A list the root signed revokes bob's grant; one the relay's key signed is refused.
        let list = |signer: &DeviceKey, serial: &str| {
            let body = RevocationBody {
                issuer_user: UserId::from("alice"),
                seq: 1,
                issued_ms: 400,
                serials: vec![serial.into()],
                keys: Vec::new(),
            };
            RevocationList::sign(&body, signer)
        };
        bundle.revocations = vec![list(&root, "bob"), list(&relay, "c")];
        assert_eq!(
            vouched_by(&trust, &bundle, 500),
            [true, false, false, false, false]
        );
        assert!(!trust.revoked.serials.contains("bob"), "nothing kept");
    }
}
