use super::*;
use proto::handshake::{Key, PeerKind};
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::Role;
use test_db::on_both_backends;

fn ev(op: &str) -> AuditEvent {
    AuditEvent {
        actor: "alice".into(),
        op: op.into(),
        decision: "allow".into(),
        ..AuditEvent::default()
    }
}

fn content(description: &str) -> proto::template::TemplateContent {
    serde_json::from_value(serde_json::json!({
        "description": description,
        "opencode": {"model": "test/test-model"},
        "mcp": {"docs": {"type": "remote", "url": "https://mcp.example.com"}}
    }))
    .unwrap()
}

fn publish(s: &Store, name: &str, author: &str, d: &str, now: u64) -> Published {
    let c = content(d);
    let hash = proto::template::content_hash(&c);
    s.publish_template(name, author, &c, &hash, now).unwrap()
}

on_both_backends! {
fn users_grants_and_roles(s) {
    let alice = UserId::from("alice");
    s.add_user(&alice, 1).unwrap();
    assert!(matches!(
        s.add_user(&alice, 2),
        Err(StoreError::Exists { .. })
    ));
    s.grant(&alice, "*", Role::Viewer).unwrap();
    s.grant(&alice, "box", Role::Operator).unwrap();
    s.grant(&alice, "box", Role::Admin).unwrap();
    assert_eq!(
        s.grants(&alice).unwrap(),
        vec![
            ("*".to_owned(), Role::Viewer),
            ("box".to_owned(), Role::Admin)
        ]
    );
    assert!(s.grant(&UserId::from("nobody"), "*", Role::Owner).is_err());
}

fn invites_are_single_use_and_expire(s) {
    let bob = UserId::from("bob");
    s.add_user(&bob, 0).unwrap();
    s.add_invite(&bob, "h1", 1_000).unwrap();
    s.add_invite(&bob, "h2", 1_000).unwrap();
    assert!(
        !s.redeem_invite(&bob, "h1", 1_000).unwrap(),
        "expired at its expiry"
    );
    assert!(s.redeem_invite(&bob, "h2", 999).unwrap());
    assert!(
        !s.redeem_invite(&bob, "h2", 999).unwrap(),
        "second use refused"
    );
    assert!(!s.redeem_invite(&UserId::from("eve"), "h1", 0).unwrap());
}

fn credentials_by_kind(s) {
    let host = HostId::from("box");
    s.add_host(&host, &Key::from_bytes([1; 32]), 5).unwrap();
    assert!(matches!(
        s.add_host(&host, &Key::from_bytes([2; 32]), 6),
        Err(StoreError::Exists { .. })
    ));
    let found = s
        .find_credential(PeerKind::Agent, &CredId::from("box"))
        .unwrap()
        .unwrap();
    assert_eq!(found.record.key, Key::from_bytes([1; 32]));
    assert_eq!(found.record.expires_at_ms, None);
    assert!(!found.record.revoked);
    // A host id is not an operator credential.
    assert!(
        s.find_credential(PeerKind::Operator, &CredId::from("box"))
            .unwrap()
            .is_none()
    );
    s.revoke_host(&host).unwrap();
    // A revoked host can be enrolled again, with a new secret.
    s.add_host(&host, &Key::from_bytes([4; 32]), 7).unwrap();
    let again = s
        .find_credential(PeerKind::Agent, &CredId::from("box"))
        .unwrap()
        .unwrap();
    assert!(!again.record.revoked);
    assert_eq!(again.record.key, Key::from_bytes([4; 32]));
    s.revoke_host(&host).unwrap();
    assert!(
        s.find_credential(PeerKind::Agent, &CredId::from("box"))
            .unwrap()
            .unwrap()
            .record
            .revoked
    );

    let u = UserId::from("u");
    s.add_user(&u, 0).unwrap();
    let c = CredId::from("c1");
    s.add_credential(&c, &u, &Key::from_bytes([3; 32]), 99, Some("laptop"), 1)
        .unwrap();
    let found = s.find_credential(PeerKind::Operator, &c).unwrap().unwrap();
    assert_eq!(found.owner, "u");
    assert_eq!(found.record.expires_at_ms, Some(99));
    assert!(s.revoke_credential(&c).unwrap());
    assert!(!s.revoke_credential(&CredId::from("nope")).unwrap());
}

fn audit_chain_detects_edit_and_delete(s) {
    for (i, op) in ["login", "host_add", "host_list", "kill"]
        .iter()
        .enumerate()
    {
        s.audit(i as u64, &ev(op)).unwrap();
    }
    assert_eq!(s.audit_verify().unwrap(), None);
    assert_eq!(s.audit_tail(2).unwrap().len(), 2);
    // Updates are refused by a trigger...
    assert!(
        s.sql("UPDATE audit SET decision = 'deny' WHERE id = 2")
            .is_err()
    );
    // ...and an edit that bypasses it (drop the trigger) is caught by the chain.
    s.drop_audit_trigger("audit_no_update");
    s.sql("UPDATE audit SET decision = 'deny' WHERE id = 2")
        .unwrap();
    assert_eq!(s.audit_verify().unwrap(), Some(2));
    s.sql("UPDATE audit SET decision = 'allow' WHERE id = 2")
        .unwrap();
    assert_eq!(s.audit_verify().unwrap(), None);
    // Deletes are refused by a trigger too; bypassing it is caught by the chain.
    assert!(s.sql("DELETE FROM audit WHERE id = 3").is_err());
    s.drop_audit_trigger("audit_no_delete");
    s.sql("DELETE FROM audit WHERE id = 3").unwrap();
    assert_eq!(s.audit_verify().unwrap(), Some(4));
}

fn settings_and_integrity(s) {
    assert_eq!(s.setting("public_addr").unwrap(), None);
    s.set_setting("public_addr", "a:1").unwrap();
    s.set_setting("public_addr", "b:2").unwrap();
    assert_eq!(s.setting("public_addr").unwrap().as_deref(), Some("b:2"));
    s.integrity_check().unwrap();
}

fn template_versions_count_up_and_identical_content_keeps_its_version(s) {
    assert!(s.list_templates().unwrap().is_empty());
    assert_eq!(s.template("team", None).unwrap(), None);
    let v1 = publish(&**s, "team", "alice", "one", 10);
    assert!(v1.new);
    assert_eq!(v1.template.id.version, 1);
    let v2 = publish(&**s, "team", "bob", "two", 20);
    assert_eq!((v2.new, v2.template.id.version), (true, 2));
    let again = publish(&**s, "team", "carol", "two", 30);
    assert!(!again.new, "identical content is not a new version");
    assert_eq!(
        again.template, v2.template,
        "author and time stay the first's"
    );
    // Going back to an older content is a new version (only the latest is compared).
    let v3 = publish(&**s, "team", "alice", "one", 40);
    assert_eq!((v3.new, v3.template.id.version), (true, 3));
    publish(&**s, "other", "alice", "x", 50);

    let listed = s.list_templates().unwrap();
    let names: Vec<(&str, u32)> = listed
        .iter()
        .map(|t| (t.latest.name.as_str(), t.latest.version))
        .collect();
    assert_eq!(names, [("other", 1), ("team", 3)]);
    assert_eq!(listed[1].author, "alice");
    assert_eq!(listed[1].description, "one");
    assert_eq!(listed[1].mcp, ["docs"]);
    assert_eq!(listed[1].latest.hash, v1.template.id.hash);

    let shown = s.template("team", Some(2)).unwrap().unwrap();
    assert_eq!(shown, v2.template);
    assert!(shown.hash_matches());
    assert_eq!(shown.author, "bob");
    assert_eq!(s.template("team", None).unwrap().unwrap().id.version, 3);
    assert_eq!(s.template("team", Some(9)).unwrap(), None);
}

fn a_template_row_this_build_cannot_read_is_reported_corrupt(s) {
    publish(&**s, "team", "alice", "one", 10);
    s.sql("UPDATE templates SET content = '{\"extra\":1}'")
        .unwrap();
    assert!(matches!(
        s.template("team", None),
        Err(StoreError::Corrupt(_))
    ));
}
}
