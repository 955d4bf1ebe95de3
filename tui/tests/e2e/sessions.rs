//! Sessions and questions from the command line through a real relay, agent and OpenCode:
//! rename and delete a session, read a model's question with `permissions` and answer it with
//! `answer`.

use crate::harness::*;
use anyhow::Result;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renamed_and_deleted_from_the_cli() -> Result<()> {
    let world = World::start().await?;
    let id = world.tui_ok(&["new", "box", "demo", "--title", "first"])?;
    let id = id.trim();
    let renamed: Value = serde_json::from_str(&world.tui_ok(&[
        "sessions",
        "box",
        "demo",
        "rename",
        id,
        "second title",
        "--json",
    ])?)?;
    assert_eq!(renamed["id"], id);
    assert_eq!(renamed["title"], "second title");
    let list = world.tui_ok(&["sessions", "box", "demo"])?;
    assert!(list.contains("second title"), "{list}");

    let done = world.tui_ok(&["sessions", "box", "demo", "delete", id])?;
    assert_eq!(done.trim(), format!("{id}: deleted"));
    let list: Value = serde_json::from_str(&world.tui_ok(&["sessions", "box", "demo", "--json"])?)?;
    assert!(
        list.as_array().unwrap().iter().all(|s| s["id"] != id),
        "{list}"
    );
    // A session that is not there: not found (5), said once.
    let out = world.tui(&["sessions", "box", "demo", "rename", id, "x"])?;
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_shown_by_permissions_and_answered_from_the_cli() -> Result<()> {
    let world = World::start().await?;
    let session = world.tui_ok(&["new", "box", "demo"])?;
    let session = session.trim();
    let watcher = world.tui_spawn(&["watch", "box", "demo", "--session", session, "--json"])?;
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        session,
        r#"TOOL: question {"questions":[{"question":"Which color?","header":"Color","options":[{"label":"Red","description":"warm"},{"label":"Blue","description":"cool"}]}]}"#,
        "--wait",
    ])?;
    let asked = watcher.line_until("question_asked", |l| l.contains("\"question_asked\""))?;
    let asked: Value = serde_json::from_str(&asked)?;
    let id = asked["event"]["request"]["id"].as_str().unwrap().to_owned();
    let text = world.tui_ok(&["permissions", "box", "demo"])?;
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("[Color] Which color?"), "{text}");
    assert!(text.contains("choose one: Red | Blue"), "{text}");
    // One answer per question.
    let out = world.tui(&["answer", "box", "demo", &id, "Blue", "Red"])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let done = world.tui_ok(&["answer", "box", "demo", &id, "Blue", "--json"])?;
    let done: Value = serde_json::from_str(&done)?;
    assert_eq!(done["result"], "answered");
    let (status, lines, err) = sender.finish()?;
    assert!(status.success(), "send failed: {err}");
    // `send --wait` showed the question and how to answer it.
    assert!(
        err.contains("Which color?") && err.contains(&format!("cm-tui answer box demo {id}")),
        "{err}"
    );
    let answer = lines.join("\n");
    assert!(
        answer.contains("Blue"),
        "the model got the answer: {answer}"
    );
    Ok(())
}
