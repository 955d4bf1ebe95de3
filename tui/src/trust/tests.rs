use super::file::{OwnList, TrustFile};
use super::*;
use crate::profile::{LoginHome, Profile};
use cm_client::secrets::StoreChoice;
use proto::handshake::Bytes32;
use proto::ids::CredId;
use proto::rbac::Role;
use proto::trust::{CertBody, RevocationBody, RevocationList};
use std::os::unix::fs::PermissionsExt as _;

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 86_400_000;

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

/// A test profile whose secrets live in the 0600-file store under `dir` (shared with the
/// connection task's token tests).
pub(crate) fn profile(dir: &std::path::Path) -> Profile {
    Profile {
        relay: "127.0.0.1:7443".into(),
        pin: "blake3:00".into(),
        user: UserId::from("olga"),
        cred_id: CredId::from("c1"),
        expires_at_ms: NOW + DAY,
        home: LoginHome {
            dir: dir.to_owned(),
            store: Some(StoreChoice::File),
            ..LoginHome::default()
        },
    }
}

fn cert(signer: &DeviceKey, serial: &str, subject: Subject) -> Cert {
    Cert::sign(
        &CertBody {
            serial: serial.into(),
            subject,
            not_before_ms: NOW - DAY,
            not_after_ms: NOW + DAY,
        },
        signer,
    )
}

fn host_cert(signer: &DeviceKey, serial: &str, host: &str, k: u8) -> Cert {
    cert(
        signer,
        serial,
        Subject::Host {
            host: HostId::from(host),
            host_key: X25519Public([k; 32]),
        },
    )
}

fn list(signer: &DeviceKey, seq: u64, serials: &[&str]) -> RevocationList {
    RevocationList::sign(
        &RevocationBody {
            issuer_user: UserId::from("olga"),
            seq,
            issued_ms: NOW,
            serials: serials.iter().map(|s| (*s).to_owned()).collect(),
            keys: vec![],
        },
        signer,
    )
}

fn trust_with_root(root: &DeviceKey) -> OperatorTrust {
    OperatorTrust {
        user: UserId::from("olga"),
        key: key(9),
        roots: vec![Root {
            user: UserId::from("olga"),
            key: root.public(),
        }],
        pins: proto::trust::RootPins::default(),
        certs: vec![],
        revoked: Revoked::default(),
        pinned_hosts: BTreeMap::new(),
    }
}

#[test]
fn trust_file_is_written_0600_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let path = file::path(tmp.path(), "olga@127.0.0.1:7443");
    let root = key(1);
    let mut f = TrustFile {
        roots: vec![Root {
            user: UserId::from("olga"),
            key: root.public(),
        }],
        certs: vec![host_cert(&root, "01", "box", 4)],
        own_list: OwnList {
            seq: 3,
            ..OwnList::default()
        },
        ..TrustFile::default()
    };
    f.binds.insert(HostId::from("box"), Bytes32([7; 32]));
    f.write(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let back = TrustFile::read(&path).unwrap();
    assert_eq!(back.roots, f.roots);
    assert_eq!(back.certs, f.certs);
    assert_eq!(back.binds, f.binds);
    assert_eq!(back.own_list.seq, 3);
    // Missing: empty.
    assert_eq!(
        TrustFile::read(&tmp.path().join("none.json")).unwrap(),
        TrustFile::default()
    );
}

#[test]
fn trust_file_readable_by_others_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = file::path(tmp.path(), "olga@r");
    TrustFile::default().write(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = TrustFile::read(&path).unwrap_err();
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn load_is_none_without_a_device_key_and_save_keeps_bind_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let p = profile(tmp.path());
    assert!(load(&p).unwrap().is_none());
    let secrets = p.home.secrets().unwrap();
    let (k, created) = device::ensure(&secrets, &p.account()).unwrap();
    assert!(created);
    let (again, created) = device::ensure(&secrets, &p.account()).unwrap();
    assert!(!created);
    assert_eq!(again.public(), k.public());
    // A bind secret written by the admin side survives an operator-side save.
    let mut f = TrustFile::default();
    f.binds.insert(HostId::from("box"), Bytes32([7; 32]));
    f.write(&file_path(&p)).unwrap();
    let mut t = load(&p).unwrap().unwrap();
    assert!(!t.zero_trust(), "no roots: relay-trusted");
    assert_eq!(t.key.public(), k.public());
    t.roots.push(Root {
        user: UserId::from("olga"),
        key: key(1).public(),
    });
    t.save(&p).unwrap();
    let back = load(&p).unwrap().unwrap();
    assert!(back.zero_trust());
    let f = TrustFile::read(&file_path(&p)).unwrap();
    assert_eq!(f.binds.len(), 1);
    // The seed is not in the trust file.
    let text = std::fs::read_to_string(file_path(&p)).unwrap();
    assert!(!text.contains(&hex::encode(k.seed())));
}

#[test]
fn merge_bundle_drops_forged_certs_and_pins_vouched_host_keys() {
    let root = key(1);
    let stranger = key(2);
    let mut t = trust_with_root(&root);
    let good = host_cert(&root, "01", "box", 4);
    let by_stranger = host_cert(&stranger, "02", "evil", 5);
    let mut flipped = host_cert(&root, "03", "other", 6);
    flipped.sig.0[0] ^= 1;
    let expired = Cert::sign(
        &CertBody {
            serial: "04".into(),
            subject: Subject::Host {
                host: HostId::from("old"),
                host_key: X25519Public([8; 32]),
            },
            not_before_ms: NOW - 2 * DAY,
            not_after_ms: NOW - DAY,
        },
        &root,
    );
    let summary = t.merge_bundle(
        TrustBundle {
            // The relay's roots are never pinned.
            roots: vec![Root {
                user: UserId::from("mallory"),
                key: stranger.public(),
            }],
            certs: vec![good.clone(), by_stranger, flipped, expired],
            ..TrustBundle::default()
        },
        NOW,
    );
    assert_eq!(summary.certs, 1);
    assert_eq!(summary.dropped, 3);
    assert_eq!(t.certs, vec![good]);
    assert_eq!(t.roots.len(), 1);
    assert_eq!(
        t.pinned_hosts.get(&HostId::from("box")),
        Some(&X25519Public([4; 32]))
    );
    assert!(!t.pinned_hosts.contains_key(&HostId::from("evil")));
}

#[test]
fn merge_bundle_refuses_revocation_lists_not_signed_by_a_root_or_admin() {
    let root = key(1);
    let stranger = key(2);
    let mut t = trust_with_root(&root);
    let revoked = host_cert(&root, "aa", "box", 4);
    let kept = host_cert(&root, "bb", "box2", 4);
    let mut forged = list(&root, 5, &["bb"]);
    forged.sig.0[3] ^= 1;
    let summary = t.merge_bundle(
        TrustBundle {
            certs: vec![revoked, kept.clone()],
            revocations: vec![list(&root, 1, &["aa"]), list(&stranger, 1, &["bb"]), forged],
            ..TrustBundle::default()
        },
        NOW,
    );
    assert_eq!(summary.lists, 1);
    assert_eq!(summary.lists_refused, 2);
    assert!(t.revoked.serials.contains("aa"));
    assert!(!t.revoked.serials.contains("bb"));
    assert_eq!(t.certs, vec![kept]);
    assert!(!t.pinned_hosts.contains_key(&HostId::from("box")));
}

#[test]
fn merge_bundle_keeps_admin_issued_grants_only_under_a_root_signed_admin_cert() {
    let root = key(1);
    let admin = key(3);
    let mut t = trust_with_root(&root);
    let admin_cert = cert(
        &root,
        "a1",
        Subject::User {
            user: UserId::from("ada"),
            device_keys: vec![admin.public()],
            host: "*".into(),
            role: Role::Admin,
        },
    );
    let by_admin = cert(
        &admin,
        "a2",
        Subject::User {
            user: UserId::from("olga"),
            device_keys: vec![t.key.public()],
            host: "box".into(),
            role: Role::Operator,
        },
    );
    let s = t.merge_bundle(
        TrustBundle {
            certs: vec![by_admin.clone()],
            ..TrustBundle::default()
        },
        NOW,
    );
    assert_eq!(s.dropped, 1, "admin without a root-signed admin cert");
    let s = t.merge_bundle(
        TrustBundle {
            certs: vec![by_admin, admin_cert],
            ..TrustBundle::default()
        },
        NOW,
    );
    assert_eq!(s.certs, 2);
    assert_eq!(t.my_certs(NOW).len(), 2);
}

mod admin_signing {
    use super::*;
    use crate::trust::admin::{self, Authority, CertifyError};
    use proto::admin::GrantInfo;
    use proto::trust::HostKeyClaim;

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn host_claims_are_certified_only_with_the_bind_secret_this_laptop_holds() {
        let root = key(1);
        let mut t = trust_with_root(&root);
        t.key = key(1);
        let bind = Bytes32([7; 32]);
        let mut binds = BTreeMap::new();
        binds.insert(HostId::from("box"), bind);
        binds.insert(HostId::from("box2"), Bytes32([8; 32]));
        let good = HostKeyClaim::new(HostId::from("box"), X25519Public([4; 32]), &bind);
        // A relay substituting its own key cannot prove the bind secret.
        let forged = HostKeyClaim::new(
            HostId::from("box2"),
            X25519Public([5; 32]),
            &Bytes32([9; 32]),
        );
        // A host this laptop did not add is left alone.
        let foreign = HostKeyClaim::new(HostId::from("other"), X25519Public([6; 32]), &bind);
        let (certs, bad) =
            admin::certify_claims(&t, &binds, &[good, forged, foreign], None, NOW, counter());
        assert_eq!(bad, vec![HostId::from("box2")]);
        assert_eq!(certs.len(), 1);
        t.merge_bundle(
            TrustBundle {
                certs,
                ..TrustBundle::default()
            },
            NOW,
        );
        assert_eq!(
            t.host_key(&HostId::from("box"), NOW),
            Ok(X25519Public([4; 32]))
        );
    }

    #[test]
    fn an_admin_who_is_not_a_root_cannot_certify_above_operator() {
        let root = key(1);
        let t = trust_with_root(&root);
        let grants = [GrantInfo {
            host: "*".into(),
            role: Role::Admin,
        }];
        let err = admin::user_certs(
            &t,
            Authority::Admin,
            &UserId::from("bob"),
            &[key(5).public()],
            &grants,
            NOW,
            counter(),
        )
        .unwrap_err();
        assert!(matches!(err, CertifyError::AboveOperator { .. }));
        assert!(err.to_string().contains("up to operator"), "{err}");
        let err = admin::user_certs(
            &t,
            Authority::None,
            &UserId::from("bob"),
            &[key(5).public()],
            &grants,
            NOW,
            counter(),
        )
        .unwrap_err();
        assert_eq!(err, CertifyError::CannotSign);
    }

    #[test]
    fn a_root_certifies_each_grant_and_the_host_verifies_the_role() {
        let root = key(1);
        let mut t = trust_with_root(&root);
        t.key = key(1);
        let bob = key(5).public();
        let grants = [
            GrantInfo {
                host: "box".into(),
                role: Role::Operator,
            },
            GrantInfo {
                host: "*".into(),
                role: Role::Viewer,
            },
        ];
        let certs = admin::user_certs(
            &t,
            Authority::Root,
            &UserId::from("bob"),
            &[bob],
            &grants,
            NOW,
            counter(),
        )
        .unwrap();
        assert_eq!(certs.len(), 2);
        let v = Verifier::new(&t.roots, &t.revoked);
        let bob_user = UserId::from("bob");
        assert_eq!(
            v.role_of(&bob_user, &bob, &HostId::from("box"), &certs, NOW),
            Ok(Role::Operator)
        );
        assert_eq!(
            v.role_of(&bob_user, &bob, &HostId::from("elsewhere"), &certs, NOW),
            Ok(Role::Viewer)
        );
        assert_eq!(admin::user_serials(&certs, &bob_user, Some("box")).len(), 1);
    }

    #[test]
    fn own_revocation_list_seq_never_goes_back_after_a_lost_trust_file() {
        let root = key(1);
        let mut t = trust_with_root(&root);
        t.key = key(1);
        let mut own = OwnList::default();
        let first = admin::sign_own_list(&t, &mut own, NOW).open().unwrap();
        let second = admin::sign_own_list(&t, &mut own, NOW).open().unwrap();
        assert!(second.seq > first.seq);
        // A fresh file (seq 0) later still publishes a higher seq than before.
        let mut lost = OwnList::default();
        let later = admin::sign_own_list(&t, &mut lost, NOW + 1_000)
            .open()
            .unwrap();
        assert!(later.seq > second.seq);
        assert_eq!(later.issued_ms, NOW + 1_000);
    }
}
