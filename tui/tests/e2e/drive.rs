//! Driving OpenCode from the operator's side, through relay and agent (issue: "Drive OpenCode
//! from anywhere"): streamed answers, permissions, diffs, abort, several watchers, bad input.

use crate::harness::*;
use anyhow::Result;
use serde_json::Value;

fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn kind(v: &Value) -> &str {
    v["event"]["type"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_opencode_end_to_end() -> Result<()> {
    let world = World::start().await?;

    // 1. `send --wait` streams the answer; deltas arrive in order and add up to the model's text.
    let session = world
        .tui_ok(&["new", "box", "demo", "--title", "e2e"])?
        .trim()
        .to_owned();
    assert!(session.starts_with("ses_"), "{session}");
    let out = world.send_wait(&session, "Say hello")?;
    assert_eq!(out.trim_end(), "Hello from mock LLM. You said: Say hello");
    let json = world.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "Say hello again",
        "--wait",
        "--json",
    ])?;
    let frames = events(&json.lines().map(str::to_owned).collect::<Vec<_>>());
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] > w[0]),
        "sequence numbers increase: {seqs:?}"
    );
    let deltas: String = frames
        .iter()
        .filter(|f| kind(f) == "text_delta")
        .map(|f| f["event"]["delta"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        frames.iter().filter(|f| kind(f) == "text_delta").count() > 1,
        "several deltas"
    );
    assert_eq!(deltas, "Hello from mock LLM. You said: Say hello again");
    assert_eq!(kind(frames.last().unwrap()), "session_idle");

    // 2. A tool call that writes a file asks permission; approving writes it inside the workspace.
    let watcher = world.tui_spawn(&["watch", "box", "demo", "--session", &session, "--json"])?;
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "WRITE_FILE: notes/hello.txt hi",
        "--wait",
    ])?;
    let asked = watcher.line_until("permission_asked", |l| l.contains("\"permission_asked\""))?;
    let asked: Value = serde_json::from_str(&asked)?;
    let request = asked["event"]["request"]["id"].as_str().unwrap().to_owned();
    assert_eq!(asked["event"]["request"]["permission"], "edit");
    let pending = world.tui_ok(&["permissions", "box", "demo", "--json"])?;
    assert!(pending.contains(&request), "{pending}");
    assert!(
        !world.workspace.join("notes/hello.txt").exists(),
        "nothing written before approval"
    );
    // What an approval approves is shown before it: the edit's diff.
    let listed = world.tui_ok(&["permissions", "box", "demo"])?;
    assert!(
        listed.contains("notes/hello.txt") && listed.contains("+hi"),
        "{listed}"
    );
    // "Always" says in words what it allows, and without a terminal it needs --yes.
    let unconfirmed = world.tui(&["approve", "box", "demo", &request, "--always"])?;
    assert!(!unconfirmed.status.success());
    let err = String::from_utf8_lossy(&unconfirmed.stderr);
    assert!(
        err.contains("every edit of any file in this session until OpenCode restarts")
            && err.contains("--yes"),
        "{err}"
    );
    let approved = world.tui_ok(&[
        "approve",
        "box",
        "demo",
        &request,
        "--always",
        "--this-only",
        "--yes",
    ])?;
    assert!(
        approved.contains("edits of `notes/hello.txt` in this session"),
        "{approved}"
    );
    let (status, _, err) = sender.finish()?;
    assert!(status.success(), "send failed: {err}");
    assert_eq!(
        std::fs::read_to_string(world.workspace.join("notes/hello.txt"))?,
        "hi\n"
    );
    // The grant is listed, and revoked.
    let grants: Value = serde_json::from_str(&world.tui_ok(&[
        "permissions",
        "box",
        "demo",
        "--always",
        "--json",
    ])?)?;
    assert_eq!(grants.as_array().map(Vec::len), Some(1), "{grants}");
    assert_eq!(grants[0]["patterns"][0], "notes/hello.txt");
    assert_eq!(grants[0]["session"], session.as_str());
    let grant = grants[0]["id"].as_str().unwrap_or_default().to_owned();
    let revoked = world.tui_ok(&["permissions", "box", "demo", "--revoke", &grant])?;
    assert!(revoked.contains("revoked"), "{revoked}");
    let none = world.tui_ok(&["permissions", "box", "demo", "--always"])?;
    assert!(none.contains("no standing grants"), "{none}");
    let diff = world.tui_ok(&["diff", "box", "demo", &session, "--worktree"])?;
    assert!(
        diff.contains("notes/hello.txt") && diff.contains("+hi"),
        "{diff}"
    );
    // Answering it again is a clear error.
    let again = world.tui(&["approve", "box", "demo", &request])?;
    assert!(!again.status.success());
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again_err.starts_with("cm-tui: ") && again_err.lines().count() == 1,
        "{again_err}"
    );

    // Rejecting leaves no file, and the history shows the refused tool call.
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "WRITE_FILE: notes/no.txt nope",
        "--wait",
    ])?;
    let asked = watcher.line_until("second permission_asked", |l| {
        l.contains("\"permission_asked\"")
    })?;
    let asked: Value = serde_json::from_str(&asked)?;
    let request = asked["event"]["request"]["id"].as_str().unwrap().to_owned();
    world.tui_ok(&["reject", "box", "demo", &request, "--message", "not today"])?;
    let (status, _, err) = sender.finish()?;
    assert!(status.success(), "send after reject: {err}");
    assert!(!world.workspace.join("notes/no.txt").exists());
    let history = world.tui_ok(&["messages", "box", "demo", &session])?;
    assert!(history.contains("not today"), "{history}");
    assert!(history.contains("[tool write: completed]"), "{history}");
    drop(watcher);

    // 3. Abort during a slow answer ends the turn; no delta after it.
    let watcher = world.tui_spawn(&["watch", "box", "demo", "--session", &session, "--json"])?;
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "SLOW 200 100ms",
        "--wait",
    ])?;
    watcher.line_until("first slow delta", |l| l.contains("\"text_delta\""))?;
    world.tui_ok(&["abort", "box", "demo", &session])?;
    let (status, _, err) = sender.finish()?;
    assert!(!status.success(), "an aborted turn exits non-zero");
    assert!(err.contains("aborted"), "{err}");
    watcher.line_until("idle after abort", |l| l.contains("\"session_idle\""))?;
    let history = world.tui_ok(&["messages", "box", "demo", &session, "--json"])?;
    assert!(history.contains("MessageAbortedError"), "{history}");
    drop(watcher);

    // 4. Two watchers of one session see the same events in the same order.
    let w1 = world.tui_spawn(&["watch", "box", "demo", "--session", &session, "--json"])?;
    let w2 = world.tui_spawn(&["watch", "box", "demo", "--session", &session, "--json"])?;
    // Both subscriptions are live once `watch` has connected; a prompt then reaches both.
    world.send_wait(&session, "ECHO_DELTAS: 6")?;
    let collect = |w: &Proc| -> Result<Vec<String>> {
        let mut seen = Vec::new();
        loop {
            let line = w.next_line()?;
            let v: Value = serde_json::from_str(&line)?;
            let done = kind(&v) == "session_idle";
            seen.push(line);
            if done {
                return Ok(seen);
            }
        }
    };
    let a = collect(&w1)?;
    let b = collect(&w2)?;
    assert_eq!(a, b, "both watchers saw the same frames");
    assert!(a.iter().filter(|l| l.contains("\"text_delta\"")).count() >= 6);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_get_one_line_errors() -> Result<()> {
    let mut world = World::start().await?;
    let check = |args: &[&str], needle: &str| -> Result<()> {
        let out = world.tui(args)?;
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        Ok(())
    };
    check(&["sessions", "box", "nope"], "no workspace named nope")?;
    check(
        &["messages", "box", "demo", "ses_doesnotexist"],
        "no session ses_doesnotexist",
    )?;
    check(&["sessions", "ghost", "demo"], "no host named ghost")?;
    // The agent goes away: a prompt to an offline host says so.
    // SIGTERM (on drop), so the agent stops its OpenCode before it goes.
    drop(world.agent.take());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = world.tui(&["send", "box", "demo", "hi"])?;
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        if err.contains("offline") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reported offline: {err}"
        );
    }
    Ok(())
}
