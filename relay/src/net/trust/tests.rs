use super::*;
use proto::trust::{DeviceKey, HostKeyClaim, Signed, X25519Public};

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

fn user_cert(serial: &str, host: &str, not_after_ms: u64) -> Cert {
    Signed::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from("bob"),
                device_keys: vec![key(9).public()],
                host: host.into(),
                role: Role::Operator,
            },
            not_before_ms: 0,
            not_after_ms,
        },
        &key(1),
    )
}

fn host_cert(serial: &str, host: &str) -> Cert {
    Signed::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::Host {
                host: HostId::from(host),
                host_key: X25519Public([3; 32]),
            },
            not_before_ms: 0,
            not_after_ms: u64::MAX,
        },
        &key(1),
    )
}

fn certs(certs: Vec<Cert>) -> TrustBundle {
    TrustBundle {
        certs,
        ..TrustBundle::default()
    }
}

fn refusal(r: Result<Checked, RequestError>) -> String {
    match r {
        Err(e) => e.wire().message,
        Ok(c) => panic!("accepted: {c:?}"),
    }
}

#[test]
fn publish_refuses_a_certificate_with_any_bit_flipped() {
    let good = user_cert("00aa", "*", u64::MAX);
    let mut sig = good.clone();
    sig.sig.0[5] ^= 1;
    let mut payload = good.clone();
    payload.payload.replace_range(3..4, "A");
    let mut signer = good.clone();
    signer.key = key(2).public();
    for (what, forged) in [("signature", sig), ("payload", payload), ("signer", signer)] {
        let m = refusal(check_publish(
            certs(vec![good.clone(), forged]),
            &UserId::from("admin"),
            Some(Role::Admin),
            1,
        ));
        assert!(m.contains("certificate 2"), "{what}: {m}");
        assert!(m.contains("exactly as cm-tui signed them"), "{what}: {m}");
    }
    let ok = check_publish(
        certs(vec![good]),
        &UserId::from("admin"),
        Some(Role::Admin),
        1,
    )
    .unwrap();
    assert_eq!(ok.certs.len(), 1);
}

#[test]
fn publish_refuses_a_forged_revocation_list_and_an_expired_certificate() {
    let body = RevocationBody {
        issuer_user: UserId::from("owner"),
        seq: 1,
        issued_ms: 1,
        serials: vec![],
        keys: vec![],
    };
    let mut list = Signed::sign(&body, &key(1));
    list.sig.0[0] ^= 0x80;
    let m = refusal(check_publish(
        TrustBundle {
            revocations: vec![list],
            ..TrustBundle::default()
        },
        &UserId::from("admin"),
        Some(Role::Admin),
        1,
    ));
    assert!(m.contains("revocation list 1"), "{m}");
    let m = refusal(check_publish(
        certs(vec![user_cert("00bb", "*", 10)]),
        &UserId::from("admin"),
        Some(Role::Admin),
        10,
    ));
    assert!(m.contains("expired"), "{m}");
    let m = refusal(check_publish(
        certs(vec![user_cert("bad serial!", "*", u64::MAX)]),
        &UserId::from("admin"),
        Some(Role::Admin),
        1,
    ));
    assert!(m.contains("serial"), "{m}");
}

#[test]
fn a_root_is_announced_only_by_an_owner_for_their_own_name() {
    let root = |user: &str| TrustBundle {
        roots: vec![Root {
            user: UserId::from(user),
            key: key(1).public(),
        }],
        ..TrustBundle::default()
    };
    let owner = UserId::from("olga");
    assert_eq!(
        check_publish(root("olga"), &owner, Some(Role::Owner), 1)
            .unwrap()
            .roots
            .len(),
        1
    );
    let m = refusal(check_publish(root("eve"), &owner, Some(Role::Owner), 1));
    assert!(m.contains("for their own name"), "{m}");
    let admin = UserId::from("adam");
    let m = refusal(check_publish(root("adam"), &admin, Some(Role::Admin), 1));
    assert!(m.contains("only by an owner"), "{m}");
}

#[test]
fn publish_refuses_claims_and_pending_keys_and_takes_an_empty_bundle() {
    let claim = HostKeyClaim::new(
        HostId::from("box"),
        X25519Public([1; 32]),
        &proto::handshake::Bytes32([2; 32]),
    );
    let m = refusal(check_publish(
        TrustBundle {
            claims: vec![claim],
            ..TrustBundle::default()
        },
        &UserId::from("o"),
        Some(Role::Owner),
        1,
    ));
    assert!(m.contains("recorded by the relay itself"), "{m}");
    // Nothing to publish (nothing newly certified) is no error: nothing is stored.
    let empty = check_publish(
        TrustBundle::default(),
        &UserId::from("o"),
        Some(Role::Owner),
        1,
    )
    .unwrap();
    assert!(empty.certs.is_empty() && empty.revocations.is_empty() && empty.roots.is_empty());
}

#[test]
fn fetch_for_a_host_keeps_its_own_host_certificate_and_claim_and_every_user_certificate() {
    let claim = |h: &str| {
        HostKeyClaim::new(
            HostId::from(h),
            X25519Public([1; 32]),
            &proto::handshake::Bytes32([2; 32]),
        )
    };
    let bundle = TrustBundle {
        certs: vec![
            host_cert("01", "box"),
            host_cert("02", "other"),
            user_cert("03", "*", u64::MAX),
            user_cert("04", "other", u64::MAX),
        ],
        claims: vec![claim("box"), claim("other")],
        ..TrustBundle::default()
    };
    let narrowed = narrow(bundle.clone(), Some(&HostId::from("box")));
    assert_eq!(
        narrowed.certs,
        vec![
            host_cert("01", "box"),
            user_cert("03", "*", u64::MAX),
            user_cert("04", "other", u64::MAX)
        ]
    );
    assert_eq!(narrowed.claims, vec![claim("box")]);
    assert_eq!(narrow(bundle.clone(), None), bundle);
}

#[test]
fn a_signed_header_is_noted_with_its_signer_and_body_hash_and_sealed_when_channelled() {
    let mut header = StreamHeader::new(Op::Prompt, proto::ids::ReqId(7));
    header.host = Some(HostId::from("box"));
    let k = key(4);
    proto::trust::header::sign(
        &mut header,
        proto::trust::header::SignInput {
            user: &UserId::from("bob"),
            key: &k,
            nonce: [1; 16],
            now_ms: 5,
            body: Some("ab12".into()),
            channel: Some("00ff".into()),
            template: None,
        },
    )
    .unwrap();
    assert!(is_sealed_stream(&header));
    assert_eq!(
        signed_header(&header).unwrap().0,
        format!(
            "signed by {} body blake3:ab12 sealed",
            k.public().fingerprint()
        )
    );
    header.auth = None;
    assert!(!is_sealed_stream(&header));
}
