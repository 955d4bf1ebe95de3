//! From an empty workspace root to a configured OpenCode session without touching the host
//! (issue 17's whole path), through the real binaries: `git init` and `git config` a new
//! folder, `git clone` a repository served by `git daemon` on 127.0.0.1, see the clone as a
//! candidate workspace and add it, publish a template on the relay and apply it there, start
//! OpenCode, and have prompts answered by the model the template names and by the one a prompt
//! picks (the test model records which model each request asked for).

use crate::fs_git::{git, git_daemon};
use crate::harness::*;
use anyhow::{Context as _, Result};
use serde_json::Value;

/// A second model of the test model's provider, inside the `[opencode]` tables.
const SECOND_MODEL: &str = r#"
[opencode.provider.mock.models.mock-other]
name = "Mock Other"
tool_call = true
"#;

fn last_model_asked(world: &World) -> Option<String> {
    world
        .model
        .requests()
        .last()
        .and_then(|b| b["model"].as_str().map(str::to_owned))
}

/// A bare repository `src.git` beneath a new temporary folder, with one commit.
fn served_repository() -> Result<tempfile::TempDir> {
    let served = tempfile::tempdir()?;
    let work = served.path().join("work");
    std::fs::create_dir(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    std::fs::write(work.join("README.md"), "a service\n")?;
    git(&work, &["add", "."])?;
    git(
        &work,
        &[
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "first",
        ],
    )?;
    git(served.path(), &["clone", "-q", "--bare", "work", "src.git"])?;
    Ok(served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_root_becomes_a_configured_session_with_the_chosen_model() -> Result<()> {
    let served = served_repository()?;
    let daemon = format!("git://127.0.0.1:{}", git_daemon(served.path()).await?);
    // `demo`'s own table first (subfolders may become workspaces), then the host tables.
    let world = World::start_with(
        &format!("subworkspaces = true\n\n[git]\nclone_from = [\"{daemon}/*\"]\n{SECOND_MODEL}"),
        &[],
    )
    .await?;

    // git init + config of a new folder, then a clone into another.
    let out = world.tui_ok(&["git", "box", "demo", "init", "notes"])?;
    assert!(
        out.contains("initialized an empty repository in notes"),
        "{out}"
    );
    world.tui_ok(&[
        "git",
        "box",
        "demo",
        "--dir",
        "notes",
        "config",
        "user.email",
        "ada@example.com",
    ])?;
    let url = format!("{daemon}/src.git");
    let out = world.tui_ok(&["git", "box", "demo", "clone", &url, "service"])?;
    assert!(
        out.starts_with(&format!("cloned {url} into service")),
        "{out}"
    );

    // Both folders are candidate workspaces; the clone becomes one.
    let candidates: Value =
        serde_json::from_str(&world.tui_ok(&["workspaces", "candidates", "box", "--json"])?)?;
    let listed = candidates.to_string();
    assert!(
        listed.contains("\"service\"") && listed.contains("\"notes\""),
        "{listed}"
    );
    world.tui_ok(&["workspaces", "add", "box", "demo", "service"])?;

    // A template published on the relay (as admin) names the model; applied to the new
    // workspace by name.
    let file = world
        .workspace
        .parent()
        .context("no parent")?
        .join("team.json");
    std::fs::write(
        &file,
        r#"{"description": "service defaults",
            "opencode": {"model": "mock/mock-other", "permission": {"webfetch": "deny"}}}"#,
    )?;
    let file = file.to_string_lossy().into_owned();
    let out = world.tui_ok(&["template", "publish", "team", &file])?;
    assert!(out.starts_with("team v1 blake3:"), "{out}");
    world.tui_ok(&["opencode", "box", "service", "start"])?;
    let applied = world.tui(&["template", "apply", "box", "service", "team"])?;
    let progress = String::from_utf8_lossy(&applied.stderr);
    assert!(applied.status.success(), "{progress}");
    assert!(progress.contains("starting OpenCode"), "{progress}");

    let workspaces: Value =
        serde_json::from_str(&world.tui_ok(&["workspaces", "box", "--json"])?)?;
    let service = workspaces
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["name"] == "service")
        .context("service not listed")?;
    assert_eq!(service["template"]["name"], "team", "{service}");
    assert_eq!(service["template"]["version"], 1, "{service}");
    assert_eq!(service["opencode"]["state"], "ready", "{service}");

    // A session in the clone: the template's model answers, then the one a prompt picks.
    let session = world.tui_ok(&["new", "box", "service", "--title", "setup"])?;
    let session = session.trim();
    let answer = world.tui_ok(&[
        "send",
        "box",
        "service",
        "--session",
        session,
        "Say hello",
        "--wait",
    ])?;
    assert!(!answer.trim().is_empty(), "no answer");
    assert_eq!(last_model_asked(&world).as_deref(), Some("mock-other"));
    let answer = world.tui_ok(&[
        "send",
        "box",
        "service",
        "--session",
        session,
        "Say hello again",
        "--model",
        "mock/mock-model",
        "--wait",
    ])?;
    assert!(!answer.trim().is_empty(), "no answer");
    assert_eq!(last_model_asked(&world).as_deref(), Some("mock-model"));
    Ok(())
}
