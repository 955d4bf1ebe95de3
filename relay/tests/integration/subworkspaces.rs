//! Workspaces made from folders beneath a root (`[[workspace]] subworkspaces = true`), end to
//! end: the real `cm-tui workspaces candidates|add|remove` against a real relay and `cm-agent`,
//! OpenCode started in the added workspace, the relay's host list showing it without a
//! restart, the record surviving an agent restart, and the refusals: links, `..` and nested
//! paths, a root that does not allow it, a taken name, removing a configured workspace.

use crate::harness::*;
use crate::keyring::{PASSWORD, text, tui};
use anyhow::Result;
use proto::ops::{OpencodeInfo, OpencodeState, WorkspaceInfo};
use proto::workspace::{WorkspaceCandidates, WorkspaceRemoved};
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git").args(args).current_dir(dir).output()?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The names in `dir`, sorted (to see that nothing changed).
fn listing(dir: &Path) -> Result<Vec<String>> {
    let mut v = std::fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subfolders_of_a_root_become_workspaces_and_nothing_else_does() -> Result<()> {
    let relay = TestRelay::start().await?;
    cm_relay::cli::user_passwd(&relay.state.dir, "owner", PASSWORD)?;
    let tmp = relay.state.tmp.path().to_owned();
    let token = relay.state.add_host("sub-box", relay.addr)?;
    let files = enroll_agent(&tmp, "sub-box", &token)?;

    // Root `src` allows subworkspaces: a repository `app` on branch dev, a folder `plain`, a
    // hidden folder, and a link to a folder outside every root. Root `fixed` does not.
    std::fs::create_dir_all(tmp.join("src"))?;
    let src = std::fs::canonicalize(tmp.join("src"))?;
    let fixed = tmp.join("fixed");
    std::fs::create_dir_all(fixed.join("inner"))?;
    let outside = tmp.join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret.txt"), "do not touch\n")?;
    std::fs::create_dir(src.join("app"))?;
    git(&src.join("app"), &["init", "-q", "-b", "dev"])?;
    std::fs::create_dir(src.join("plain"))?;
    std::fs::create_dir(src.join(".hidden"))?;
    std::os::unix::fs::symlink(&outside, src.join("link"))?;
    let outside_before = listing(&outside)?;
    let mut config = std::fs::read_to_string(&files.config)?;
    config.push_str(&format!(
        "\n[[workspace]]\nname = \"src\"\npath = \"{}\"\nsubworkspaces = true\n\n\
         [[workspace]]\nname = \"fixed\"\npath = \"{}\"\n",
        src.display(),
        fixed.display()
    ));
    std::fs::write(&files.config, config)?;
    let mut agent = spawn_logged_agent(&files)?;

    let (state, home) = (tmp.join("tui"), tmp.join("home"));
    let bus = format!("unix:path={}", tmp.join("no-bus").display());
    let run =
        |args: &[&str]| tokio::task::block_in_place(|| tui(&state, &home, &bus, "file", args));
    let json = |args: &[&str]| -> Result<serde_json::Value> {
        let out = run(args)?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", text(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    // A refusal: a failed exit whose message holds `needle`.
    let refused = |args: &[&str], needle: &str| -> Result<()> {
        let out = run(args)?;
        anyhow::ensure!(
            !out.status.success(),
            "{args:?} was accepted: {}",
            text(&out)
        );
        let all = text(&out);
        anyhow::ensure!(
            all.contains(needle),
            "{args:?}: expected {needle:?} in {all}"
        );
        Ok(())
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
    let cred = relay.login_owner().await?;
    let owner = operator(&addr, &relay.state.pin, &cred).await?;
    watch_until(&owner, "agent online", |l| host_online(l, "sub-box")).await?;

    // Candidates: the real folders of `src` only (no link, no hidden folder, nothing of `fixed`).
    let list: WorkspaceCandidates =
        serde_json::from_value(json(&["workspaces", "candidates", "sub-box", "--json"])?)?;
    let found: Vec<(&str, &str, bool, Option<&str>)> = list
        .candidates
        .iter()
        .map(|c| {
            (
                c.root.as_str(),
                c.folder.as_str(),
                c.is_git,
                c.branch.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("src", "app", true, Some("dev")),
            ("src", "plain", false, None)
        ]
    );
    let text_list = run(&["workspaces", "candidates", "sub-box"])?;
    assert!(String::from_utf8_lossy(&text_list.stdout).contains("app"));

    // Added, started, listed, and in the relay's host list without a restart.
    let info: WorkspaceInfo = serde_json::from_value(json(&[
        "workspaces",
        "add",
        "sub-box",
        "src",
        "app",
        "--json",
    ])?)?;
    assert_eq!(info.name, "app");
    assert!(info.available);
    let started: OpencodeInfo =
        serde_json::from_value(json(&["opencode", "sub-box", "app", "start", "--json"])?)?;
    assert_eq!(started.state, OpencodeState::Ready, "{started:?}");
    let all: Vec<WorkspaceInfo> =
        serde_json::from_value(json(&["workspaces", "sub-box", "--json"])?)?;
    assert!(
        all.iter()
            .any(|w| w.name == "app" && w.opencode.state == OpencodeState::Ready)
    );
    watch_until(&owner, "app in the host's workspaces", |l| {
        l.hosts.iter().any(|h| {
            h.status
                .as_ref()
                .is_some_and(|s| s.workspaces.iter().any(|w| w == "app"))
        })
    })
    .await?;
    let candidates: WorkspaceCandidates = serde_json::from_value(json(&[
        "workspaces",
        "candidates",
        "sub-box",
        "--root",
        "src",
        "--json",
    ])?)?;
    assert_eq!(candidates.candidates[0].workspace.as_deref(), Some("app"));

    // Refusals.
    refused(
        &["workspaces", "add", "sub-box", "src", "link"],
        "refused (symlink)",
    )?;
    refused(
        &["workspaces", "add", "sub-box", "src", ".."],
        "refused (folder_name)",
    )?;
    refused(
        &["workspaces", "add", "sub-box", "src", "app/.git"],
        "refused (folder_name)",
    )?;
    refused(
        &["workspaces", "add", "sub-box", "src", "../fixed"],
        "refused (folder_name)",
    )?;
    refused(
        &["workspaces", "add", "sub-box", "src", "missing"],
        "refused (not_found)",
    )?;
    refused(
        &["workspaces", "add", "sub-box", "fixed", "inner"],
        "does not allow subworkspaces",
    )?;
    refused(
        &["workspaces", "candidates", "sub-box", "--root", "fixed"],
        "does not allow subworkspaces",
    )?;
    refused(
        &[
            "workspaces",
            "add",
            "sub-box",
            "src",
            "plain",
            "--name",
            "app",
        ],
        "already exists",
    )?;
    refused(
        &[
            "workspaces",
            "add",
            "sub-box",
            "src",
            "plain",
            "--name",
            "src",
        ],
        "already exists",
    )?;
    refused(
        &[
            "workspaces",
            "add",
            "sub-box",
            "src",
            "app",
            "--name",
            "app2",
        ],
        "already is workspace app",
    )?;
    refused(
        &["workspaces", "remove", "sub-box", "src"],
        "refused (configured_workspace)",
    )?;
    assert_eq!(
        listing(&outside)?,
        outside_before,
        "the folder outside the roots changed"
    );

    // Added workspaces survive a restart of the agent; one whose folder vanished meanwhile is
    // listed as unavailable, and the agent starts all the same.
    json(&["workspaces", "add", "sub-box", "src", "plain", "--json"])?;
    agent.proc.terminate()?;
    std::fs::remove_dir(src.join("plain"))?;
    let _agent = spawn_logged_agent(&files)?;
    watch_until(&owner, "agent back online", |l| host_online(l, "sub-box")).await?;
    let all: Vec<WorkspaceInfo> =
        serde_json::from_value(json(&["workspaces", "sub-box", "--json"])?)?;
    assert!(
        all.iter().any(|w| w.name == "app" && w.available),
        "{all:?}"
    );
    assert!(
        all.iter().any(|w| w.name == "plain" && !w.available),
        "{all:?}"
    );

    // The root's own OpenCode could swap the folder for a link to elsewhere: the added
    // workspace then refuses every operation instead of following it.
    std::fs::rename(src.join("app"), src.join("app-moved"))?;
    std::os::unix::fs::symlink(&outside, src.join("app"))?;
    refused(
        &["opencode", "sub-box", "app", "start"],
        "missing or not accessible",
    )?;
    refused(&["fs", "sub-box", "app", "ls"], "missing or not accessible")?;
    let all: Vec<WorkspaceInfo> =
        serde_json::from_value(json(&["workspaces", "sub-box", "--json"])?)?;
    assert!(
        all.iter().any(|w| w.name == "app" && !w.available),
        "{all:?}"
    );
    assert_eq!(
        listing(&outside)?,
        outside_before,
        "the folder outside the roots changed"
    );
    std::fs::remove_file(src.join("app"))?;
    std::fs::rename(src.join("app-moved"), src.join("app"))?;
    json(&["workspaces", "remove", "sub-box", "plain", "--json"])?;

    // Removed: forgotten, its folder untouched.
    let removed: WorkspaceRemoved =
        serde_json::from_value(json(&["workspaces", "remove", "sub-box", "app", "--json"])?)?;
    assert_eq!(
        (removed.root.as_str(), removed.folder.as_str()),
        ("src", "app")
    );
    let all: Vec<WorkspaceInfo> =
        serde_json::from_value(json(&["workspaces", "sub-box", "--json"])?)?;
    assert!(all.iter().all(|w| w.name != "app"), "{all:?}");
    assert!(
        src.join("app/.git/HEAD").is_file(),
        "the folder was touched"
    );
    refused(
        &["opencode", "sub-box", "app", "status"],
        "no workspace named app",
    )?;
    relay.shutdown().await;
    Ok(())
}
