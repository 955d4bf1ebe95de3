use super::*;
use crate::trust::file::TrustFile;
use crate::trust::tests::profile;
use crate::trust::{self, device};
use proto::admin::{AdminDone, HostAdd, HostEnrolled, UserRequest};
use proto::handshake::Key;
use proto::header::Op;
use proto::ids::UserId;
use proto::token::{EnrollmentToken, Invite, pin_from_spki};
use proto::trust::{DeviceKey, Root};

fn owner_root() -> Root {
    Root {
        user: UserId::from("olga"),
        key: DeviceKey::from_seed([1; 32]).unwrap().public(),
    }
}

/// A logged-in laptop (device key in the 0600-file store), with the owner's root pinned or not.
fn laptop(dir: &std::path::Path, roots: bool) -> Profile {
    let p = profile(dir);
    device::ensure(&p.home.secrets().unwrap(), &p.account()).unwrap();
    let mut f = TrustFile::default();
    if roots {
        f.roots.push(owner_root());
    }
    f.write(&trust::file_path(&p)).unwrap();
    p
}

/// What the relay hands back for `host_add`: no roots, no bind.
fn relay_token(host: &str) -> HostEnrolled {
    let token = EnrollmentToken {
        relay: "127.0.0.1:7443".into(),
        pin: pin_from_spki(b"spki"),
        host: HostId::from(host),
        secret: Key::from_bytes([7; 32]),
        roots: Vec::new(),
        bind: None,
    };
    HostEnrolled {
        name: host.into(),
        token: token.encode(),
    }
}

fn add(host: &str) -> AdminCall {
    AdminCall::HostAdd(HostAdd {
        name: host.into(),
        relay_addr: None,
    })
}

#[test]
fn a_host_enrolled_from_the_screen_pins_this_laptops_roots_and_a_kept_bind() {
    let dir = tempfile::tempdir().unwrap();
    let p = laptop(dir.path(), true);
    for call in [add("box"), AdminCall::HostRotate("box".into())] {
        let sealed = seal(&p, &call, Response::Enrolled(relay_token("box"))).unwrap();
        let Response::Enrolled(e) = sealed.response else {
            panic!("{:?}", sealed.response)
        };
        let token = EnrollmentToken::decode(&e.token).unwrap();
        assert_eq!(token.roots, vec![owner_root()], "{call:?}");
        let (host, bind) = sealed.bind.expect("a bind secret for the new host");
        assert_eq!(host, HostId::from("box"));
        assert_eq!(token.bind, Some(bind));
        // Kept in the trust file, where the next connection's auto-certification reads it.
        let file = TrustFile::read(&trust::file_path(&p)).unwrap();
        assert_eq!(file.binds.get(&host), Some(&bind));
    }
}

#[test]
fn a_laptop_without_roots_hands_out_the_relays_token_as_relay_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let p = laptop(dir.path(), false);
    let relay = relay_token("box");
    let sealed = seal(&p, &add("box"), Response::Enrolled(relay.clone())).unwrap();
    assert!(sealed.bind.is_none());
    let Response::Enrolled(e) = sealed.response else {
        panic!("{:?}", sealed.response)
    };
    assert_eq!(e, relay);
}

#[test]
fn a_damaged_token_is_not_handed_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = laptop(dir.path(), true);
    let damaged = HostEnrolled {
        name: "box".into(),
        token: "cm-enroll-not-base64!".into(),
    };
    let err = seal(&p, &add("box"), Response::Enrolled(damaged)).unwrap_err();
    assert!(err.message.contains("damaged"), "{err}");
    assert!(
        TrustFile::read(&trust::file_path(&p))
            .unwrap()
            .binds
            .is_empty()
    );
}

#[test]
fn an_invite_made_from_the_screen_carries_the_roots() {
    let dir = tempfile::tempdir().unwrap();
    let p = laptop(dir.path(), true);
    let invite = Invite {
        relay: "127.0.0.1:7443".into(),
        pin: pin_from_spki(b"spki"),
        user: UserId::from("ben"),
        secret: Bytes32([3; 32]),
        roots: Vec::new(),
    };
    let done = AdminDone {
        summary: "added ben".into(),
        invite: Some(invite.encode()),
    };
    let call = AdminCall::User(
        Op::UserManage,
        UserRequest::Add {
            name: "ben".into(),
            role: proto::rbac::Role::Operator,
            host: "*".into(),
        },
    );
    let sealed = seal(&p, &call, Response::Done(done)).unwrap();
    let Response::Done(done) = sealed.response else {
        panic!("{:?}", sealed.response)
    };
    let back = Invite::decode(done.invite.as_deref().unwrap()).unwrap();
    assert_eq!(back.roots, vec![owner_root()]);
    // Answers that carry no token pass unchanged.
    let list = seal(&p, &AdminCall::UserList, Response::Users(Vec::new())).unwrap();
    assert_eq!(list.response, Response::Users(Vec::new()));
}
