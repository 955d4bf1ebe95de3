//! Zero-trust objects in the store, on both backends: certificates by serial, the newest
//! revocation list per signer, each host's newest key claim, pending device keys (first sight
//! kept), announced roots.

use super::test_db::on_both_backends;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::trust::{
    Cert, CertBody, DeviceKey, HostKeyClaim, PendingDevice, RevocationBody, RevocationList, Root,
    RootRotation, RotationBody, Signed, Subject, X25519Public,
};

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

fn cert(serial: &str, signer: &DeviceKey, role: Role) -> Cert {
    Signed::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from("bob"),
                device_keys: vec![key(9).public()],
                host: "*".into(),
                role,
            },
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        },
        signer,
    )
}

fn list(signer: &DeviceKey, seq: u64) -> (RevocationBody, RevocationList) {
    let body = RevocationBody {
        issuer_user: UserId::from("owner"),
        seq,
        issued_ms: seq * 10,
        serials: vec![format!("s{seq}")],
        keys: vec![],
    };
    let list = Signed::sign(&body, signer);
    (body, list)
}

fn claim(host: &str, k: u8) -> HostKeyClaim {
    HostKeyClaim::new(
        HostId::from(host),
        X25519Public([k; 32]),
        &proto::handshake::Bytes32([7; 32]),
    )
}

on_both_backends! {
    fn a_certificate_is_stored_once_per_serial_and_another_under_its_serial_is_refused(s) {
        let c = cert("00aa", &key(1), Role::Operator);
        assert!(s.trust_put_cert("00aa", &c, 1).unwrap());
        assert!(!s.trust_put_cert("00aa", &c, 2).unwrap());
        let other = cert("00aa", &key(1), Role::Owner);
        let refused = s.trust_put_cert("00aa", &other, 3).unwrap_err();
        assert!(refused.to_string().contains("sign a new certificate"), "{refused}");
        assert!(s.trust_put_cert("00bb", &cert("00bb", &key(2), Role::Viewer), 4).unwrap());
        let bundle = s.trust_bundle().unwrap();
        assert_eq!(bundle.certs, vec![c, cert("00bb", &key(2), Role::Viewer)]);
    }

    fn only_a_newer_revocation_list_replaces_its_signers_list(s) {
        let (owner, admin) = (key(1), key(2));
        let (b2, l2) = list(&owner, 2);
        assert!(s.trust_put_revocation(&b2, &l2).unwrap());
        let (b1, l1) = list(&owner, 1);
        assert!(!s.trust_put_revocation(&b1, &l1).unwrap(), "an older list was taken");
        assert!(!s.trust_put_revocation(&b2, &l2).unwrap());
        let (a5, la5) = list(&admin, 5);
        assert!(s.trust_put_revocation(&a5, &la5).unwrap());
        let (b3, l3) = list(&owner, 3);
        assert!(s.trust_put_revocation(&b3, &l3).unwrap());
        let mut lists = s.revocation_lists().unwrap();
        lists.sort_by_key(|l| l.payload.clone());
        let mut want = vec![l3, la5];
        want.sort_by_key(|l| l.payload.clone());
        assert_eq!(lists, want);
        assert_eq!(s.trust_bundle().unwrap().revocations.len(), 2);
    }

    fn a_hosts_newest_key_claim_replaces_the_previous_one(s) {
        s.trust_put_claim(&claim("box", 1), 1).unwrap();
        s.trust_put_claim(&claim("other", 2), 1).unwrap();
        s.trust_put_claim(&claim("box", 3), 2).unwrap();
        assert_eq!(
            s.trust_bundle().unwrap().claims,
            vec![claim("box", 3), claim("other", 2)]
        );
    }

    fn a_pending_device_keeps_its_first_sighting_and_roots_are_kept_once(s) {
        let first = PendingDevice {
            user: UserId::from("bob"),
            key: key(9).public(),
            seen_ms: 100,
            label: Some("laptop".into()),
        };
        assert!(s.trust_add_pending(&first).unwrap());
        let later = PendingDevice { seen_ms: 900, label: Some("other".into()), ..first.clone() };
        assert!(!s.trust_add_pending(&later).unwrap());
        let carol = PendingDevice { user: UserId::from("carol"), seen_ms: 200, label: None, ..first.clone() };
        assert!(s.trust_add_pending(&carol).unwrap());
        let root = Root { user: UserId::from("owner"), key: key(1).public() };
        assert!(s.trust_add_root(&root, 5).unwrap());
        assert!(!s.trust_add_root(&root, 6).unwrap());
        let bundle = s.trust_bundle().unwrap();
        assert_eq!(bundle.pending, vec![first, carol]);
        assert_eq!(bundle.roots, vec![root]);
    }

    fn an_empty_store_serves_an_empty_bundle(s) {
        assert_eq!(s.trust_bundle().unwrap(), proto::trust::TrustBundle::default());
        assert!(s.revocation_lists().unwrap().is_empty());
    }
}

fn rotation(old: &DeviceKey, new: &DeviceKey, seq: u64) -> (RotationBody, RootRotation) {
    let body = RotationBody {
        user: UserId::from("owner"),
        old_key: old.public(),
        new_key: new.public(),
        seq,
        issued_ms: seq * 10,
    };
    let statement = Signed::sign(&body, old);
    (body, statement)
}

on_both_backends! {
    fn root_rotations_are_kept_newest_per_replaced_root_and_served_in_order(s) {
        let (b1, r1) = rotation(&key(1), &key(2), 1);
        assert!(s.trust_put_rotation(&b1, &r1).unwrap());
        assert!(!s.trust_put_rotation(&b1, &r1).unwrap(), "stored twice");
        let (b2, r2) = rotation(&key(2), &key(3), 2);
        assert!(s.trust_put_rotation(&b2, &r2).unwrap());
        // An older statement about a root already held is not taken.
        let (b0, r0) = rotation(&key(2), &key(4), 1);
        assert!(!s.trust_put_rotation(&b0, &r0).unwrap());
        assert_eq!(s.root_rotations().unwrap(), vec![r1.clone(), r2.clone()]);
        assert_eq!(s.trust_bundle().unwrap().rotations, vec![r1, r2]);
    }
}
