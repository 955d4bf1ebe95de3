//! (6) A missing binary is a clear error to the operator (no OpenCode needed).

use crate::harness::Env;
use anyhow::{Result, bail, ensure};
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{OpencodeInfo, OpencodeState, SessionInfo};
use proto::wire_error::ErrorCode;

#[tokio::test]
async fn missing_binary_is_a_clear_error() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let env = Env::start(&["w"], Some(tmp.path().join("no-opencode-here"))).await?;
    let r = env
        .call::<Vec<SessionInfo>>(Op::SessionList, Some("w"), None, None)
        .await?;
    match r {
        Reply::Error(e) => {
            ensure!(e.code == ErrorCode::Unavailable, "{e:?}");
            ensure!(
                e.message.contains("OpenCode not found")
                    && e.message
                        .contains("run scripts/install-opencode.sh or set [opencode] binary"),
                "{e}"
            );
        }
        Reply::Ok(_) => bail!("listed sessions without OpenCode"),
    }
    let info: OpencodeInfo = env.ok(Op::OpencodeStatus, "w", None, None).await?;
    ensure!(info.state == OpencodeState::Failed, "{info:?}");
    ensure!(
        info.last_error
            .as_deref()
            .is_some_and(|m| m.contains("install-opencode.sh")),
        "{info:?}"
    );
    let info: OpencodeInfo = env.ok(Op::OpencodeStop, "w", None, None).await?;
    ensure!(info.state == OpencodeState::Stopped, "{info:?}");
    env.shutdown().await;
    Ok(())
}

/// A launch that dies at once is restarted after a backoff, with its stderr in `last_error`.
/// (`/bin/sh` stands in for OpenCode: it runs the workspace's `serve` file as a script.)
#[tokio::test]
async fn a_crashing_launch_backs_off_with_its_output() -> Result<()> {
    let env = Env::start(&["w"], Some("/bin/sh".into())).await?;
    std::fs::write(
        env.root("w").join("serve"),
        "echo 'Error: boom' >&2\nexit 3\n",
    )?;
    let mut watch = env.watch("w", None).await?;
    let start = env.call::<OpencodeInfo>(Op::OpencodeStart, Some("w"), None, None);
    let observe = async {
        let frames = watch
            .until("backoff", |e| {
                matches!(e, proto::event::Event::Opencode { info } if info.state == OpencodeState::Backoff)
            })
            .await?;
        let Some(proto::event::Event::Opencode { info }) = frames.last().map(|f| f.event.clone())
        else {
            bail!("no state")
        };
        ensure!(info.restarts == 1, "{info:?}");
        let err = info.last_error.unwrap_or_default();
        ensure!(
            err.contains("exit status: 3") && err.contains("Error: boom"),
            "{err}"
        );
        // Stopping during the backoff ends it; the waiting start is answered.
        let stopped: OpencodeInfo = env.ok(Op::OpencodeStop, "w", None, None).await?;
        ensure!(stopped.state == OpencodeState::Stopped, "{stopped:?}");
        Ok(())
    };
    let (started, observed) = tokio::join!(start, observe);
    observed?;
    ensure!(matches!(started?, Reply::Error(_)), "start succeeded");
    env.shutdown().await;
    Ok(())
}

/// An agent embedded in another binary (this test) cannot launch OpenCode through
/// `cm-agent __exec-child`, so a workspace whose sandbox is `enforce` or `warn` is refused with
/// the reason, never run unconfined; `off` is the explicit way out.
#[tokio::test]
async fn opencode_is_never_run_without_its_sandbox_when_the_launcher_is_missing() -> Result<()> {
    use cm_agent::sandbox::{Mode, SandboxConfig};
    let binary = crate::harness::opencode_binary()?;
    let tmp = tempfile::tempdir()?;
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let mut list = Vec::new();
    for (name, mode) in [("enforced", Mode::Enforce), ("warned", Mode::Warn)] {
        let root = tmp.path().join("ws").join(name);
        crate::harness::git_workspace(&root)?;
        list.push(cm_agent::config::Workspace {
            name: name.into(),
            root: std::fs::canonicalize(&root)?,
            permissions: Default::default(),
            sandbox: SandboxConfig {
                mode,
                ..SandboxConfig::default()
            },
        });
    }
    let cfg = crate::harness::config(Some(binary), &model);
    let workspaces = cm_agent::workspaces::Workspaces::spawn(&list, cfg, &tmp.path().join("state"));
    let env = Env {
        tmp,
        model,
        workspaces,
    };
    for (name, mode) in [("enforced", "enforce"), ("warned", "warn")] {
        match env
            .call::<OpencodeInfo>(Op::OpencodeStart, Some(name), None, None)
            .await?
        {
            Reply::Error(e) => ensure!(
                e.message.contains("not the cm-agent binary")
                    && e.message.contains(&format!("mode = \"{mode}\"")),
                "{e}"
            ),
            Reply::Ok(info) => bail!("OpenCode ran without its sandbox: {info:?}"),
        }
        let info: OpencodeInfo = env.ok(Op::OpencodeStatus, name, None, None).await?;
        ensure!(info.state == OpencodeState::Failed, "{info:?}");
        ensure!(
            info.last_error
                .as_deref()
                .is_some_and(|m| m.contains("cm-agent run")),
            "{info:?}"
        );
    }
    env.shutdown().await;
    Ok(())
}
