//! Answering from a phone's terminal (issue 22): `cm-tui attention` lists a permission that
//! waits on a real OpenCode with the command that answers it, and that very command answers it,
//! then a turn the model failed;
//! the full-screen app in a 50-column tmux pane shows the request's diff, approves it with `y`
//! and reads the session's diff (files stacked above the patch), all with single keys.

use crate::harness::*;
use crate::tmux::{Tmux, line_with};
use anyhow::Result;
use serde_json::Value;

/// Starts a write that waits for permission in a new session; returns (session, request id,
/// the running `send --wait`).
fn waiting_write(world: &World, file: &str) -> Result<(String, String, Proc)> {
    let session = world.tui_ok(&["new", "box", "demo", "--title", "phone test"])?;
    let session = session.trim().to_owned();
    let watcher = world.tui_spawn(&["watch", "box", "demo", "--session", &session, "--json"])?;
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        &format!("WRITE_FILE: {file} hi"),
        "--wait",
    ])?;
    let asked = watcher.line_until("permission_asked", |l| l.contains("\"permission_asked\""))?;
    let asked: Value = serde_json::from_str(&asked)?;
    let request = asked["event"]["request"]["id"].as_str().unwrap().to_owned();
    Ok((session, request, sender))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attention_lists_a_waiting_permission_with_the_command_that_answers_it() -> Result<()> {
    let world = World::start().await?;
    let none = world.tui_ok(&["attention"])?;
    assert!(none.contains("nothing waits for you"), "{none}");

    let (session, request, sender) = waiting_write(&world, "notes/phone.txt")?;
    let json: Value = serde_json::from_str(&world.tui_ok(&["attention", "--json"])?)?;
    let waiting = json["waiting"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{json}");
    let item = &waiting[0];
    assert_eq!(item["kind"], "permission");
    assert_eq!(item["host"], "box");
    assert_eq!(item["workspace"], "demo");
    assert_eq!(item["session"], session.as_str());
    assert_eq!(item["title"], "phone test");
    assert_eq!(item["id"], request.as_str());
    let approve = format!("cm-tui approve box demo -- {request}");
    assert_eq!(item["commands"][0], approve.as_str());

    let text = world.tui_ok(&["attention"])?;
    assert!(
        text.contains("⚠ permission edit") && text.contains("box/demo · phone test"),
        "{text}"
    );
    assert!(text.contains(&approve), "{text}");

    // The printed command, run as printed, answers it.
    assert!(!world.workspace.join("notes/phone.txt").exists());
    let words: Vec<&str> = approve.split(' ').skip(1).collect();
    let done = world.tui_ok(&words)?;
    assert!(done.contains("allowed once"), "{done}");
    let (status, _, err) = sender.finish()?;
    assert!(status.success(), "send failed: {err}");
    assert_eq!(
        std::fs::read_to_string(world.workspace.join("notes/phone.txt"))?,
        "hi\n"
    );
    let after = world.tui_ok(&["attention"])?;
    assert!(after.contains("nothing waits for you"), "{after}");

    // A turn the model fails (HTTP 400) waits for a human too, with how to go on.
    let failing = world.tui_ok(&["new", "box", "demo", "--title", "failing"])?;
    let failing = failing.trim();
    let out = world.tui(&[
        "send",
        "box",
        "demo",
        "--session",
        failing,
        "FAIL400",
        "--wait",
    ])?;
    assert_eq!(out.status.code(), Some(7), "the turn failed: {out:?}");
    // OpenCode settles the session (idle, the message's error) just after the failure event
    // that ended `send --wait`: ask until it is listed (bounded).
    let deadline = std::time::Instant::now() + WAIT;
    let waiting = loop {
        let json: Value = serde_json::from_str(&world.tui_ok(&["attention", "--json"])?)?;
        let waiting = json["waiting"].as_array().cloned().unwrap_or_default();
        if !waiting.is_empty() {
            break waiting;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the failed turn was never listed: {json}"
        );
    };
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["kind"], "turn_failed");
    assert_eq!(waiting[0]["session"], failing);
    assert_eq!(
        waiting[0]["commands"][0],
        format!("cm-tui send box demo --session {failing} 'try again'").as_str()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_column_terminal_reads_the_diff_and_approves_a_permission() -> Result<()> {
    let world = World::start().await?;
    let (_session, _request, sender) = waiting_write(&world, "notes/narrow.txt")?;
    let tmux = Tmux::start_sized(&world, 50, 30)?;

    // Hosts → workspaces → sessions, each a single key.
    tmux.wait_for("box online", |s| {
        line_with(s, "box").is_some_and(|l| l.contains('●'))
    })?;
    tmux.press("Enter")?;
    tmux.wait_for("the demo workspace", |s| line_with(s, "demo").is_some())?;
    tmux.press("Enter")?;
    tmux.wait_text(&["phone test"])?;
    tmux.press("Enter")?;

    // The request box shows the file and its diff, paged, with single-letter keys.
    tmux.wait_text(&[
        "⚠ permission",
        "notes/narrow.txt",
        "+hi",
        "y once",
        "r reject",
    ])?;
    assert!(!world.workspace.join("notes/narrow.txt").exists());

    tmux.press("y")?;
    tmux.wait_for("the write to complete", |s| {
        !s.contains("⚠ permission") && s.contains("Tool finished")
    })?;
    let (status, _, err) = sender.finish()?;
    assert!(status.success(), "send failed: {err}");
    assert_eq!(
        std::fs::read_to_string(world.workspace.join("notes/narrow.txt"))?,
        "hi\n"
    );

    // `d`: the session's diff, the file list above the patch; Backspace goes back.
    tmux.press("d")?;
    let diff = tmux.wait_for("the diff with notes/narrow.txt", |s| {
        s.contains("diff:") && s.contains("notes/narrow.txt") && s.contains("+hi")
    })?;
    // Stacked, not side by side: the file list's row comes before the patch's.
    let row = |needle: &str| diff.lines().position(|l| l.contains(needle));
    assert!(
        row("A notes/narrow.txt") < row("+hi") && row("A notes/narrow.txt").is_some(),
        "{diff}"
    );
    tmux.press("BSpace")?;
    tmux.wait_for("the session again", |s| {
        s.contains("Tool finished") && !s.contains("diff:")
    })?;
    tmux.press("q")?;
    Ok(())
}
