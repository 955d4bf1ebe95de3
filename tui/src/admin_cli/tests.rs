use super::*;

#[test]
fn audit_text_drops_escape_sequences_from_every_field() {
    let evil = "\u{1b}]0;pwned\u{7}x\u{1b}[2J\r\ny";
    let row = AuditEntry {
        id: 7,
        ts_ms: 1,
        actor: evil.into(),
        role: Some(evil.into()),
        host: Some(evil.into()),
        op: evil.into(),
        target: Some(evil.into()),
        decision: "deny".into(),
        reason: Some(evil.into()),
        hash: "h".into(),
    };
    let text = audit_text(&[row]);
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(!text.contains('\u{7}') && !text.contains('\r'), "{text:?}");
    assert_eq!(text.lines().count(), 1, "one row, one line: {text:?}");
    assert!(text.contains("host=xy target=xy "), "{text:?}");
}

#[test]
fn creds_and_audit_print_utc_times() {
    let cred = CredInfo {
        id: "cred_1".into(),
        user: "bob".into(),
        created_ms: 0,
        expires_ms: 1_795_660_882_220,
        revoked: false,
        label: Some("laptop".into()),
    };
    let text = creds_text(&[cred]);
    assert!(
        text.contains("expires 2026-11-26 02:41:22Z laptop"),
        "{text:?}"
    );
    let row = AuditEntry {
        id: 3,
        ts_ms: 1_795_660_882_220,
        actor: "owner".into(),
        role: None,
        host: None,
        op: "kill".into(),
        target: None,
        decision: "allow".into(),
        reason: None,
        hash: "h".into(),
    };
    let text = audit_text(&[row]);
    assert!(text.contains(" 2026-11-26 02:41:22Z owner "), "{text:?}");
    assert!(!text.contains("1795660882220"), "{text:?}");
}

#[test]
fn an_unknown_role_names_the_allowed_ones() {
    let err = role_arg("boss").err().unwrap_or_default();
    assert_eq!(
        err,
        "unknown role \"boss\"; use one of viewer, operator, admin, owner"
    );
    assert_eq!(role_arg("admin"), Ok(Role::Admin));
}
