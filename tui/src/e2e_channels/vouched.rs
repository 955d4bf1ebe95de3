//! Which certificates the relay served chain to this laptop's pinned roots (the check
//! `cm-tui admin trust show` makes for its `valid` column), for the administration screen's
//! certificates tab: the relay stores certificates but cannot make one, and this says which
//! it could not have made.

use super::{HostStreams, locked};
use crate::trust::OperatorTrust;
use proto::trust::{Cert, Verifier};

impl HostStreams {
    /// [`vouched_by`] this laptop's trust; `None` on a relay-trusted laptop (no roots).
    pub fn vouched(&self, certs: &[Cert], now_ms: u64) -> Option<Vec<bool>> {
        let trust = locked(self.trust.as_ref()?);
        trust
            .zero_trust()
            .then(|| vouched_by(&trust, certs, now_ms))
    }
}

/// Per certificate of `certs`: valid at `now_ms`, not revoked as far as `trust` knows, and
/// signed by a pinned root or by an admin whose chain reaches one.
fn vouched_by(trust: &OperatorTrust, certs: &[Cert], now_ms: u64) -> Vec<bool> {
    let mut all = trust.certs.clone();
    for c in certs {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    let verifier = Verifier::new(&trust.roots, &trust.revoked);
    certs
        .iter()
        .map(|c| {
            c.open()
                .is_ok_and(|b| b.valid_at(now_ms) && !trust.revoked.serials.contains(&b.serial))
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
    use proto::trust::{CertBody, DeviceKey, Root, Subject};

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
        assert_eq!(
            vouched_by(&trust, &certs, 500),
            [true, true, false, false, false],
            "root, admin under it, the relay's own key, expired, revoked"
        );
    }
}
