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
