//! A refusal by the host's own rules (containment, `[policy]`, the local lock) reaches the
//! operator unchanged and lands in the relay's audit trail next to the relay's "allow".

use crate::forward::{fake_agent_answering, header};
use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError};
use proto::header::Op;
use proto::message::Reply;
use proto::wire_error::{ErrorCode, WireError};

fn refuse(what: String) -> Reply<String> {
    if what.contains("op=fs_rmdir") {
        Reply::Error(WireError::new(
            ErrorCode::Forbidden,
            "refused (symlink): `docs` is a symbolic link",
        ))
    } else if what.contains("op=session_delete") {
        Reply::Error(WireError::new(ErrorCode::NotFound, "no session ses_x"))
    } else {
        Reply::Ok(what)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_refusals_are_audited_at_the_relay() -> Result<()> {
    let relay = TestRelay::start().await?;
    let _agent = fake_agent_answering(&relay, "box", refuse).await?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;

    let err = client::request::<(), String>(&op.conn, &header(Op::FsRmdir, "box"), None)
        .await
        .unwrap_err();
    let LinkError::Refused(e) = err else {
        anyhow::bail!("expected the agent's refusal, got {err}");
    };
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert_eq!(e.message, "refused (symlink): `docs` is a symbolic link");
    // An ordinary failure is not a refusal.
    let mut delete = header(Op::SessionDelete, "box");
    delete.session = Some("ses_x".into());
    assert!(
        client::request::<(), String>(&op.conn, &delete, None)
            .await
            .is_err()
    );
    // A success is passed through untouched.
    let ok: String =
        client::request::<(), String>(&op.conn, &header(Op::Messages, "box"), None).await?;
    assert!(ok.starts_with("owner as owner"), "{ok}");

    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    let rows = relay.state.store()?.audit_tail(100)?;
    let rmdir: Vec<_> = rows.iter().filter(|r| r.event.op == "fs_rmdir").collect();
    let decisions: Vec<&str> = rmdir.iter().map(|r| r.event.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["allow", "deny"],
        "the relay allowed, the agent refused"
    );
    assert_eq!(
        rmdir[1].event.reason.as_deref(),
        Some("refused by the agent: refused (symlink): `docs` is a symbolic link")
    );
    assert_eq!(rmdir[1].event.actor, "owner");
    let deletes = rows.iter().filter(|r| r.event.op == "session_delete");
    assert!(
        deletes.clone().all(|r| r.event.decision == "allow"),
        "not found is no refusal"
    );
    assert_eq!(deletes.count(), 1);
    assert_eq!(relay.state.store()?.audit_verify()?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_never_reach_the_audit_trail() -> Result<()> {
    let relay = TestRelay::start().await?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let mut h = header(Op::Messages, "box");
    h.workspace = Some("\u{1b}]0;pwned\u{7}".into());
    let err = client::request::<(), String>(&op.conn, &h, None)
        .await
        .unwrap_err();
    let LinkError::Refused(e) = err else {
        anyhow::bail!("expected a refusal, got {err}");
    };
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(
        e.message.starts_with("the workspace name is not valid"),
        "{}",
        e.message
    );
    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    let rows = relay.state.store()?.audit_tail(100)?;
    let row = rows
        .iter()
        .find(|r| {
            r.event.reason.as_deref() == Some("malformed workspace name in the stream header")
        })
        .expect("the refusal is audited");
    assert_eq!(row.event.decision, "deny");
    for r in &rows {
        let text = serde_json::to_string(&r.event)?;
        assert!(!text.contains("pwned"), "{text}");
    }
    Ok(())
}
