//! "Always" answers become standing grants the agent keeps (OpenCode only ever hears "once"):
//! scoped to the session that was asked, listed, revoked, and never wider than what was shown.

use crate::harness::{Env, Watcher, summary};
use anyhow::{Result, bail, ensure};
use proto::event::Event;
use proto::grant::StandingGrant;
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{OpencodeInfo, PermissionRequest, PromptAccepted, SessionInfo};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use serde_json::json;

async fn new_session(env: &Env, title: &str) -> Result<SessionInfo> {
    env.ok(
        Op::SessionCreate,
        "main",
        None,
        Some(json!({ "title": title })),
    )
    .await
}

async fn write(env: &Env, session: &str, file: &str, key: &str) -> Result<PromptAccepted> {
    env.ok(
        Op::Prompt,
        "main",
        Some(session),
        Some(json!({ "text": format!("WRITE_FILE: {file} hi"), "idempotency_key": key })),
    )
    .await
}

fn asked_in<'a>(e: &'a Event, session: &str) -> Option<&'a PermissionRequest> {
    match e {
        Event::PermissionAsked { request } if request.session == session => Some(request),
        _ => None,
    }
}

fn idle_in(e: &Event, session: &str) -> bool {
    matches!(e, Event::SessionIdle { session: s } if s == session)
}

/// Reads until the session asks permission or finishes its turn; the request, if it asked.
async fn asks_or_finishes(watch: &mut Watcher, session: &str) -> Result<Option<PermissionRequest>> {
    let frames = watch
        .until("a permission request or the end of the turn", |e| {
            asked_in(e, session).is_some() || idle_in(e, session)
        })
        .await?;
    Ok(frames
        .last()
        .and_then(|f| asked_in(&f.event, session).cloned()))
}

async fn answer(env: &Env, session: &str, body: serde_json::Value) -> Result<Reply<bool>> {
    env.call::<bool>(Op::PermissionReply, Some("main"), Some(session), Some(body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_always_for_edits_does_not_approve_edits_in_other_sessions_and_can_be_revoked()
-> Result<()> {
    let env = Env::start(&["main"], None).await?;
    let root = env.root("main");
    let mut watch = env.watch("main", None).await?;
    let _: OpencodeInfo = env.ok(Op::OpencodeStart, "main", None, None).await?;
    let a = new_session(&env, "a").await?;
    let b = new_session(&env, "b").await?;

    write(&env, &a.id, "one.txt", "k1").await?;
    let Some(first) = asks_or_finishes(&mut watch, &a.id).await? else {
        bail!("the first edit did not ask")
    };
    ensure!(first.always == ["*"], "{first:?}");
    let ok = answer(
        &env,
        &a.id,
        json!({"request_id": first.id, "answer": "always", "always_patterns": ["*"]}),
    )
    .await?;
    ensure!(matches!(ok, Reply::Ok(true)), "{ok:?}");
    watch
        .until("the first turn ends", |e| idle_in(e, &a.id))
        .await?;
    ensure!(
        root.join("one.txt").exists(),
        "the allowed edit was not made"
    );

    // Another session (perhaps another operator's) still asks.
    write(&env, &b.id, "two.txt", "k2").await?;
    let Some(other) = asks_or_finishes(&mut watch, &b.id).await? else {
        bail!(
            "an always in session a approved an edit in session b without asking (two.txt written: {})",
            root.join("two.txt").exists()
        )
    };
    let rejected = answer(
        &env,
        &b.id,
        json!({"request_id": other.id, "answer": "reject"}),
    )
    .await?;
    ensure!(matches!(rejected, Reply::Ok(true)), "{rejected:?}");
    watch.until("b's turn ends", |e| idle_in(e, &b.id)).await?;
    ensure!(!root.join("two.txt").exists());

    // The same session: the agent answers for the grant, nobody is asked.
    write(&env, &a.id, "three.txt", "k3").await?;
    let frames = watch
        .until("the third turn ends", |e| idle_in(e, &a.id))
        .await?;
    ensure!(
        !frames.iter().any(|f| asked_in(&f.event, &a.id).is_some()),
        "asked although granted: {:?}",
        summary(&frames)
    );
    ensure!(
        root.join("three.txt").exists(),
        "the granted edit was not made"
    );

    // Listed for viewers, revocable by operators only.
    let grants = match env
        .call_as::<Vec<StandingGrant>>(Role::Viewer, Op::PermissionGrants, Some("main"), None, None)
        .await?
    {
        Reply::Ok(g) => g,
        Reply::Error(e) => bail!("viewer cannot list grants: {e}"),
    };
    ensure!(grants.len() == 1, "{grants:?}");
    let g = &grants[0];
    ensure!(
        g.session == a.id
            && g.permission == "edit"
            && g.patterns == ["*"]
            && g.granted_by.as_str() == "tester"
            && g.uses == 1,
        "{g:?}"
    );
    let by_viewer = env
        .call_as::<StandingGrant>(
            Role::Viewer,
            Op::PermissionRevoke,
            Some("main"),
            None,
            Some(json!({"id": g.id})),
        )
        .await?;
    ensure!(
        matches!(&by_viewer, Reply::Error(e) if e.code == ErrorCode::Forbidden),
        "{by_viewer:?}"
    );
    let revoked: StandingGrant = env
        .ok(
            Op::PermissionRevoke,
            "main",
            None,
            Some(json!({"id": g.id})),
        )
        .await?;
    ensure!(revoked.id == g.id);

    // Revoked: it asks again; "always" without the confirmed patterns, or wider ones, is refused.
    write(&env, &a.id, "four.txt", "k4").await?;
    let Some(again) = asks_or_finishes(&mut watch, &a.id).await? else {
        bail!("a revoked grant still allowed an edit")
    };
    for body in [
        json!({"request_id": again.id, "answer": "always"}),
        json!({"request_id": again.id, "answer": "always", "always_patterns": ["**"]}),
    ] {
        let refused = answer(&env, &a.id, body).await?;
        ensure!(
            matches!(&refused, Reply::Error(e) if e.code == ErrorCode::BadRequest),
            "{refused:?}"
        );
    }
    answer(
        &env,
        &a.id,
        json!({"request_id": again.id, "answer": "reject"}),
    )
    .await?;
    watch
        .until("the last turn ends", |e| idle_in(e, &a.id))
        .await?;
    ensure!(!root.join("four.txt").exists());
    env.shutdown().await;
    Ok(())
}
