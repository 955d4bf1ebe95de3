//! Administration through the relay: every operation, its role checks (typed errors naming the
//! role needed), the grant_admin/user_manage split, last-owner protection, the kill switch
//! closing live connections (the audit rows and the body timeout are in `admin_audit`).

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError, Session};
use proto::admin::{
    AdminDone, AuditEntry, AuditQuery, CredInfo, CredName, CredsQuery, HostAdd, HostEnrolled,
    HostEntry, HostName, HostRequest, KillTarget, UserInfo, UserRequest,
};
use proto::handshake::IssuedCredential;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::message::CloseReason;
use proto::rbac::Role;
use proto::token::{EnrollmentToken, Invite};
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
    s: &Session,
    op: Op,
    body: Option<&B>,
) -> Result<T, LinkError> {
    client::request(&s.conn, &StreamHeader::new(op, ReqId(1)), body).await
}

pub(crate) fn refusal<T: std::fmt::Debug>(r: Result<T, LinkError>) -> WireError {
    match r {
        Err(LinkError::Refused(e)) => e,
        other => panic!("expected a typed refusal, got {other:?}"),
    }
}

pub(crate) async fn change(s: &Session, op: Op, req: &UserRequest) -> Result<AdminDone, LinkError> {
    call(s, op, Some(req)).await
}

pub(crate) fn grant(name: &str, role: Role, host: &str) -> UserRequest {
    UserRequest::Grant {
        name: name.into(),
        role,
        host: host.into(),
    }
}

/// A new user `name` with `role` on `host`, signed in as an operator client.
pub(crate) async fn signed_in(
    relay: &TestRelay,
    name: &str,
    host: &str,
    role: Role,
) -> Result<(IssuedCredential, Session)> {
    let cred = user_with_grant(relay, name, host, role)?;
    let session = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    Ok((cred, session))
}

/// A relay with its owner, an admin `ada` and an operator `otto` (both on every host), each
/// signed in.
pub(crate) struct Staff {
    pub(crate) relay: TestRelay,
    pub(crate) owner: Session,
    pub(crate) ada: Session,
    pub(crate) otto: Session,
    pub(crate) otto_cred: IssuedCredential,
}

pub(crate) async fn staff() -> Result<Staff> {
    let relay = TestRelay::start().await?;
    let owner_cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &owner_cred).await?;
    let (_, ada) = signed_in(&relay, "ada", "*", Role::Admin).await?;
    let (otto_cred, otto) = signed_in(&relay, "otto", "*", Role::Operator).await?;
    Ok(Staff {
        relay,
        owner,
        ada,
        otto,
        otto_cred,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_grants_through_the_relay_with_role_checks() -> Result<()> {
    let Staff {
        relay,
        owner,
        ada,
        otto,
        ..
    } = staff().await?;
    // An admin of one host only is no relay administrator.
    let (_, bea) = signed_in(&relay, "bea", "box", Role::Admin).await?;

    // Role too low: typed, naming the role needed.
    let e = refusal(call::<(), Vec<UserInfo>>(&otto, Op::UserList, None).await);
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message.contains("needs role admin, you have operator"),
        "{}",
        e.message
    );
    let e = refusal(call::<(), Vec<UserInfo>>(&bea, Op::UserList, None).await);
    assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
    assert!(
        e.message.contains("needs an admin grant on every host (*)"),
        "{}",
        e.message
    );

    // An admin adds an operator and gets an invite that works.
    let done = change(
        &ada,
        Op::UserManage,
        &UserRequest::Add {
            name: "carl".into(),
            role: Role::Operator,
            host: "box".into(),
        },
    )
    .await?;
    assert_eq!(done.summary, "added carl as operator on box");
    let invite = Invite::decode(done.invite.as_deref().unwrap())?;
    assert_eq!(invite.user.as_str(), "carl");

    // An admin may not give admin: neither disguised as user_manage nor as grant_admin.
    let e = refusal(change(&ada, Op::UserManage, &grant("carl", Role::Admin, "*")).await);
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(e.message.contains("needs role owner"), "{}", e.message);
    // The refused change is in the audit trail as a denial (the header itself was allowed).
    let rows = relay.state.store()?.audit_tail(5)?;
    assert!(
        rows.iter().any(|r| r.event.actor == "ada"
            && r.event.op == "user_manage"
            && r.event.decision == "deny"
            && r.event.reason.as_deref() == Some(e.message.as_str())),
        "{rows:?}"
    );
    let e = refusal(change(&ada, Op::GrantAdmin, &grant("carl", Role::Admin, "*")).await);
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message.contains("needs role owner, you have admin"),
        "{}",
        e.message
    );
    // Nor demote or remove another admin.
    let e = refusal(
        change(
            &ada,
            Op::UserManage,
            &UserRequest::Remove { name: "bea".into() },
        )
        .await,
    );
    assert!(e.message.contains("needs role owner"), "{}", e.message);
    // An owner sending an operator-level change as grant_admin is told to use user_manage.
    let e = refusal(change(&owner, Op::GrantAdmin, &grant("carl", Role::Viewer, "box")).await);
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);

    // Up to operator is fine for an admin; owners grant admin.
    let done = change(&ada, Op::UserManage, &grant("carl", Role::Viewer, "*")).await?;
    assert_eq!(done.summary, "carl is viewer on *");
    let done = change(&owner, Op::GrantAdmin, &grant("carl", Role::Admin, "box")).await?;
    assert_eq!(done.summary, "carl is admin on box");
    let done = change(
        &ada,
        Op::UserManage,
        &UserRequest::Passwd {
            name: "otto".into(),
            password: "a long enough password".into(),
        },
    )
    .await?;
    assert_eq!(done.summary, "password of otto changed");
    let e = refusal(
        change(
            &ada,
            Op::UserManage,
            &UserRequest::Passwd {
                name: "otto".into(),
                password: "short".into(),
            },
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::BadRequest);

    let users: Vec<UserInfo> = call::<(), _>(&ada, Op::UserList, None).await?;
    let carl = users.iter().find(|u| u.name == "carl").unwrap();
    assert_eq!(carl.grants.len(), 2);
    assert!(
        users
            .iter()
            .find(|u| u.name == "otto")
            .unwrap()
            .has_password
    );

    // Revoke a grant, remove a user; unknown users are NotFound.
    change(
        &owner,
        Op::GrantAdmin,
        &UserRequest::Revoke {
            name: "carl".into(),
            host: "box".into(),
        },
    )
    .await?;
    let e = refusal(
        change(
            &ada,
            Op::UserManage,
            &UserRequest::Revoke {
                name: "carl".into(),
                host: "box".into(),
            },
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    assert_eq!(
        e.message,
        "carl has no grant on box; see `cm-tui admin user list`"
    );
    let done = change(
        &ada,
        Op::UserManage,
        &UserRequest::Remove {
            name: "carl".into(),
        },
    )
    .await?;
    assert_eq!(done.summary, "removed carl");
    let e = refusal(
        change(
            &ada,
            Op::UserManage,
            &UserRequest::Remove {
                name: "carl".into(),
            },
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);

    // The last owner stays, even for an owner.
    let e = refusal(
        change(
            &owner,
            Op::GrantAdmin,
            &UserRequest::Remove {
                name: "owner".into(),
            },
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::Conflict);
    assert!(e.message.contains("last owner"), "{}", e.message);

    // Each change is audited with its actor.
    let rows: Vec<AuditEntry> = call(
        &ada,
        Op::AuditRead,
        Some(&AuditQuery {
            user: Some("ada".into()),
            limit: 100,
            ..AuditQuery::default()
        }),
    )
    .await?;
    assert!(rows.iter().all(|r| r.actor == "ada"));
    assert!(
        rows.iter()
            .any(|r| r.op == "user_add" && r.target.as_deref() == Some("carl operator on box"))
    );
    assert!(
        rows.iter()
            .any(|r| r.op == "user_remove" && r.target.as_deref() == Some("removed carl"))
    );
    // One row per change, named for what it did: no second row for the request itself.
    assert!(
        !rows
            .iter()
            .any(|r| r.op == "user_manage" && r.decision == "allow")
    );
    let limited: Vec<AuditEntry> = call(
        &ada,
        Op::AuditRead,
        Some(&AuditQuery {
            limit: 3,
            ..AuditQuery::default()
        }),
    )
    .await?;
    assert_eq!(limited.len(), 3);
    assert!(
        limited.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );
    let e = refusal(
        call::<_, Vec<AuditEntry>>(&otto, Op::AuditRead, Some(&AuditQuery::default())).await,
    );
    assert!(e.message.contains("needs role admin"), "{}", e.message);
    assert_eq!(relay.state.store()?.audit_verify()?, None);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_credentials_and_the_kill_switch_through_the_relay() -> Result<()> {
    let Staff {
        relay,
        owner,
        ada,
        otto,
        otto_cred,
    } = staff().await?;
    let (_, mallory) = signed_in(&relay, "mallory", "*", Role::Operator).await?;

    // Hosts: add gives a token that decodes; list; rotate; revoke.
    let e = refusal(
        call::<_, HostEnrolled>(
            &otto,
            Op::HostAdd,
            Some(&HostAdd {
                name: "box".into(),
                relay_addr: None,
            }),
        )
        .await,
    );
    assert!(
        e.message.contains("needs role admin, you have operator"),
        "{}",
        e.message
    );
    let added: HostEnrolled = call(
        &ada,
        Op::HostAdd,
        Some(&HostAdd {
            name: "box".into(),
            relay_addr: Some(relay.addr_str()),
        }),
    )
    .await?;
    let token = EnrollmentToken::decode(&added.token)?;
    assert_eq!(token.host.as_str(), "box");
    assert_eq!(token.relay, relay.addr_str());
    assert_eq!(token.pin, relay.state.pin);
    let e = refusal(
        call::<_, HostEnrolled>(
            &ada,
            Op::HostAdd,
            Some(&HostAdd {
                name: "box".into(),
                relay_addr: None,
            }),
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::Conflict, "{}", e.message);
    let rotated: HostEnrolled = call(
        &ada,
        Op::HostRotate,
        Some(&HostRequest::Rotate { name: "box".into() }),
    )
    .await?;
    assert_ne!(
        EnrollmentToken::decode(&rotated.token)?.secret.to_hex(),
        token.secret.to_hex()
    );
    let e = refusal(
        call::<_, HostEnrolled>(
            &ada,
            Op::HostRotate,
            Some(&HostRequest::Rotate {
                name: "nope".into(),
            }),
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    let hosts: Vec<HostEntry> = call(&ada, Op::HostRotate, Some(&HostRequest::List)).await?;
    assert_eq!(hosts.len(), 1);
    assert!(!hosts[0].revoked);
    let done: AdminDone =
        call(&ada, Op::HostRevoke, Some(&HostName { name: "box".into() })).await?;
    assert_eq!(done.summary, "revoked host box");
    let hosts: Vec<HostEntry> = call(&ada, Op::HostRotate, Some(&HostRequest::List)).await?;
    assert!(hosts[0].revoked);
    // Rotating a revoked host does not quietly let it back in.
    let e = refusal(
        call::<_, HostEnrolled>(
            &ada,
            Op::HostRotate,
            Some(&HostRequest::Rotate { name: "box".into() }),
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::BadRequest, "{}", e.message);
    assert!(e.message.contains("is revoked"), "{}", e.message);
    let hosts: Vec<HostEntry> = call(&ada, Op::HostRotate, Some(&HostRequest::List)).await?;
    assert!(hosts[0].revoked);

    // Credentials: listed without secrets, filtered, revocable.
    let creds: Vec<CredInfo> = call(
        &ada,
        Op::CredsList,
        Some(&CredsQuery {
            user: Some("otto".into()),
            all: false,
        }),
    )
    .await?;
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].id, otto_cred.cred_id.as_str());
    let e =
        refusal(call::<_, Vec<CredInfo>>(&otto, Op::CredsList, Some(&CredsQuery::default())).await);
    assert_eq!(e.code, ErrorCode::Forbidden);
    let done: AdminDone = call(
        &ada,
        Op::CredsRevoke,
        Some(&CredName {
            id: otto_cred.cred_id.0.clone(),
        }),
    )
    .await?;
    assert_eq!(
        done.summary,
        format!("revoked credential {}", otto_cred.cred_id)
    );
    let (reason, _) = closed_reason(&otto.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);
    // An unknown credential is not_found, for the kill switch as for revoke.
    for (op, body) in [
        (
            Op::Kill,
            serde_json::to_value(KillTarget::Cred { id: "bogus".into() })?,
        ),
        (
            Op::CredsRevoke,
            serde_json::to_value(CredName { id: "bogus".into() })?,
        ),
    ] {
        let e = refusal(call::<_, AdminDone>(&ada, op, Some(&body)).await);
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
        assert!(
            e.message.starts_with("no credential bogus; see "),
            "{}",
            e.message
        );
    }

    // Kill switch for a user: an operator may not, an admin may; the live connection closes.
    let e = refusal(
        call::<_, AdminDone>(
            &mallory,
            Op::Kill,
            Some(&KillTarget::User {
                name: "owner".into(),
            }),
        )
        .await,
    );
    assert!(
        e.message.contains("needs role admin, you have operator"),
        "{}",
        e.message
    );
    let done: AdminDone = call(
        &ada,
        Op::Kill,
        Some(&KillTarget::User {
            name: "mallory".into(),
        }),
    )
    .await?;
    assert_eq!(done.summary, "revoked 1 credential of mallory");
    assert_eq!(closed_reason(&mallory.conn).await?.0, CloseReason::Revoked);
    assert!(owner.conn.close_reason().is_none());
    let rows = relay.state.store()?.audit_tail(50)?;
    assert!(rows.iter().any(|r| r.event.op == "kill"
        && r.event.actor == "ada"
        && r.event.target.as_deref() == Some("revoked 1 credential of mallory")));
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_cannot_kill_or_revoke_the_credentials_of_an_owner_or_another_admin() -> Result<()>
{
    let Staff {
        relay,
        owner,
        ada,
        otto,
        otto_cred,
    } = staff().await?;
    let (adam_cred, adam) = signed_in(&relay, "adam", "box", Role::Admin).await?;
    let owner_cred = relay
        .state
        .store()?
        .list_credentials()?
        .into_iter()
        .find(|c| c.user.as_str() == "owner")
        .expect("the owner's credential")
        .id;
    for (op, body) in [
        (
            Op::Kill,
            serde_json::to_value(KillTarget::User {
                name: "owner".into(),
            })?,
        ),
        (
            Op::Kill,
            serde_json::to_value(KillTarget::Cred {
                id: owner_cred.0.clone(),
            })?,
        ),
        (
            Op::CredsRevoke,
            serde_json::to_value(CredName {
                id: owner_cred.0.clone(),
            })?,
        ),
        (
            Op::CredsRevoke,
            serde_json::to_value(CredName {
                id: adam_cred.cred_id.0.clone(),
            })?,
        ),
        (
            Op::Kill,
            serde_json::to_value(KillTarget::User {
                name: "adam".into(),
            })?,
        ),
    ] {
        let e = refusal(call::<_, AdminDone>(&ada, op, Some(&body)).await);
        assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
        assert!(
            e.message
                .contains("only an owner (on every host) may act on them"),
            "{}",
            e.message
        );
    }
    // Nothing was revoked: both still work.
    let _: Vec<UserInfo> = call::<(), _>(&owner, Op::UserList, None).await?;
    assert!(adam.conn.close_reason().is_none());
    assert!(
        relay
            .state
            .store()?
            .list_credentials()?
            .iter()
            .all(|c| !c.revoked)
    );
    // Users below admin are still the admin's to manage; the owner manages admins.
    let done: AdminDone = call(
        &ada,
        Op::CredsRevoke,
        Some(&CredName {
            id: otto_cred.cred_id.0.clone(),
        }),
    )
    .await?;
    assert_eq!(
        done.summary,
        format!("revoked credential {}", otto_cred.cred_id)
    );
    assert_eq!(closed_reason(&otto.conn).await?.0, CloseReason::Revoked);
    let done: AdminDone = call(
        &owner,
        Op::Kill,
        Some(&KillTarget::User {
            name: "adam".into(),
        }),
    )
    .await?;
    assert_eq!(done.summary, "revoked 1 credential of adam");
    relay.shutdown().await;
    Ok(())
}
