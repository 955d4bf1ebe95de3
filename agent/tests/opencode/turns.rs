//! Prompts, permissions, aborts and the operator errors, on one OpenCode.

use crate::harness::{Env, Watcher, summary};
use anyhow::{Context as _, Result, bail, ensure};
use proto::event::Event;
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{
    Aborted, FileDiff, Message, OpencodeInfo, OpencodeState, Part, Pending, PromptAccepted,
    SessionInfo,
};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use serde_json::json;
use std::time::Instant;

async fn new_session(env: &Env, title: &str) -> Result<SessionInfo> {
    env.ok(
        Op::SessionCreate,
        "main",
        None,
        Some(json!({ "title": title })),
    )
    .await
}

async fn prompt(env: &Env, session: &str, text: &str, key: &str) -> Result<PromptAccepted> {
    env.ok(
        Op::Prompt,
        "main",
        Some(session),
        Some(json!({ "text": text, "idempotency_key": key })),
    )
    .await
}

fn idle_of(session: &str) -> impl FnMut(&Event) -> bool + '_ {
    move |e| matches!(e, Event::SessionIdle { session: s } if s == session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_permissions_aborts_and_errors() -> Result<()> {
    let env = Env::start(&["main", "other"], None).await?;
    let mut watch = env.watch("main", None).await?;
    ensure!(
        watch.next_seq == 1,
        "fresh hub starts at 1, got {}",
        watch.next_seq
    );

    let t0 = Instant::now();
    let info: OpencodeInfo = env.ok(Op::OpencodeStart, "main", None, None).await?;
    println!("OpenCode ready after {:?}", t0.elapsed());
    ensure!(info.state == OpencodeState::Ready, "{info:?}");
    ensure!(info.version.as_deref() == Some("1.18.33"), "{info:?}");

    streamed_prompt(&env, &mut watch)
        .await
        .context("(1) prompt streams")?;
    permissions(&env, &mut watch)
        .await
        .context("(2) permissions")?;
    abort(&env, &mut watch).await.context("(3) abort")?;
    operator_errors(&env).await.context("(6) operator errors")?;
    env.shutdown().await;
    Ok(())
}

/// (1) A prompt streams TextDelta events in order whose concatenation is the model's text,
/// ending with SessionIdle; a retry with the same key is not sent twice.
async fn streamed_prompt(env: &Env, watch: &mut Watcher) -> Result<()> {
    let ses = new_session(env, "streaming").await?;
    let t = Instant::now();
    let accepted = prompt(env, &ses.id, "Say hello", "k-hello").await?;
    ensure!(accepted.message_id.starts_with("msg_") && !accepted.duplicate);
    let retry = prompt(env, &ses.id, "Say hello", "k-hello").await?;
    ensure!(
        retry.duplicate && retry.message_id == accepted.message_id,
        "{retry:?}"
    );

    let frames = watch.until("session idle", idle_of(&ses.id)).await?;
    println!("first prompt answered after {:?}", t.elapsed());
    let seqs: Vec<u64> = frames.iter().map(|f| f.seq).collect();
    ensure!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence has gaps: {seqs:?}"
    );
    let text: String = frames
        .iter()
        .filter_map(|f| match &f.event {
            Event::TextDelta { session, delta, .. } if *session == ses.id => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    let deltas = frames
        .iter()
        .filter(|f| matches!(f.event, Event::TextDelta { .. }))
        .count();
    ensure!(
        deltas > 1,
        "expected several deltas: {:?}",
        summary(&frames)
    );
    ensure!(
        text == "Hello from mock LLM. You said: Say hello",
        "streamed text {text:?}"
    );
    ensure!(
        matches!(
            frames.last().map(|f| &f.event),
            Some(Event::SessionIdle { .. })
        ),
        "{:?}",
        summary(&frames)
    );
    // The mock saw exactly one main request for the prompt (the retry never reached OpenCode).
    let mains = env
        .model
        .requests()
        .iter()
        .filter(|r| r.to_string().contains("Say hello") && r.get("tools").is_some())
        .count();
    ensure!(
        mains == 1,
        "the model got {mains} main requests for the prompt"
    );
    // History: our generated user message id is the one OpenCode stored.
    let msgs: Vec<Message> = env.ok(Op::Messages, "main", Some(&ses.id), None).await?;
    ensure!(msgs.len() == 2, "{msgs:?}");
    ensure!(
        msgs[0].id == accepted.message_id && msgs[0].role == "user",
        "{msgs:?}"
    );
    ensure!(
        msgs[1].finish.as_deref() == Some("stop")
            && msgs[1]
                .parts
                .iter()
                .any(|p| matches!(p, Part::Text { text: t, .. } if *t == text)),
        "{msgs:?}"
    );
    let limited: Vec<Message> = env
        .ok(
            Op::Messages,
            "main",
            Some(&ses.id),
            Some(json!({"limit": 1})),
        )
        .await?;
    ensure!(
        limited.len() == 1 && limited[0].role == "assistant",
        "{limited:?}"
    );
    let sessions: Vec<SessionInfo> = env.ok(Op::SessionList, "main", None, None).await?;
    ensure!(sessions.iter().any(|s| s.id == ses.id), "{sessions:?}");
    Ok(())
}

/// (2) A write asks permission; "once" writes the file inside the workspace and the worktree
/// diff shows it; a second answer conflicts; a rejected second run writes nothing.
async fn permissions(env: &Env, watch: &mut Watcher) -> Result<()> {
    let root = env.root("main");
    let ses = new_session(env, "permissions").await?;
    let accepted = prompt(env, &ses.id, "WRITE_FILE: notes/hello.txt hi", "k-write").await?;
    let frames = watch
        .until(
            "permission asked",
            |e| matches!(e, Event::PermissionAsked { request } if request.session == ses.id),
        )
        .await?;
    let Some(Event::PermissionAsked { request }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no request")
    };
    ensure!(request.permission == "edit", "{request:?}");
    let pending: Pending = env.ok(Op::PermissionList, "main", None, None).await?;
    ensure!(
        pending.permissions.iter().any(|p| p.id == request.id),
        "{pending:?}"
    );
    ensure!(
        !root.join("notes/hello.txt").exists(),
        "written before the answer"
    );

    let ok: bool = env
        .ok(
            Op::PermissionReply,
            "main",
            None,
            Some(json!({"request_id": request.id, "answer": "once"})),
        )
        .await?;
    ensure!(ok);
    let frames = watch
        .until("idle after the write", idle_of(&ses.id))
        .await?;
    ensure!(
        frames.iter().any(|f| matches!(&f.event, Event::PermissionReplied { request_id, .. } if *request_id == request.id)),
        "{:?}",
        summary(&frames)
    );
    let written =
        std::fs::read_to_string(root.join("notes/hello.txt")).context("file not written")?;
    ensure!(written == "hi\n", "{written:?}");

    let worktree: Vec<FileDiff> = env
        .ok(Op::Diff, "main", None, Some(json!({"scope": "worktree"})))
        .await?;
    ensure!(
        worktree
            .iter()
            .any(|d| d.file == "notes/hello.txt" && d.additions == 1),
        "{worktree:?}"
    );
    // OpenCode works a turn's diff out from its snapshots on its own time after the turn's
    // idle event (seldom later, under load): asked again, bounded.
    let mut turn: Vec<FileDiff> = Vec::new();
    for _ in 0..50 {
        turn = env
            .ok(
                Op::Diff,
                "main",
                Some(&ses.id),
                Some(json!({"scope": "session", "message_id": accepted.message_id})),
            )
            .await?;
        if turn.iter().any(|d| d.file == "notes/hello.txt") {
            break;
        }
        // Polling a process whose timing we do not control; bounded by the loop.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    ensure!(
        turn.iter().any(|d| d.file == "notes/hello.txt"),
        "turn diff {turn:?}"
    );
    let whole: Vec<FileDiff> = env
        .ok(
            Op::Diff,
            "main",
            Some(&ses.id),
            Some(json!({"scope": "session", "message_id": null})),
        )
        .await?;
    ensure!(
        whole.iter().any(|d| d.file == "notes/hello.txt"),
        "session diff {whole:?}"
    );

    // Answering again: a conflict, not a silent success.
    let again = env
        .call::<bool>(
            Op::PermissionReply,
            Some("main"),
            None,
            Some(json!({"request_id": request.id, "answer": "once"})),
        )
        .await?;
    match again {
        Reply::Error(e) if e.code == ErrorCode::Conflict => {
            ensure!(e.message.contains("already answered"), "{e}");
        }
        other => bail!("second answer: {other:?}"),
    }
    let unknown = env
        .call::<bool>(
            Op::PermissionReply,
            Some("main"),
            None,
            Some(json!({"request_id": "per_000000000000doesnotexist", "answer": "reject"})),
        )
        .await?;
    ensure!(
        matches!(&unknown, Reply::Error(e) if e.code == ErrorCode::NotFound),
        "{unknown:?}"
    );

    // Second run, rejected: no file.
    let ses2 = new_session(env, "rejected").await?;
    prompt(
        env,
        &ses2.id,
        "WRITE_FILE: notes/rejected.txt no",
        "k-reject",
    )
    .await?;
    let frames = watch
        .until(
            "second permission",
            |e| matches!(e, Event::PermissionAsked { request } if request.session == ses2.id),
        )
        .await?;
    let Some(Event::PermissionAsked { request }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no request")
    };
    let ok: bool = env
        .ok(
            Op::PermissionReply,
            "main",
            None,
            Some(json!({"request_id": request.id, "answer": "reject", "message": "not allowed"})),
        )
        .await?;
    ensure!(ok);
    watch
        .until("idle after the rejection", idle_of(&ses2.id))
        .await?;
    ensure!(
        !root.join("notes/rejected.txt").exists(),
        "rejected write happened"
    );
    Ok(())
}

/// (3) Abort of a slow turn: MessageAbortedError, idle, and no more deltas of that turn.
async fn abort(env: &Env, watch: &mut Watcher) -> Result<()> {
    let ses = new_session(env, "abort").await?;
    prompt(env, &ses.id, "SLOW", "k-slow").await?;
    let frames = watch
        .until(
            "first slow delta",
            |e| matches!(e, Event::TextDelta { session, .. } if *session == ses.id),
        )
        .await?;
    let Some(Event::TextDelta {
        message_id: slow_msg,
        ..
    }) = frames.last().map(|f| f.event.clone())
    else {
        bail!("no delta")
    };
    let aborted: Aborted = env.ok(Op::Abort, "main", Some(&ses.id), None).await?;
    ensure!(aborted.rejected_permissions.is_empty(), "{aborted:?}");
    let frames = watch.until("idle after abort", idle_of(&ses.id)).await?;
    ensure!(
        frames.iter().any(|f| matches!(&f.event, Event::SessionError { session, name, .. } if *session == ses.id && name == "MessageAbortedError")),
        "{:?}",
        summary(&frames)
    );
    let idle_at = watch.seen.len();
    // A follow-up turn in the same session gives the aborted stream time to show up if it
    // were still running (the SLOW script sends a delta every 250 ms).
    let next = prompt(env, &ses.id, "after abort", "k-after").await?;
    watch
        .until("follow-up answered", |e| {
            matches!(e, Event::MessageUpdated { session, role, finish: Some(f), .. } if *session == ses.id && role == "assistant" && f == "stop")
        })
        .await?;
    watch
        .until("idle after follow-up", idle_of(&ses.id))
        .await?;
    let late: Vec<_> = watch.seen[idle_at..]
        .iter()
        .filter(
            |f| matches!(&f.event, Event::TextDelta { message_id, .. } if *message_id == slow_msg),
        )
        .collect();
    ensure!(
        late.is_empty(),
        "deltas of the aborted turn after idle: {late:?}"
    );
    ensure!(next.message_id != slow_msg);

    // Abort while a permission is pending: the request is rejected with the abort.
    let ses2 = new_session(env, "abort-pending").await?;
    prompt(env, &ses2.id, "RUN_BASH: echo never", "k-pending").await?;
    let frames = watch
        .until(
            "bash permission",
            |e| matches!(e, Event::PermissionAsked { request } if request.session == ses2.id),
        )
        .await?;
    let Some(Event::PermissionAsked { request }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no request")
    };
    let aborted: Aborted = env.ok(Op::Abort, "main", Some(&ses2.id), None).await?;
    ensure!(
        aborted.rejected_permissions == vec![request.id.clone()],
        "{aborted:?}"
    );
    let pending: Pending = env.ok(Op::PermissionList, "main", None, None).await?;
    ensure!(
        pending.permissions.iter().all(|p| p.session != ses2.id),
        "{pending:?}"
    );
    watch
        .until("idle after abort with pending", idle_of(&ses2.id))
        .await?;
    Ok(())
}

/// (6) Unknown workspace, a deleted root next to a working workspace, unknown op, low role.
async fn operator_errors(env: &Env) -> Result<()> {
    let r = env
        .call::<Vec<SessionInfo>>(Op::SessionList, Some("nope"), None, None)
        .await?;
    match r {
        Reply::Error(e) if e.code == ErrorCode::NotFound => ensure!(
            e.message == "no workspace named nope on this host (workspaces: main, other)",
            "{e}"
        ),
        other => bail!("unknown workspace: {other:?}"),
    }
    let r = env
        .call::<u64>(Op::WatchEvents, Some("nope"), None, None)
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::NotFound),
        "{r:?}"
    );

    std::fs::remove_dir_all(env.root("other"))?;
    let r = env
        .call::<Vec<SessionInfo>>(Op::SessionList, Some("other"), None, None)
        .await?;
    match r {
        Reply::Error(e) if e.code == ErrorCode::Unavailable => {
            ensure!(
                e.message.contains("folder of workspace other is missing"),
                "{e}"
            );
            ensure!(
                !e.message.contains(&env.tmp.path().display().to_string()),
                "path leaked: {e}"
            );
        }
        other => bail!("deleted root: {other:?}"),
    }
    let list: Vec<proto::ops::WorkspaceInfo> =
        match env.call(Op::WorkspaceList, None, None, None).await? {
            Reply::Ok(l) => l,
            Reply::Error(e) => bail!("{e}"),
        };
    ensure!(
        list.iter()
            .map(|w| (w.name.as_str(), w.available))
            .collect::<Vec<_>>()
            == vec![("main", true), ("other", false)],
        "{list:?}"
    );
    // The other workspace is unaffected.
    let sessions: Vec<SessionInfo> = env.ok(Op::SessionList, "main", None, None).await?;
    ensure!(!sessions.is_empty());

    let r = env
        .call::<bool>(Op::Unknown, Some("main"), None, None)
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::UnknownOp),
        "{r:?}"
    );
    let r = env
        .call::<bool>(Op::HostAdd, Some("main"), None, None)
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::Forbidden || e.code == ErrorCode::UnknownOp),
        "{r:?}"
    );
    let r = env
        .call_as::<PromptAccepted>(
            Role::Viewer,
            Op::Prompt,
            Some("main"),
            Some(&sessions[0].id),
            Some(json!({"text": "hi", "idempotency_key": "k-viewer"})),
        )
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::Forbidden),
        "{r:?}"
    );
    // A prompt without its body, and a session id that is not one.
    let r = env
        .call::<PromptAccepted>(Op::Prompt, Some("main"), Some(&sessions[0].id), None)
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::BadRequest),
        "{r:?}"
    );
    let r = env
        .call::<bool>(
            Op::SessionDelete,
            Some("main"),
            Some("ses_../../global/dispose"),
            None,
        )
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::BadRequest),
        "{r:?}"
    );
    let r = env
        .call::<bool>(
            Op::SessionDelete,
            Some("main"),
            Some("ses_000000000000doesnotexist0"),
            None,
        )
        .await?;
    ensure!(
        matches!(&r, Reply::Error(e) if e.code == ErrorCode::NotFound),
        "{r:?}"
    );
    // OpenCode answers `true` to aborting a session it does not have: the operator hears
    // "no session", as for messages and diff.
    let r = env
        .call::<Aborted>(
            Op::Abort,
            Some("main"),
            Some("ses_000000000000doesnotexist0"),
            None,
        )
        .await?;
    match &r {
        Reply::Error(e) if e.code == ErrorCode::NotFound => ensure!(
            e.message
                .contains("no session ses_000000000000doesnotexist0"),
            "{e}"
        ),
        other => bail!("abort of an unknown session: {other:?}"),
    }
    let deleted: bool = env
        .ok(Op::SessionDelete, "main", Some(&sessions[0].id), None)
        .await?;
    ensure!(deleted);
    Ok(())
}
