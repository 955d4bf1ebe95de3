//! OpenCode held in the workspace, with the real `opencode serve` and the test model: a model
//! tool call that writes outside the workspace is denied without asking anyone
//! (`external_directory: deny`), while one inside asks the operator (`edit: ask`).

use super::hash_tree;
use crate::harness::{Env, Watcher, summary};
use anyhow::{Result, bail, ensure};
use proto::event::Event;
use proto::header::Op;
use proto::ops::{Message, Part, PromptAccepted, SessionInfo};
use serde_json::json;

/// A new session `title` in `workspace`, sent the prompt `text` (the test model turns
/// `WRITE_FILE: path content` into a write tool call).
async fn prompt_new_session(
    env: &Env,
    workspace: &str,
    title: &str,
    text: &str,
    key: &str,
) -> Result<SessionInfo> {
    let ses: SessionInfo = env
        .ok(
            Op::SessionCreate,
            workspace,
            None,
            Some(json!({ "title": title })),
        )
        .await?;
    let _: PromptAccepted = env
        .ok(
            Op::Prompt,
            workspace,
            Some(&ses.id),
            Some(json!({ "text": text, "idempotency_key": key })),
        )
        .await?;
    Ok(ses)
}

/// Waits for `ses` to go idle (`what`) and checks that no permission was asked on the way
/// (`why` says why none may be).
async fn idle_without_asking(
    watch: &mut Watcher,
    ses: &SessionInfo,
    what: &str,
    why: &str,
) -> Result<()> {
    let frames = watch
        .until(
            what,
            |e| matches!(e, Event::SessionIdle { session } if *session == ses.id),
        )
        .await?;
    ensure!(
        !frames
            .iter()
            .any(|f| matches!(&f.event, Event::PermissionAsked { .. })),
        "{why}: {:?}",
        summary(&frames)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_writes_outside_are_denied_and_inside_ask() -> Result<()> {
    let env = Env::start(&["demo"], None).await?;
    let root = env.root("demo");
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("keep.txt"), "keep\n")?;
    let before = hash_tree(&outside);
    let mut watch = env.watch("demo", None).await?;

    // Outside: denied by OpenCode's configuration, no question to the operator.
    let target = outside.join("pwned.txt");
    let ses = prompt_new_session(
        &env,
        "demo",
        "outside",
        &format!("WRITE_FILE: {} pwned", target.display()),
        "k-outside",
    )
    .await?;
    idle_without_asking(
        &mut watch,
        &ses,
        "idle after the outside write",
        "an outside write must be denied, not asked",
    )
    .await?;
    ensure!(!target.exists(), "written outside the workspace");
    ensure!(hash_tree(&outside) == before, "the folder outside changed");
    let msgs: Vec<Message> = env.ok(Op::Messages, "demo", Some(&ses.id), None).await?;
    let tool_error = msgs.iter().flat_map(|m| &m.parts).any(
        |p| matches!(p, Part::Tool { tool, status, .. } if tool == "write" && status == "error"),
    );
    ensure!(tool_error, "the write tool call failed: {msgs:?}");

    // Inside: the operator is asked (and here refuses).
    let ses2 = prompt_new_session(
        &env,
        "demo",
        "inside",
        "WRITE_FILE: notes/in.txt hi",
        "k-inside",
    )
    .await?;
    let frames = watch
        .until(
            "permission asked for the inside write",
            |e| matches!(e, Event::PermissionAsked { request } if request.session == ses2.id),
        )
        .await?;
    let Some(Event::PermissionAsked { request }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no request");
    };
    ensure!(request.permission == "edit", "{request:?}");
    ensure!(
        !root.join("notes/in.txt").exists(),
        "written before the answer"
    );
    let _: bool = env
        .ok(
            Op::PermissionReply,
            "demo",
            Some(&ses2.id),
            Some(json!({ "request_id": request.id, "answer": "reject" })),
        )
        .await?;
    watch
        .until(
            "idle after the refusal",
            |e| matches!(e, Event::SessionIdle { session } if *session == ses2.id),
        )
        .await?;
    ensure!(!root.join("notes/in.txt").exists());
    env.shutdown().await;
    Ok(())
}

/// A workspace whose config relaxes `edit` to `allow`: writes inside happen without a question;
/// writes outside are still denied (`external_directory` cannot be relaxed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaxed_workspace_writes_inside_without_asking_but_never_outside() -> Result<()> {
    use cm_agent::config::{ToolPermission, ToolPermissions, Workspace};
    let binary = crate::harness::opencode_binary()?;
    let tmp = tempfile::tempdir()?;
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let root = tmp.path().join("ws/relaxed");
    crate::harness::git_workspace(&root)?;
    let root = std::fs::canonicalize(&root)?;
    let ws = Workspace {
        name: "relaxed".into(),
        root: root.clone(),
        permissions: ToolPermissions {
            edit: ToolPermission::Allow,
            ..ToolPermissions::default()
        },
        sandbox: crate::harness::unsandboxed(),
    };
    let cfg = crate::harness::config(Some(binary), &model);
    let workspaces = cm_agent::workspaces::Workspaces::spawn(&[ws], cfg, &tmp.path().join("state"));
    let env = Env {
        tmp,
        model,
        workspaces,
    };
    let outside = env.tmp.path().join("outside");
    std::fs::create_dir_all(&outside)?;
    let before = hash_tree(&outside);
    let mut watch = env.watch("relaxed", None).await?;
    for (i, (path, inside)) in [
        ("notes/free.txt".to_owned(), true),
        (outside.join("pwned.txt").display().to_string(), false),
    ]
    .into_iter()
    .enumerate()
    {
        let ses = prompt_new_session(
            &env,
            "relaxed",
            "relaxed",
            &format!("WRITE_FILE: {path} hi"),
            &format!("k-relaxed-{i}"),
        )
        .await?;
        idle_without_asking(
            &mut watch,
            &ses,
            "idle after the write",
            "nothing is asked in a relaxed workspace",
        )
        .await?;
        if inside {
            let written = std::fs::read_to_string(root.join("notes/free.txt"))?;
            ensure!(written == "hi\n", "{written:?}");
        }
    }
    ensure!(
        !outside.join("pwned.txt").exists(),
        "written outside the workspace"
    );
    ensure!(hash_tree(&outside) == before, "the folder outside changed");
    env.shutdown().await;
    Ok(())
}
