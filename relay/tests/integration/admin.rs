//! Administration through the relay: every operation, its role checks (typed errors naming the
//! role needed), the grant_admin/user_manage split, last-owner protection, the kill switch
//! closing live connections, and the audit trail recording each change.

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

async fn call<B: Serialize, T: DeserializeOwned>(
    s: &Session,
    op: Op,
    body: Option<&B>,
) -> Result<T, LinkError> {
    client::request(&s.conn, &StreamHeader::new(op, ReqId(1)), body).await
}

fn refusal<T: std::fmt::Debug>(r: Result<T, LinkError>) -> WireError {
    match r {
        Err(LinkError::Refused(e)) => e,
        other => panic!("expected a typed refusal, got {other:?}"),
    }
}

async fn change(s: &Session, op: Op, req: &UserRequest) -> Result<AdminDone, LinkError> {
    call(s, op, Some(req)).await
}

fn grant(name: &str, role: Role, host: &str) -> UserRequest {
    UserRequest::Grant {
        name: name.into(),
        role,
        host: host.into(),
    }
}

/// A new user `name` with `role` on `host`, signed in as an operator client.
async fn signed_in(
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
struct Staff {
    relay: TestRelay,
    owner: Session,
    ada: Session,
    otto: Session,
    otto_cred: IssuedCredential,
}

async fn staff() -> Result<Staff> {
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

/// An agent that answers each forwarded stream with the hex of every byte that followed the
/// forward header (to check the relay forwards bodies byte for byte).
async fn raw_agent(relay_addr: &str, pin: &str, token: &EnrollmentToken) -> Result<Session> {
    use cm_relay::framed::FramedRecv;
    let conn = client::dial(relay_addr, pin, &quick_dial()).await?;
    let mut session = client::authenticate(
        conn,
        proto::handshake::PeerKind::Agent,
        &proto::ids::CredId(token.host.0.clone()),
        &token.secret,
    )
    .await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, proto::frame::MAX_HEADER_LEN);
                let _fwd: proto::ops::ForwardHeader = recv.expect().await?;
                let mut bytes = recv.take_buffered().to_vec();
                bytes.extend(recv.into_inner().read_to_end(1 << 20).await?);
                cm_relay::framed::send_frame(
                    &mut send,
                    &proto::message::Reply::Ok(hex::encode(bytes)),
                    proto::frame::MAX_FRAME_LEN,
                )
                .await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    cm_relay::framed::send_frame(
        &mut session.control_send,
        &proto::message::Control::Heartbeat {
            seq: 1,
            status: Default::default(),
        },
        proto::frame::MAX_FRAME_LEN,
    )
    .await?;
    Ok(session)
}

/// Sends a prompt through a relay with `full_text`, checks it reached the agent byte for byte,
/// and returns the reason of its audit row.
async fn prompt_through(full_text: bool) -> Result<String> {
    let state = RelayState::new()?;
    let mut config = state.config("127.0.0.1:0".parse()?);
    config.audit_prompt_text = full_text;
    let server = cm_relay::server::Relay::spawn(config).await?;
    let relay = TestRelay {
        addr: server.local_addr(),
        relay: Some(server),
        state,
    };
    let token = relay.state.add_host("box", relay.addr)?;
    let _agent = raw_agent(&relay.addr_str(), &relay.state.pin, &token).await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let prompt = proto::ops::Prompt {
        text: "deploy the secret plan".into(),
        idempotency_key: "k1".into(),
        model: None,
        agent: None,
    };
    let mut h = StreamHeader::new(Op::Prompt, ReqId(5));
    h.host = Some(proto::ids::HostId::from("box"));
    h.workspace = Some("demo".into());
    h.session = Some("ses_1".into());
    let forwarded: String = client::request(&op.conn, &h, Some(&prompt)).await?;
    let sent = proto::frame::to_frame(&prompt, proto::frame::MAX_FRAME_LEN)?;
    assert_eq!(forwarded, hex::encode(&sent), "forwarded byte for byte");
    let rows = relay.state.store()?.audit_tail(20)?;
    let row = rows
        .iter()
        .find(|r| r.event.op == "prompt" && r.event.decision == "allow")
        .expect("the prompt is audited");
    assert_eq!(relay.state.store()?.audit_verify()?, None);
    let reason = row.event.reason.clone().unwrap_or_default();
    relay.shutdown().await;
    Ok(reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_audited_hashed_by_default_and_in_full_when_configured() -> Result<()> {
    // The owner prompts into a session no one recorded: a take-over, noted before the text.
    let takeover = "take-over of a session owned by nobody on record; ";
    let hashed = prompt_through(false).await?;
    assert_eq!(
        hashed,
        format!(
            "{takeover}prompt blake3:{}",
            blake3::hash(b"deploy the secret plan").to_hex()
        )
    );
    let full = prompt_through(true).await?;
    assert_eq!(
        full,
        format!("{takeover}prompt text: deploy the secret plan")
    );
    Ok(())
}

/// `cm-tui admin …` (the real binary, `--json`): the scripting commands reach the relay's
/// administration operations, pick `grant_admin` where the change needs it, and fail clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cm_tui_admin_commands_with_json() -> Result<()> {
    use crate::keyring::{PASSWORD, text, tui};
    let relay = TestRelay::start().await?;
    cm_relay::cli::user_passwd(&relay.state.dir, "owner", PASSWORD)?;
    let root = relay.state.tmp.path();
    let (state, home) = (root.join("tui"), root.join("home"));
    let bus = format!("unix:path={}", root.join("no-bus").display());
    let run =
        |args: &[&str]| tokio::task::block_in_place(|| tui(&state, &home, &bus, "file", args));
    let json = |args: &[&str]| -> Result<serde_json::Value> {
        let out = run(args)?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", text(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let addr = relay.addr_str();
    let login = run(&[
        "login",
        &addr,
        "--user",
        "owner",
        "--pin",
        &relay.state.pin,
        "--password-stdin",
    ])?;
    assert!(login.status.success(), "{}", text(&login));

    let done: AdminDone = serde_json::from_value(json(&[
        "admin", "user", "add", "bob", "--role", "operator", "--host", "box", "--json",
    ])?)?;
    assert_eq!(done.summary, "added bob as operator on box");
    assert!(Invite::decode(done.invite.as_deref().unwrap()).is_ok());
    let done: AdminDone = serde_json::from_value(json(&[
        "admin", "user", "grant", "bob", "admin", "--host", "box", "--json",
    ])?)?;
    assert_eq!(done.summary, "bob is admin on box");
    let users: Vec<UserInfo> = serde_json::from_value(json(&["admin", "user", "list", "--json"])?)?;
    let bob = users.iter().find(|u| u.name == "bob").unwrap();
    assert_eq!(bob.grants.len(), 1);
    assert_eq!(bob.grants[0].role, Role::Admin);
    // Removing an admin goes as grant_admin (the client looks the grants up first).
    let done: AdminDone =
        serde_json::from_value(json(&["admin", "user", "remove", "bob", "--json"])?)?;
    assert_eq!(done.summary, "removed bob");

    let enrolled: HostEnrolled = serde_json::from_value(json(&[
        "admin",
        "host",
        "add",
        "box",
        "--relay-addr",
        &addr,
        "--json",
    ])?)?;
    assert_eq!(
        EnrollmentToken::decode(&enrolled.token)?.host.as_str(),
        "box"
    );
    let hosts: Vec<HostEntry> =
        serde_json::from_value(json(&["admin", "host", "list", "--json"])?)?;
    assert_eq!(hosts.len(), 1);
    let creds: Vec<CredInfo> = serde_json::from_value(json(&[
        "admin", "creds", "list", "--user", "owner", "--json",
    ])?)?;
    assert_eq!(creds.len(), 1);
    let rows: Vec<AuditEntry> = serde_json::from_value(json(&[
        "admin", "audit", "--user", "owner", "--limit", "5", "--json",
    ])?)?;
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.actor.starts_with("owner")));

    // Bad input is refused before anything is sent, naming the flag and what is allowed.
    let bad = run(&["admin", "user", "add", "eve", "--role", "root"])?;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--role")
            && err.contains("unknown role \"root\"; use one of viewer, operator, admin, owner"),
        "{}",
        text(&bad)
    );
    assert!(!err.contains("I/O"), "{}", text(&bad));
    let bad = run(&["admin", "user", "grant", "eve", "root"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("use one of viewer, operator, admin, owner"),
        "{}",
        text(&bad)
    );
    for args in [
        &["admin", "kill"][..],
        &["admin", "kill", "--user", "bob", "--all"][..],
    ] {
        let bad = run(args)?;
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            ["--user", "--host", "--cred", "--all"]
                .iter()
                .all(|f| err.contains(f)),
            "{args:?}: {}",
            text(&bad)
        );
    }
    // Relay refusals read as sentences.
    let bad = run(&["admin", "user", "revoke", "dave", "--host", "nohost"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("dave has no grant on nohost"),
        "{}",
        text(&bad)
    );
    let bad = run(&["admin", "kill", "--cred", "bogus"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no credential bogus"),
        "{}",
        text(&bad)
    );
    // Times print in UTC, not as raw milliseconds.
    let utc = |ms: u64| cm_relay::time::utc(ms);
    let out = run(&["admin", "creds", "list", "--user", "owner"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("expires {}", utc(creds[0].expires_ms))),
        "{}",
        text(&out)
    );
    assert!(
        !stdout.contains(&creds[0].expires_ms.to_string()),
        "{stdout}"
    );
    // Enough rows to still hold the ones read above (more have been written since).
    let out = run(&["admin", "audit", "--user", "owner", "--limit", "1000"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&utc(rows[0].ts_ms)), "{stdout}");
    assert!(!stdout.contains(&rows[0].ts_ms.to_string()), "{stdout}");
    // The human form.
    let out = run(&["admin", "user", "list"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("owner on *"),
        "{}",
        text(&out)
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_admin_action_is_one_audit_row_naming_what_was_done_and_to_what() -> Result<()> {
    let Staff {
        relay,
        ada,
        otto_cred,
        ..
    } = staff().await?;
    let before = relay
        .state
        .store()?
        .audit_tail(1)?
        .first()
        .map_or(0, |r| r.id);
    let _: Vec<HostEntry> = call(&ada, Op::HostRotate, Some(&HostRequest::List)).await?;
    let _: HostEnrolled = call(
        &ada,
        Op::HostAdd,
        Some(&HostAdd {
            name: "box".into(),
            relay_addr: None,
        }),
    )
    .await?;
    let _: AdminDone = call(
        &ada,
        Op::CredsRevoke,
        Some(&CredName {
            id: otto_cred.cred_id.0.clone(),
        }),
    )
    .await?;
    let _ = refusal(
        call::<_, AdminDone>(
            &ada,
            Op::Kill,
            Some(&KillTarget::User {
                name: "owner".into(),
            }),
        )
        .await,
    );
    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    let mut rows: Vec<(String, Option<String>, String)> = relay
        .state
        .store()?
        .audit_tail(100)?
        .into_iter()
        .filter(|r| r.id > before && r.event.actor == "ada")
        .map(|r| (r.event.op, r.event.target, r.event.decision))
        .collect();
    rows.sort();
    let row = |op: &str, target: &str, decision: &str| {
        (op.to_owned(), Some(target.to_owned()), decision.to_owned())
    };
    assert_eq!(
        rows,
        vec![
            row(
                "cred_revoke",
                &format!("revoked credential {}", otto_cred.cred_id),
                "allow"
            ),
            row("host_add", "enrolled host box", "allow"),
            ("host_list".to_owned(), None, "allow".to_owned()),
            row("kill", "user owner", "deny"),
        ]
    );
    Ok(())
}

/// A client that sends an administration header and never its body is answered with a timeout
/// error once the relay's body timeout (its handshake timeout, 1 s here) has passed, the refusal
/// is audited, and the relay lets go of the stream (it stops reading it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_body_that_never_comes_is_refused_and_its_stream_freed() -> Result<()> {
    use cm_relay::framed::{FramedRecv, send_frame};
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let (mut send, recv) = owner.conn.open_bi().await?;
    let header = StreamHeader::new(Op::Kill, ReqId(1));
    send_frame(&mut send, &header, proto::frame::MAX_HEADER_LEN).await?;
    // No body and no end of stream: the send side stays open.
    let mut recv = FramedRecv::new(recv, proto::frame::MAX_FRAME_LEN);
    let reply =
        tokio::time::timeout(WAIT, recv.expect::<proto::message::Reply<AdminDone>>()).await??;
    match reply {
        proto::message::Reply::Error(e) => {
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert_eq!(e.message, "no kill body in time");
        }
        other @ proto::message::Reply::Ok(_) => panic!("expected a refusal, got {other:?}"),
    }
    // The relay stopped reading: the stream is not held open waiting for the body.
    tokio::time::timeout(WAIT, send.stopped()).await??;
    let rows = relay.state.store()?.audit_tail(1)?;
    assert_eq!(rows[0].event.op, "kill");
    assert_eq!(rows[0].event.decision, "deny");
    assert_eq!(
        rows[0].event.reason.as_deref(),
        Some("no kill body in time")
    );
    relay.shutdown().await;
    Ok(())
}
