//! Workspaces added from a folder beneath a root (`subworkspaces = true`), with the real
//! `opencode serve` and the test model: the root's own OpenCode can swap the folder for a link
//! to anywhere, so every launch (a restart after a crash, too, not only a request's) checks the
//! folder again.

use super::hash_tree;
use crate::harness::Env;
use anyhow::{Context as _, Result, ensure};
use cm_agent::config::{ToolPermission, ToolPermissions, Workspace};
use cm_agent::workspaces::{Setup, Workspaces};
use proto::header::Op;
use proto::message::Reply;
use proto::ops::OpencodeState;
use proto::rbac::Role;
use proto::template::{Template, TemplateContent, TemplateRef, content_hash};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A host whose workspace `src` (at `root`) allows subworkspaces.
fn host(tmp: &Path, root: &Path, model: &cm_test_model::TestModel) -> Result<Arc<Workspaces>> {
    roots(tmp, &[("src", root, ToolPermissions::default())], model)
}

/// A host whose workspaces `roots` (name, folder, permissions) all allow subworkspaces.
fn roots(
    tmp: &Path,
    roots: &[(&str, &Path, ToolPermissions)],
    model: &cm_test_model::TestModel,
) -> Result<Arc<Workspaces>> {
    cm_agent::supervisor::leftovers::become_subreaper()?;
    let binary = crate::harness::opencode_binary()?;
    let state = tmp.join("state");
    let list: Vec<Workspace> = roots
        .iter()
        .map(|(name, root, permissions)| Workspace {
            name: (*name).into(),
            root: root.to_path_buf(),
            permissions: *permissions,
            sandbox: crate::harness::unsandboxed(),
        })
        .collect();
    Ok(Workspaces::start(Setup {
        workspaces: &list,
        config: crate::harness::config(Some(binary), model),
        state_dir: &state,
        policy: cm_agent::policy::Policy::new(Default::default(), &state),
        lease: cm_agent::config::DEFAULT_LAUNCH_LEASE,
        git: Default::default(),
        subworkspace_roots: roots.iter().map(|(n, _, _)| (*n).to_owned()).collect(),
    }))
}

/// A folder `name` in a new root folder `root` beneath `tmp`; the root's canonical path.
fn root_with(tmp: &Path, root: &str, name: &str) -> Result<std::path::PathBuf> {
    let dir = tmp.join("ws").join(root);
    crate::harness::git_workspace(&dir.join(name))?;
    Ok(std::fs::canonicalize(&dir)?)
}

/// A template whose agent `build` may run any shell command, resolved as the relay does.
fn bash_allowing_template() -> Result<(Template, serde_json::Value)> {
    let content = json!({"opencode": {"agent": {"build": {"permission": {"bash": "allow"}}}}});
    let parsed: TemplateContent = serde_json::from_value(content.clone())?;
    let t = Template {
        id: TemplateRef {
            name: "team".into(),
            version: 1,
            hash: content_hash(&parsed),
        },
        author: "admin".into(),
        published_ms: 1,
        content: parsed,
    };
    let body = json!({"name": "team", "resolved": serde_json::to_value(&t)?});
    Ok((t, body))
}

/// The `opencode.json` the agent generated for `workspace`'s last launch.
fn generated_config(tmp: &Path, workspace: &str) -> Result<serde_json::Value> {
    let path = tmp
        .join("state/opencode")
        .join(workspace)
        .join("opencode.json");
    Ok(serde_json::from_slice(&std::fs::read(&path)?)?)
}

fn permissive() -> ToolPermissions {
    ToolPermissions {
        bash: ToolPermission::Allow,
        ..ToolPermissions::default()
    }
}

fn bash_denied() -> ToolPermissions {
    ToolPermissions {
        bash: ToolPermission::Deny,
        ..ToolPermissions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_workspaces_template_does_not_follow_its_name_to_a_stricter_root() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let open = root_with(tmp.path(), "open", "app")?;
    let strict = root_with(tmp.path(), "strict", "app")?;
    let workspaces = roots(
        tmp.path(),
        &[
            ("open", &open, permissive()),
            ("strict", &strict, bash_denied()),
        ],
        &model,
    )?;
    let env = Env {
        tmp,
        model,
        workspaces,
    };
    env.workspaces.add("open", "app", None).await?;
    let (_, body) = bash_allowing_template()?;
    let applied = env
        .call_as::<serde_json::Value>(
            Role::Admin,
            Op::TemplateApply,
            Some("app"),
            None,
            Some(body),
        )
        .await?;
    ensure!(matches!(applied, Reply::Ok(_)), "{applied:?}");
    env.workspaces.remove("app").await?;
    let file = env.tmp.path().join("state/templates/app.json");
    ensure!(
        !file.exists(),
        "the removed workspace's template file stays"
    );

    let app = env.workspaces.add("strict", "app", None).await?;
    app.supervisor.ensure_ready().await?;
    let config = generated_config(env.tmp.path(), "app")?;
    ensure!(
        config.get("agent").is_none(),
        "the old root's template reached the launch: {config}"
    );
    ensure!(config["permission"]["bash"] == "deny", "{config}");
    env.workspaces.shutdown().await;
    Ok(())
}

/// Whatever left a template on record for a workspace (a file from an earlier run, a stale
/// entry), a launch uses it only if it still passes the workspace's permissions now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_does_not_use_a_template_that_no_longer_passes_the_workspaces_permissions()
-> Result<()> {
    let tmp = tempfile::tempdir()?;
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let strict = root_with(tmp.path(), "strict", "app")?;
    let workspaces = roots(tmp.path(), &[("strict", &strict, bash_denied())], &model)?;
    let (t, _) = bash_allowing_template()?;
    workspaces.templates().save("app", &t)?;
    let app = workspaces.add("strict", "app", None).await?;
    app.supervisor.ensure_ready().await?;
    let config = generated_config(tmp.path(), "app")?;
    ensure!(
        config.get("agent").is_none(),
        "a refused template was used: {config}"
    );
    let why = app.supervisor.info().last_error.unwrap_or_default();
    ensure!(why.contains("template team v1 is not used"), "{why}");
    workspaces.shutdown().await;
    Ok(())
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
