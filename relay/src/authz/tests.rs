//! One test per access decision of the relay (see the module documentation).
use super::*;
use crate::store::SqliteStore;
use proto::handshake::Key;
use proto::ids::ReqId;
use proto::rbac::DenyReason;

fn grants() -> Vec<(String, Role)> {
    vec![("*".into(), Role::Viewer), ("box".into(), Role::Operator)]
}

#[test]
fn per_host_grants_change_the_outcome() {
    let g = grants();
    let mut h = StreamHeader::new(Op::OpencodeStart, ReqId(1));
    h.host = Some(HostId::from("box"));
    assert_eq!(
        decide(&g, &h, Ownership::None),
        (Some(Role::Operator), Decision::Allow)
    );
    h.host = Some(HostId::from("other"));
    assert_eq!(
        decide(&g, &h, Ownership::None).1,
        Decision::Deny(DenyReason::RoleTooLow {
            needed: Role::Operator,
            have: Role::Viewer
        })
    );
    assert_eq!(
        decide(&[], &h, Ownership::None).1,
        Decision::Deny(DenyReason::NoGrant)
    );
    assert!(may_see(&g, &HostId::from("anything")));
    assert!(!may_see(&[("box".into(), Role::Owner)], &HostId::from("x")));
}

#[test]
fn logout_needs_no_grant() {
    let h = StreamHeader::new(Op::Logout, ReqId(1));
    assert_eq!(decide(&[], &h, Ownership::None), (None, Decision::Allow));
}

#[test]
fn naming_a_host_does_not_turn_a_host_grant_into_relay_administration() {
    let owner_of_box = vec![("box".to_owned(), Role::Owner)];
    for op in Op::ALL.into_iter().filter(|op| is_relay_admin(*op)) {
        let mut h = StreamHeader::new(op, ReqId(1));
        h.host = Some(HostId::from("box"));
        assert_eq!(
            decide(&owner_of_box, &h, Ownership::None),
            (None, Decision::Deny(DenyReason::NoGrant)),
            "{}",
            op.as_str()
        );
    }
    // Driving that host is still theirs.
    let mut h = StreamHeader::new(Op::Prompt, ReqId(1));
    h.host = Some(HostId::from("box"));
    assert_eq!(
        decide(&owner_of_box, &h, Ownership::Other).1,
        Decision::Allow
    );
}

#[test]
fn relay_administration_needs_a_grant_on_every_host() {
    let admin_of_box = vec![("box".to_owned(), Role::Admin)];
    let h = StreamHeader::new(Op::UserManage, ReqId(1));
    assert_eq!(
        decide(&admin_of_box, &h, Ownership::None).1,
        Decision::Deny(DenyReason::NoGrant)
    );
    let mut g = admin_of_box.clone();
    g.push(("*".into(), Role::Operator));
    assert_eq!(
        decide(&g, &h, Ownership::None).1,
        Decision::Deny(DenyReason::RoleTooLow {
            needed: Role::Admin,
            have: Role::Operator
        })
    );
    g.push(("*".into(), Role::Admin));
    assert_eq!(decide(&g, &h, Ownership::None).1, Decision::Allow);
    // Operator-level relay operations still use the highest grant.
    let q = StreamHeader::new(Op::QueueList, ReqId(1));
    assert_eq!(
        decide(&[("box".into(), Role::Operator)], &q, Ownership::None).1,
        Decision::Allow
    );
}

#[test]
fn only_an_owner_manages_users_with_admin_or_owner_rights() {
    let (ada, owner, otto) = (
        UserId::from("ada"),
        UserId::from("owner"),
        UserId::from("otto"),
    );
    let admin = vec![("*".to_owned(), Role::Admin)];
    let owns = vec![("*".to_owned(), Role::Owner)];
    let operates = vec![("*".to_owned(), Role::Operator)];
    let admin_of_box = vec![("box".to_owned(), Role::Admin)];
    assert!(!may_manage_user(&ada, &admin, &owner, &owns));
    assert!(!may_manage_user(&ada, &admin, &otto, &admin_of_box));
    assert!(may_manage_user(&ada, &admin, &otto, &operates));
    assert!(may_manage_user(&ada, &admin, &otto, &[]));
    assert!(may_manage_user(&ada, &admin, &ada, &admin));
    assert!(may_manage_user(&owner, &owns, &ada, &admin));
    assert!(!may_manage_user(&ada, &admin_of_box, &owner, &owns));
}

#[test]
fn templates_are_read_by_any_grant_and_published_only_by_an_admin_of_every_host() {
    let one_host = [("box".to_owned(), Role::Viewer)];
    for op in [Op::TemplateList, Op::TemplateShow] {
        let h = StreamHeader::new(op, ReqId(1));
        assert_eq!(decide(&one_host, &h, Ownership::None).1, Decision::Allow);
        assert_eq!(
            decide(&[], &h, Ownership::None).1,
            Decision::Deny(DenyReason::NoGrant)
        );
    }
    let mut h = StreamHeader::new(Op::TemplatePublish, ReqId(1));
    h.host = Some(HostId::from("box"));
    let box_admin = [
        ("box".to_owned(), Role::Owner),
        ("*".to_owned(), Role::Operator),
    ];
    assert_eq!(
        decide(&box_admin, &h, Ownership::None).1,
        Decision::Deny(DenyReason::RoleTooLow {
            needed: Role::Admin,
            have: Role::Operator
        }),
        "a grant on one host does not publish, whatever host the header names"
    );
    let admin = [("*".to_owned(), Role::Admin)];
    assert_eq!(decide(&admin, &h, Ownership::None).1, Decision::Allow);
}

#[test]
fn host_list_uses_the_highest_grant() {
    let h = StreamHeader::new(Op::HostList, ReqId(1));
    assert_eq!(decide(&grants(), &h, Ownership::None).1, Decision::Allow);
    assert_eq!(
        decide(&[], &h, Ownership::None).1,
        Decision::Deny(DenyReason::NoGrant)
    );
}

fn store_with(users: &[(&str, &[(&str, Role)])]) -> SqliteStore {
    let s = SqliteStore::open_in_memory().unwrap();
    for (name, grants) in users {
        let u = UserId::from(*name);
        s.add_user(&u, 1).unwrap();
        for (host, role) in *grants {
            s.grant(&u, host, *role).unwrap();
        }
    }
    s
}

fn add_cred(s: &Store, id: &str, user: &str, expires_ms: u64) -> Key {
    let key = Key::from_bytes([7; 32]);
    s.add_credential(
        &CredId::from(id),
        &UserId::from(user),
        &key,
        expires_ms,
        None,
        1,
    )
    .unwrap();
    key
}

#[test]
fn driving_someone_elses_session_is_a_take_over_reading_it_is_not() {
    assert!(is_take_over(Op::Prompt, Ownership::Other));
    assert!(!is_take_over(Op::Prompt, Ownership::Own));
    assert!(!is_take_over(Op::Prompt, Ownership::None));
    assert!(!is_take_over(Op::SessionList, Ownership::Other));
}

#[test]
fn an_unknown_or_unreadable_session_owner_counts_as_someone_else() {
    let ann = UserId::from("ann");
    let bob = UserId::from("bob");
    assert_eq!(ownership::<()>(&ann, None), (Ownership::None, None));
    assert_eq!(
        ownership::<()>(&ann, Some(Ok(Some(ann.clone())))),
        (Ownership::Own, Some(ann.clone()))
    );
    assert_eq!(
        ownership::<()>(&ann, Some(Ok(Some(bob.clone())))),
        (Ownership::Other, Some(bob))
    );
    assert_eq!(
        ownership::<()>(&ann, Some(Ok(None))),
        (Ownership::Other, None)
    );
    assert_eq!(
        ownership(&ann, Some(Err("db down"))),
        (Ownership::Other, None)
    );
}

#[test]
fn a_change_to_admin_rights_must_travel_as_grant_admin() {
    let s = store_with(&[
        ("ada", &[("*", Role::Admin)]),
        ("otto", &[("*", Role::Operator)]),
    ]);
    let demote_ada = UserRequest::Revoke {
        name: "ada".into(),
        host: "*".into(),
    };
    assert!(matches!(
        check_user_request(&s, Op::UserManage, &demote_ada),
        Err(AdminRefusal::NeedsGrantAdmin { .. })
    ));
    assert!(check_user_request(&s, Op::GrantAdmin, &demote_ada).is_ok());
    let promote_otto = UserRequest::Grant {
        name: "otto".into(),
        role: Role::Admin,
        host: "box".into(),
    };
    assert!(matches!(
        check_user_request(&s, Op::UserManage, &promote_otto),
        Err(AdminRefusal::NeedsGrantAdmin { .. })
    ));
    let otto_viewer = UserRequest::Grant {
        name: "otto".into(),
        role: Role::Viewer,
        host: "box".into(),
    };
    assert!(check_user_request(&s, Op::UserManage, &otto_viewer).is_ok());
    assert!(matches!(
        check_user_request(&s, Op::GrantAdmin, &otto_viewer),
        Err(AdminRefusal::NotAdminRights { .. })
    ));
}

#[test]
fn an_admin_cannot_act_on_an_owner_read_from_the_store() {
    let s = store_with(&[
        ("ada", &[("*", Role::Admin)]),
        ("owner", &[("*", Role::Owner)]),
        ("otto", &[("*", Role::Operator)]),
    ]);
    let (ada, owner, otto) = (
        UserId::from("ada"),
        UserId::from("owner"),
        UserId::from("otto"),
    );
    assert!(matches!(
        check_manage_user(&s, &ada, Op::Kill, &owner),
        Err(AdminRefusal::Privileged { .. })
    ));
    assert!(check_manage_user(&s, &ada, Op::Kill, &otto).is_ok());
    assert!(check_manage_user(&s, &owner, Op::Kill, &ada).is_ok());
}

#[test]
fn an_admin_cannot_revoke_an_owners_credential() {
    let s = store_with(&[
        ("ada", &[("*", Role::Admin)]),
        ("owner", &[("*", Role::Owner)]),
    ]);
    add_cred(&s, "c-owner", "owner", u64::MAX);
    add_cred(&s, "c-ada", "ada", u64::MAX);
    let ada = UserId::from("ada");
    let refused = check_manage_credential(&s, &ada, Op::CredsRevoke, &CredId::from("c-owner"));
    assert!(matches!(refused, Err(AdminRefusal::Privileged { .. })));
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("creds_revoke: owner holds admin")
    );
    assert!(check_manage_credential(&s, &ada, Op::CredsRevoke, &CredId::from("c-ada")).is_ok());
    // Unknown: left to the change, which says it is not found.
    assert!(check_manage_credential(&s, &ada, Op::CredsRevoke, &CredId::from("nope")).is_ok());
}

#[test]
fn a_revoked_expired_or_missing_credential_is_not_usable() {
    let record = |revoked, expires_at_ms| CredentialRecord {
        key: Key::from_bytes([1; 32]),
        kind: PeerKind::Operator,
        revoked,
        expires_at_ms,
    };
    assert_eq!(credential_problem(Some(&record(false, Some(10))), 9), None);
    assert_eq!(
        credential_problem(Some(&record(false, Some(10))), 10),
        Some(CredentialProblem::Expired)
    );
    assert_eq!(
        credential_problem(Some(&record(true, Some(10))), 9),
        Some(CredentialProblem::Revoked)
    );
    assert_eq!(
        credential_problem(Some(&record(false, None)), u64::MAX),
        None
    );
    assert_eq!(
        credential_problem(None, 0),
        Some(CredentialProblem::Unknown)
    );
    assert!(credential_usable(false, 10, 9));
    assert!(!credential_usable(false, 10, 10));
    assert!(!credential_usable(true, 10, 9));
}

#[test]
fn the_handshake_refuses_a_revoked_or_expired_credential_from_the_store() {
    let s = store_with(&[("ann", &[("*", Role::Operator)])]);
    let now = 1_000_000;
    let key = add_cred(&s, "c1", "ann", now + 60_000);
    let exporter = [3u8; EXPORTER_LEN];
    let h1 = |nonce: u8, ts| {
        proto::handshake::build_h1(
            &key,
            PeerKind::Operator,
            CredId::from("c1"),
            [nonce; 32],
            ts,
            &exporter,
        )
    };
    let found = || {
        s.find_credential(PeerKind::Operator, &CredId::from("c1"))
            .unwrap()
    };
    let mut replay = ReplayWindow::new(16, 600_000);
    assert_eq!(
        admit_handshake(&h1(1, now), found().as_ref(), &exporter, now, &mut replay),
        Ok(())
    );
    let later = now + 60_000;
    assert_eq!(
        admit_handshake(
            &h1(2, later),
            found().as_ref(),
            &exporter,
            later,
            &mut replay
        ),
        Err(HandshakeError::Expired)
    );
    s.revoke_credential(&CredId::from("c1")).unwrap();
    assert_eq!(
        admit_handshake(&h1(3, now), found().as_ref(), &exporter, now, &mut replay),
        Err(HandshakeError::Revoked)
    );
    assert_eq!(
        admit_handshake(&h1(4, now), None, &exporter, now, &mut replay),
        Err(HandshakeError::UnknownCredential)
    );
}

#[test]
fn a_live_connection_closes_when_its_credential_expires_or_is_revoked() {
    let s = store_with(&[("ann", &[("*", Role::Operator)])]);
    add_cred(&s, "c1", "ann", 100);
    let found = || {
        s.find_credential(PeerKind::Operator, &CredId::from("c1"))
            .unwrap()
    };
    assert_eq!(live_credential(Some(100), None, 99), None);
    assert_eq!(
        live_credential(Some(100), None, 100),
        Some(CredentialProblem::Expired)
    );
    assert_eq!(
        live_credential(Some(100), Some(found().as_ref().map(|f| &f.record)), 50),
        None
    );
    s.revoke_credential(&CredId::from("c1")).unwrap();
    assert_eq!(
        live_credential(Some(100), Some(found().as_ref().map(|f| &f.record)), 50),
        Some(CredentialProblem::Revoked)
    );
    assert_eq!(
        live_credential(Some(100), Some(None), 50),
        Some(CredentialProblem::Unknown)
    );
}

#[test]
fn an_agent_learns_only_revocations_of_users_who_could_reach_it() {
    let revoked = vec![
        (CredId::from("c-box"), "box".to_owned()),
        (CredId::from("c-all"), "*".to_owned()),
        (CredId::from("c-other"), "other".to_owned()),
    ];
    assert_eq!(
        revocations_for_host(&revoked, "box"),
        vec![CredId::from("c-all"), CredId::from("c-box")]
    );
    assert_eq!(
        revocations_for_host(&revoked, "third"),
        vec![CredId::from("c-all")]
    );
}

fn queued(user: &str, cred: &str) -> QueueRow {
    QueueRow {
        id: "q_1".into(),
        host: "box".into(),
        workspace: "w".into(),
        session: "ses_1".into(),
        user: user.into(),
        cred_id: cred.into(),
        body: "{}".into(),
        idempotency_key: "k".into(),
        created_ms: 1,
        expires_ms: u64::MAX,
        state: proto::queue::QueueState::Queued,
        detail: None,
        auth: None,
    }
}

#[test]
fn only_its_author_sees_or_cancels_a_queued_prompt() {
    let row = queued("ann", "c1");
    assert!(may_touch_queued(&UserId::from("ann"), &row));
    assert!(!may_touch_queued(&UserId::from("bob"), &row));
}

#[test]
fn a_queued_prompt_is_delivered_only_with_a_good_credential_and_a_current_grant() {
    let s = store_with(&[
        ("ann", &[("box", Role::Operator)]),
        ("bob", &[("box", Role::Operator)]),
    ]);
    let now = 1_000;
    add_cred(&s, "c1", "ann", now + 10);
    add_cred(&s, "c-bob", "bob", now + 10);
    let mut header = StreamHeader::new(Op::Prompt, ReqId(1));
    header.host = Some(HostId::from("box"));
    header.session = Some("ses_1".into());
    let deliver = |row: &QueueRow, now| {
        let cred = CredId::from(row.cred_id.as_str());
        let found = s.find_credential(PeerKind::Operator, &cred).unwrap();
        let grants = s.grants(&UserId::from(row.user.as_str())).unwrap();
        deliver_queued(row, found.as_ref(), &grants, &header, Ownership::Own, now)
    };
    assert_eq!(deliver(&queued("ann", "c1"), now), Ok(Role::Operator));
    let refused = |r: Result<Role, QueueRefusal>| r.unwrap_err().to_string();
    assert_eq!(
        refused(deliver(&queued("ann", "c-bob"), now)),
        "credential c-bob does not belong to ann"
    );
    assert_eq!(
        refused(deliver(&queued("ann", "c-gone"), now)),
        "credential c-gone of ann no longer exists"
    );
    assert_eq!(
        refused(deliver(&queued("ann", "c1"), now + 10)),
        "credential c1 has expired"
    );
    s.revoke_grant(&UserId::from("bob"), "box").unwrap();
    assert!(matches!(
        deliver(&queued("bob", "c-bob"), now),
        Err(QueueRefusal::Denied(_))
    ));
    s.revoke_credential(&CredId::from("c1")).unwrap();
    assert_eq!(
        refused(deliver(&queued("ann", "c1"), now)),
        "credential c1 was revoked"
    );
}

#[test]
fn a_revoked_or_invisible_host_is_not_listed() {
    let s = SqliteStore::open_in_memory().unwrap();
    for h in ["box", "gone", "other"] {
        s.add_host(&HostId::from(h), &Key::from_bytes([2; 32]), 1)
            .unwrap();
    }
    s.revoke_host(&HostId::from("gone")).unwrap();
    let grants = vec![
        ("box".to_owned(), Role::Viewer),
        ("gone".to_owned(), Role::Owner),
    ];
    let listed: Vec<String> = s
        .list_hosts()
        .unwrap()
        .iter()
        .filter(|h| lists_host(&grants, h))
        .map(|h| h.id.0.clone())
        .collect();
    assert_eq!(listed, vec!["box".to_owned()]);
}

#[test]
fn a_session_notice_goes_to_its_owner_only_while_they_may_see_the_host() {
    let (alice, bob) = (UserId::from("alice"), UserId::from("bob"));
    let host = HostId::from("box");
    // The owner, with any role on the host (a viewer who owns a session still hears of it).
    for role in [Role::Viewer, Role::Operator, Role::Admin, Role::Owner] {
        let on_box = [("box".to_owned(), role)];
        let everywhere = [("*".to_owned(), role)];
        assert!(
            may_be_notified(&alice, &on_box, &host, Some(&alice)),
            "{role:?}"
        );
        assert!(
            may_be_notified(&alice, &everywhere, &host, Some(&alice)),
            "{role:?}"
        );
        // Someone else's session: never, whatever the role.
        assert!(
            !may_be_notified(&bob, &on_box, &host, Some(&alice)),
            "{role:?}"
        );
        assert!(
            !may_be_notified(&bob, &everywhere, &host, Some(&alice)),
            "{role:?}"
        );
    }
    // The owner who lost the host (grant on another host only, or none): not told.
    let elsewhere = [("other".to_owned(), Role::Owner)];
    assert!(!may_be_notified(&alice, &elsewhere, &host, Some(&alice)));
    assert!(!may_be_notified(&alice, &[], &host, Some(&alice)));
}

#[test]
fn a_host_notice_goes_to_everyone_who_may_drive_the_host() {
    let alice = UserId::from("alice");
    let host = HostId::from("box");
    let told = |grants: &[(String, Role)]| may_be_notified(&alice, grants, &host, None);
    assert!(!told(&[]), "no grant");
    assert!(
        !told(&[("box".into(), Role::Viewer)]),
        "a viewer cannot answer"
    );
    assert!(!told(&[("*".into(), Role::Viewer)]));
    for role in [Role::Operator, Role::Admin, Role::Owner] {
        assert!(told(&[("box".into(), role)]), "{role:?} on the host");
        assert!(told(&[("*".into(), role)]), "{role:?} everywhere");
        assert!(!told(&[("other".into(), role)]), "{role:?} on another host");
    }
    // The highest matching grant counts: a host grant lifts a global viewer, and a global
    // operator grant is not lowered by a host viewer grant.
    assert!(told(&grants()));
    assert!(!may_be_notified(
        &alice,
        &grants(),
        &HostId::from("other"),
        None
    ));
    assert!(told(&[
        ("*".into(), Role::Operator),
        ("box".into(), Role::Viewer)
    ]));
}
