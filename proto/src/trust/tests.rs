use super::header::{self, SignInput, nonce_window};
use super::revocation::Revoked;
use super::*;
use crate::bytes32::Bytes32;
use crate::ids::{HostId, ReqId, UserId};
use crate::opcode::Op;
use crate::rbac::Role;
use proptest::prelude::*;

/// A stand-in for `crate::header::StreamHeader` with the same fields (this module does not
/// depend on that one; the real header implements [`header::HeaderFields`] the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamHeader {
    pub(super) op: Op,
    pub(super) req_id: ReqId,
    pub(super) host: Option<HostId>,
    pub(super) workspace: Option<String>,
    pub(super) session: Option<String>,
    pub(super) auth: Option<HeaderAuth>,
    pub(super) mac: Option<String>,
}

impl StreamHeader {
    fn new(op: Op, req_id: ReqId) -> Self {
        Self {
            op,
            req_id,
            host: None,
            workspace: None,
            session: None,
            auth: None,
            mac: None,
        }
    }
}

impl header::HeaderFields for StreamHeader {
    fn op(&self) -> Op {
        self.op
    }
    fn req_id(&self) -> ReqId {
        self.req_id
    }
    fn host(&self) -> Option<&HostId> {
        self.host.as_ref()
    }
    fn workspace(&self) -> Option<&String> {
        self.workspace.as_ref()
    }
    fn session(&self) -> Option<&String> {
        self.session.as_ref()
    }
    fn auth(&self) -> Option<&HeaderAuth> {
        self.auth.as_ref()
    }
    fn set_auth(&mut self, auth: HeaderAuth) {
        self.auth = Some(auth);
    }
    fn mac(&self) -> Option<&str> {
        self.mac.as_deref()
    }
    fn set_mac(&mut self, mac: String) {
        self.mac = Some(mac);
    }
}

pub(super) const NOW: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

pub(super) fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

fn root(user: &str, k: &DeviceKey) -> Root {
    Root {
        user: UserId::from(user),
        key: k.public(),
    }
}

fn grant(
    issuer: &DeviceKey,
    serial: &str,
    user: &str,
    keys: &[&DeviceKey],
    host: &str,
    role: Role,
) -> Cert {
    Cert::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from(user),
                device_keys: keys.iter().map(|k| k.public()).collect(),
                host: host.into(),
                role,
            },
            not_before_ms: NOW - DAY,
            not_after_ms: NOW + DAY,
        },
        issuer,
    )
}

fn host_cert(issuer: &DeviceKey, host: &str, k: [u8; 32]) -> Cert {
    Cert::sign(
        &CertBody {
            serial: format!("h-{host}"),
            subject: Subject::Host {
                host: HostId::from(host),
                host_key: X25519Public(k),
            },
            not_before_ms: NOW - DAY,
            not_after_ms: NOW + DAY,
        },
        issuer,
    )
}

fn role(
    roots: &[Root],
    certs: &[Cert],
    user: &str,
    k: &DeviceKey,
    host: &str,
) -> Result<Role, TrustError> {
    let revoked = Revoked::default();
    Verifier::new(roots, &revoked).role_of(
        &UserId::from(user),
        &k.public(),
        &HostId::from(host),
        certs,
        NOW,
    )
}

#[test]
fn a_root_is_its_owner_everywhere_and_grants_any_role() {
    let owner = key(1);
    let bob = key(2);
    let roots = [root("olga", &owner)];
    assert_eq!(role(&roots, &[], "olga", &owner, "box"), Ok(Role::Owner));
    let certs = [grant(&owner, "s1", "bob", &[&bob], "box", Role::Admin)];
    assert_eq!(role(&roots, &certs, "bob", &bob, "box"), Ok(Role::Admin));
    // Not on another host, not for another user name, not for the root's key under another name.
    assert!(matches!(
        role(&roots, &certs, "bob", &bob, "other"),
        Err(TrustError::NoGrant { .. })
    ));
    assert!(role(&roots, &certs, "mallory", &bob, "box").is_err());
    assert!(role(&roots, &[], "mallory", &owner, "box").is_err());
}

#[test]
fn an_admin_certifies_up_to_operator_on_hosts_they_administer_only() {
    let owner = key(1);
    let admin = key(2);
    let carol = key(3);
    let roots = [root("olga", &owner)];
    let admin_cert = grant(&owner, "a", "ada", &[&admin], "box", Role::Admin);
    let op = grant(&admin, "c1", "carol", &[&carol], "box", Role::Operator);
    let too_high = grant(&admin, "c2", "carol", &[&carol], "box", Role::Admin);
    let elsewhere = grant(&admin, "c3", "carol", &[&carol], "other", Role::Operator);
    let certs = [admin_cert.clone(), op, too_high, elsewhere];
    assert_eq!(
        role(&roots, &certs, "carol", &carol, "box"),
        Ok(Role::Operator)
    );
    assert!(role(&roots, &certs, "carol", &carol, "other").is_err());
    // Without the admin's own certificate the chain is broken.
    assert!(role(&roots, &certs[1..], "carol", &carol, "box").is_err());
    // An operator cannot certify anyone.
    let weak = grant(&owner, "w", "walt", &[&admin], "box", Role::Operator);
    let by_weak = grant(&admin, "c4", "carol", &[&carol], "box", Role::Viewer);
    assert!(role(&roots, &[weak, by_weak], "carol", &carol, "box").is_err());
}

#[test]
fn a_forged_grant_by_a_key_no_root_vouches_for_is_refused() {
    let owner = key(1);
    let relay_key = key(9);
    let eve = key(5);
    let roots = [root("olga", &owner)];
    let forged = grant(&relay_key, "f", "eve", &[&eve], "*", Role::Owner);
    assert!(role(&roots, &[forged], "eve", &eve, "box").is_err());
}

#[test]
fn expired_and_revoked_certificates_do_not_count() {
    let owner = key(1);
    let bob = key(2);
    let roots = [root("olga", &owner)];
    let mut body = grant(&owner, "s", "bob", &[&bob], "*", Role::Operator)
        .open()
        .unwrap();
    body.not_after_ms = NOW - 1;
    let expired = Cert::sign(&body, &owner);
    assert!(role(&roots, &[expired], "bob", &bob, "box").is_err());

    let cert = grant(&owner, "s", "bob", &[&bob], "*", Role::Operator);
    let by_serial = Revoked {
        serials: ["s".to_owned()].into(),
        ..Revoked::default()
    };
    let v = Verifier::new(&roots, &by_serial);
    assert!(
        v.role_of(
            &UserId::from("bob"),
            &bob.public(),
            &HostId::from("box"),
            std::slice::from_ref(&cert),
            NOW
        )
        .is_err()
    );
    let by_key = Revoked {
        keys: [bob.public()].into(),
        ..Revoked::default()
    };
    let v = Verifier::new(&roots, &by_key);
    assert!(
        v.role_of(
            &UserId::from("bob"),
            &bob.public(),
            &HostId::from("box"),
            &[cert],
            NOW
        )
        .is_err()
    );
}

#[test]
fn host_keys_come_only_from_certified_host_certificates() {
    let owner = key(1);
    let relay_key = key(9);
    let roots = [root("olga", &owner)];
    let revoked = Revoked::default();
    let v = Verifier::new(&roots, &revoked);
    let good = host_cert(&owner, "box", [4; 32]);
    let forged = host_cert(&relay_key, "box", [6; 32]);
    assert_eq!(
        v.host_key_of(&HostId::from("box"), &[forged.clone(), good], NOW),
        Ok(X25519Public([4; 32]))
    );
    assert!(matches!(
        v.host_key_of(&HostId::from("box"), &[forged], NOW),
        Err(TrustError::NoHostCert { .. })
    ));
}

proptest! {
    /// Any single bit flipped anywhere in a certificate (payload, key or signature) and the
    /// chain no longer grants anything.
    #[test]
    fn any_bit_flipped_in_a_certificate_is_refused(byte in 0usize..400, bit in 0u8..8) {
        let owner = key(1);
        let bob = key(2);
        let roots = [root("olga", &owner)];
        let cert = grant(&owner, "s", "bob", &[&bob], "box", Role::Operator);
        let mut json = serde_json::to_vec(&cert).unwrap();
        let at = byte % json.len();
        json[at] ^= 1 << bit;
        let Ok(flipped) = serde_json::from_slice::<Cert>(&json) else {
            return Ok(()); // no longer a certificate at all: refused by the parser
        };
        if flipped == cert {
            return Ok(()); // the flip hit JSON syntax that decodes the same (e.g. hex case)
        }
        prop_assert!(role(&roots, &[flipped], "bob", &bob, "box").is_err());
    }

    /// Same for an admin's certificate in a two-link chain.
    #[test]
    fn any_bit_flipped_in_the_admin_link_breaks_the_chain(byte in 0usize..400, bit in 0u8..8) {
        let owner = key(1);
        let admin = key(2);
        let carol = key(3);
        let roots = [root("olga", &owner)];
        let admin_cert = grant(&owner, "a", "ada", &[&admin], "*", Role::Admin);
        let leaf = grant(&admin, "c", "carol", &[&carol], "box", Role::Operator);
        let mut json = serde_json::to_vec(&admin_cert).unwrap();
        let at = byte % json.len();
        json[at] ^= 1 << bit;
        let Ok(flipped) = serde_json::from_slice::<Cert>(&json) else { return Ok(()) };
        if flipped == admin_cert {
            return Ok(());
        }
        prop_assert!(role(&roots, &[flipped, leaf], "carol", &carol, "box").is_err());
    }
}

pub(super) fn signed_header(k: &DeviceKey, nonce: [u8; 16], ts: u64) -> StreamHeader {
    let mut h = StreamHeader::new(Op::Prompt, ReqId(7));
    h.host = Some(HostId::from("box"));
    h.workspace = Some("demo".into());
    h.session = Some("ses_1".into());
    header::sign(
        &mut h,
        SignInput {
            user: &UserId::from("bob"),
            key: k,
            nonce,
            now_ms: ts,
            body: Some(header::body_hash(br#"{"text":"hi"}"#)),
            channel: None,
            template: None,
        },
    )
    .unwrap();
    h
}

/// The golden vector in docs/protocol.md ("Signed stream header"): device seed 32 × 0x02,
/// nonce 16 × 0xab, ts 1 800 000 000 000, body `{"text":"hi"}`.
#[test]
fn signed_header_golden_vector() {
    let h = signed_header(&key(2), [0xab; 16], NOW);
    let auth = h.auth.as_ref().unwrap();
    assert_eq!(
        String::from_utf8(auth.payload_bytes().unwrap()).unwrap(),
        r#"{"v":1,"user":"bob","host":"box","workspace":"demo","session":"ses_1","op":"prompt","req_id":7,"nonce":"abababababababababababababababab","ts_ms":1800000000000,"body":"5d6f21f325e08f7a590ae93436c7c2605bc582260956b73241a5d4492dc93c01","channel":null}"#
    );
    assert_eq!(
        auth.key.to_hex(),
        "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
    );
    assert_eq!(auth.key.fingerprint(), "ed25519:1eed-29b1-654f-bca9");
    assert_eq!(
        hex::encode(auth.sig.0),
        "fc2cd9fbbfc318f53ea71d764be1bc7c07a523dde9314048b8bcaf1799327e5235ec46b9bac77074ce78e8afbc1dbd6ba89db965102a12e41c506f409f0e0f03"
    );
}

#[test]
fn a_host_accepts_a_signed_header_once_and_only_for_itself() {
    let k = key(2);
    let h = signed_header(&k, [1; 16], NOW);
    let mut nonces = nonce_window();
    let ok = header::check(&h, &HostId::from("box"), NOW + 1_000, &mut nonces).unwrap();
    assert_eq!(ok.key, k.public());
    assert_eq!(ok.fields.user, UserId::from("bob"));
    assert_eq!(ok.nonce, [1; 16]);
    // Replayed on another stream.
    assert_eq!(
        header::check(&h, &HostId::from("box"), NOW + 2_000, &mut nonces),
        Err(TrustError::Replayed)
    );
    // For another host.
    let mut fresh = nonce_window();
    assert!(matches!(
        header::check(&h, &HostId::from("other"), NOW, &mut fresh),
        Err(TrustError::WrongHost { .. })
    ));
    // Too old or from the future.
    assert!(matches!(
        header::check(
            &h,
            &HostId::from("box"),
            NOW + header::REPLAY_WINDOW_MS + 1,
            &mut fresh
        ),
        Err(TrustError::Stale { .. })
    ));
    // Unsigned.
    let mut plain = h.clone();
    plain.auth = None;
    assert_eq!(
        header::check(&plain, &HostId::from("box"), NOW, &mut fresh),
        Err(TrustError::Unsigned)
    );
}

#[test]
fn verify_records_no_nonce_and_record_nonce_takes_each_once() {
    let h = signed_header(&key(2), [3; 16], NOW);
    let host = HostId::from("box");
    let mut nonces = nonce_window();
    let first = header::verify(&h, &host, NOW).unwrap();
    // Verified twice (two streams carrying the same header): neither nonce is recorded yet.
    let second = header::verify(&h, &host, NOW).unwrap();
    assert_eq!(header::record_nonce(&first, NOW, &mut nonces), Ok(()));
    assert_eq!(
        header::record_nonce(&second, NOW, &mut nonces),
        Err(TrustError::Replayed)
    );
    assert_eq!(
        header::check(&h, &host, NOW, &mut nonces),
        Err(TrustError::Replayed)
    );
    // A header that does not verify never reaches the window.
    let mut forged = h.clone();
    forged.auth.as_mut().unwrap().sig.0[0] ^= 1;
    assert!(matches!(
        header::verify(&forged, &host, NOW),
        Err(TrustError::BadSignature { .. })
    ));
}

#[test]
fn a_relay_that_rewrites_the_forwarded_header_is_caught() {
    let h = signed_header(&key(2), [1; 16], NOW);
    for (field, edit) in [
        (
            "op",
            Box::new(|h: &mut StreamHeader| h.op = Op::SessionDelete)
                as Box<dyn Fn(&mut StreamHeader)>,
        ),
        (
            "workspace",
            Box::new(|h: &mut StreamHeader| h.workspace = Some("other".into())),
        ),
        ("session", Box::new(|h: &mut StreamHeader| h.session = None)),
        (
            "req_id",
            Box::new(|h: &mut StreamHeader| h.req_id = ReqId(8)),
        ),
    ] {
        let mut t = h.clone();
        edit(&mut t);
        let mut nonces = nonce_window();
        assert_eq!(
            header::check(&t, &HostId::from("box"), NOW, &mut nonces),
            Err(TrustError::HeaderMismatch { field }),
            "{field}"
        );
    }
    // Rewriting the signed payload itself breaks the signature.
    let mut t = h;
    let auth = t.auth.as_mut().unwrap();
    let forged = auth.payload_bytes().unwrap();
    let forged = String::from_utf8(forged)
        .unwrap()
        .replace("\"bob\"", "\"olga\"");
    auth.payload =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, forged);
    let mut nonces = nonce_window();
    assert!(matches!(
        header::check(&t, &HostId::from("box"), NOW, &mut nonces),
        Err(TrustError::BadSignature { .. })
    ));
}

fn list(issuer: &DeviceKey, seq: u64, issued_ms: u64, serials: &[&str]) -> RevocationList {
    RevocationList::sign(
        &RevocationBody {
            issuer_user: UserId::from("olga"),
            seq,
            issued_ms,
            serials: serials.iter().map(|s| (*s).to_owned()).collect(),
            keys: Vec::new(),
        },
        issuer,
    )
}

#[test]
fn revocation_lists_newer_only_from_roots_or_admins_and_fresh_or_refused() {
    let owner = key(1);
    let roots = [root("olga", &owner)];
    let mut state = RevocationState::default();
    assert_eq!(
        state.check_fresh(&roots, NOW, DAY),
        Err(TrustError::NoRevocationList)
    );
    assert_eq!(
        state.accept(&list(&owner, 2, NOW, &["a"]), &roots, &[], NOW),
        Ok(true)
    );
    // An older list (served again by the relay) never replaces a newer one.
    assert_eq!(
        state.accept(&list(&owner, 1, NOW, &[]), &roots, &[], NOW),
        Ok(false)
    );
    assert!(state.revoked().serials.contains("a"));
    assert_eq!(state.check_fresh(&roots, NOW + 10, DAY), Ok(()));
    assert!(matches!(
        state.check_fresh(&roots, NOW + DAY + 60_000, DAY),
        Err(TrustError::RevocationsStale { .. })
    ));
    // A list signed by the relay's own key is refused.
    assert!(matches!(
        state.accept(&list(&key(9), 5, NOW, &[]), &roots, &[], NOW),
        Err(TrustError::UntrustedIssuer { .. })
    ));
    // A certified admin's list counts for revocations (not for freshness).
    let admin = key(2);
    let admin_cert = grant(&owner, "ad", "ada", &[&admin], "*", Role::Admin);
    assert_eq!(
        state.accept(
            &list(&admin, 1, NOW + DAY * 3, &["b"]),
            &roots,
            &[admin_cert],
            NOW
        ),
        Ok(true)
    );
    assert!(state.revoked().serials.contains("b"));
    assert!(state.check_fresh(&roots, NOW + DAY * 3, DAY).is_err());
}

#[test]
fn a_list_dated_ahead_of_the_clock_does_not_count_as_fresh_but_its_revocations_do() {
    let owner = key(1);
    let roots = [root("olga", &owner)];
    let mut state = RevocationState::default();
    // Signed on a laptop whose clock ran a month ahead.
    let ahead = NOW + 30 * DAY;
    assert_eq!(
        state.accept(&list(&owner, 2, ahead, &["a"]), &roots, &[], NOW),
        Ok(true)
    );
    assert!(state.revoked().serials.contains("a"));
    assert_eq!(
        state.check_fresh(&roots, NOW, DAY),
        Err(TrustError::RevocationListAhead {
            ahead_min: 30 * DAY / 60_000
        })
    );
    // A few minutes ahead (clocks differ) is fine.
    let mut state = RevocationState::default();
    state
        .accept(&list(&owner, 3, NOW + 4 * 60_000, &[]), &roots, &[], NOW)
        .unwrap();
    assert_eq!(state.check_fresh(&roots, NOW, DAY), Ok(()));
}

#[test]
fn host_key_claims_verify_only_with_their_bind_secret() {
    let bind = Bytes32([3; 32]);
    let claim = HostKeyClaim::new(HostId::from("box"), X25519Public([4; 32]), &bind);
    assert!(claim.verify(&bind));
    assert!(!claim.verify(&Bytes32([2; 32])));
    let mut swapped = claim.clone();
    swapped.host_key = X25519Public([5; 32]);
    assert!(!swapped.verify(&bind));
    let mut garbage = claim;
    garbage.mac = "zz".into();
    assert!(!garbage.verify(&bind));
}

#[test]
fn signatures_are_bound_to_their_domain() {
    let k = key(1);
    let sig = k.sign("cert/v1", b"x");
    assert!(k.public().verify("cert/v1", b"x", &sig).is_ok());
    assert!(k.public().verify("header/v1", b"x", &sig).is_err());
    assert!(k.public().fingerprint().starts_with("ed25519:"));
    assert_eq!(PublicKey::from_hex(&k.public().to_hex()), Ok(k.public()));
}

#[test]
fn a_host_takes_revocations_only_from_its_own_admins() {
    let owner = key(1);
    let roots = [root("olga", &owner)];
    let (of_a, of_all) = (key(2), key(3));
    let certs = [
        grant(&owner, "ad-a", "ada", &[&of_a], "a", Role::Admin),
        grant(&owner, "ad-all", "al", &[&of_all], "*", Role::Admin),
    ];
    let (host_a, host_b) = (HostId::from("a"), HostId::from("b"));
    let mut on_b = RevocationState::default();
    assert!(matches!(
        on_b.accept_on_host(&list(&of_a, 1, NOW, &["x"]), &roots, &certs, &host_b, NOW),
        Err(TrustError::UntrustedIssuer { .. })
    ));
    assert!(!on_b.revoked().serials.contains("x"));
    assert_eq!(
        on_b.accept_on_host(&list(&of_all, 1, NOW, &["y"]), &roots, &certs, &host_b, NOW),
        Ok(true)
    );
    let mut on_a = RevocationState::default();
    assert_eq!(
        on_a.accept_on_host(&list(&of_a, 1, NOW, &["x"]), &roots, &certs, &host_a, NOW),
        Ok(true)
    );
    assert!(on_a.revoked().serials.contains("x"));
}

#[test]
fn a_kept_list_is_restored_only_with_its_signature_and_never_over_a_newer_one() {
    let (owner, admin) = (key(1), key(2));
    let mut state = RevocationState::default();
    // No certificate for the admin is needed to restore what was taken before.
    assert_eq!(state.restore(&list(&admin, 2, NOW, &["x"])), Ok(true));
    assert_eq!(state.restore(&list(&admin, 1, NOW, &["y"])), Ok(false));
    assert!(state.revoked().serials.contains("x") && !state.revoked().serials.contains("y"));
    let mut damaged = list(&owner, 1, NOW, &["z"]);
    damaged.payload.push('A');
    assert!(state.restore(&damaged).is_err());
    assert!(!state.revoked().serials.contains("z"));
}
