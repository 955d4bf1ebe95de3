//! Workspaces added from a folder beneath a root (`subworkspaces = true`), with the real
//! `opencode serve` and the test model: the root's own OpenCode can swap the folder for a link
//! to anywhere, so every launch (a restart after a crash, too, not only a request's) checks the
//! folder again.

use super::hash_tree;
use anyhow::{Context as _, Result, ensure};
use cm_agent::config::Workspace;
use cm_agent::workspaces::{Setup, Workspaces};
use proto::ops::OpencodeState;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A host whose workspace `src` (at `root`) allows subworkspaces.
fn host(tmp: &Path, root: &Path, model: &cm_test_model::TestModel) -> Result<Arc<Workspaces>> {
    cm_agent::supervisor::leftovers::become_subreaper()?;
    let binary = crate::harness::opencode_binary()?;
    let state = tmp.join("state");
    let src = Workspace {
        name: "src".into(),
        root: root.to_owned(),
        permissions: Default::default(),
        sandbox: crate::harness::unsandboxed(),
    };
    Ok(Workspaces::start(Setup {
        workspaces: &[src],
        config: crate::harness::config(Some(binary), model),
        state_dir: &state,
        policy: cm_agent::policy::Policy::new(Default::default(), &state),
        lease: cm_agent::config::DEFAULT_LAUNCH_LEASE,
        git: Default::default(),
        subworkspace_roots: vec!["src".into()],
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_the_folder_became_a_link_does_not_start_opencode_in_the_link_target()
-> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let root = tmp.path().join("ws/src");
    std::fs::create_dir_all(&root)?;
    let root = std::fs::canonicalize(&root)?;
    crate::harness::git_workspace(&root.join("app"))?;
    // Stands for the agent user's home: never a workspace.
    let home = std::fs::canonicalize(tmp.path())?.join("home");
    std::fs::create_dir_all(&home)?;
    std::fs::write(home.join("secret"), "do not touch\n")?;
    let before = hash_tree(&home);
    let workspaces = host(tmp.path(), &root, &model)?;
    let app = workspaces.add("src", "app", None).await?;
    app.supervisor.ensure_ready().await?;
    let first = app
        .supervisor
        .snapshot()
        .pid
        .context("no pid while ready")?;

    // The root's OpenCode swaps the folder for a link to the home folder, then OpenCode of
    // `app` dies: the supervisor restarts it after a delay, with no request admitted on the way.
    std::fs::rename(root.join("app"), root.join("app.old"))?;
    std::os::unix::fs::symlink(&home, root.join("app"))?;
    let mut watch = app.supervisor.watch();
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()?;
    ensure!(killed.success(), "cannot kill OpenCode {first}");
    let settled = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            {
                let s = watch.borrow_and_update();
                let relaunched = s.info.state == OpencodeState::Ready && s.pid != Some(first);
                if relaunched || s.info.state == OpencodeState::Failed {
                    return Ok::<_, anyhow::Error>(s.clone());
                }
            }
            watch.changed().await?;
        }
    })
    .await
    .context("no relaunch nor failure after the kill")??;
    let cwd = settled
        .pid
        .and_then(|p| std::fs::read_link(format!("/proc/{p}/cwd")).ok());
    ensure!(
        settled.info.state == OpencodeState::Failed,
        "OpenCode was started again (cwd {cwd:?}): {:?}",
        settled.info
    );
    ensure!(settled.pid.is_none(), "a process runs: {settled:?}");
    let why = settled.info.last_error.unwrap_or_default();
    ensure!(
        why.contains("no longer a real folder directly in its root"),
        "{why}"
    );
    ensure!(hash_tree(&home) == before, "the link target changed");
    workspaces.shutdown().await;
    Ok(())
}
