//! Reading never starts OpenCode for a viewer: starting it needs an operator
//! (`opencode_start`), so a viewer's `session_list`, `messages` or `diff` on a stopped workspace
//! says it is stopped and who can start it.

use crate::harness::Env;
use anyhow::{Result, bail, ensure};
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{OpencodeInfo, OpencodeState, SessionInfo};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use serde_json::{Value, json};

const WS: &str = "reads";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_cannot_start_opencode_by_reading() -> Result<()> {
    let env = Env::start(&[WS], None).await?;
    let reads: [(Op, Option<&str>, Option<Value>); 3] = [
        (Op::SessionList, None, None),
        (Op::Messages, Some("ses_x"), None),
        (Op::Diff, None, Some(json!({"scope": "worktree"}))),
    ];
    for (op, session, body) in reads.clone() {
        match env
            .call_as::<Value>(Role::Viewer, op, Some(WS), session, body)
            .await?
        {
            Reply::Error(e) => {
                ensure!(e.code == ErrorCode::Unavailable, "{}: {e}", op.as_str());
                ensure!(
                    e.message
                        .contains(&format!("OpenCode is stopped in workspace {WS}"))
                        && e.message.contains("an operator can start it")
                        && e.message.contains("cm-tui opencode start"),
                    "{}: {e}",
                    op.as_str()
                );
            }
            Reply::Ok(v) => bail!("a viewer's {} was served: {v}", op.as_str()),
        }
        let info: OpencodeInfo = env.ok(Op::OpencodeStatus, WS, None, None).await?;
        ensure!(
            info.state == OpencodeState::Stopped,
            "a viewer's {} started OpenCode: {info:?}",
            op.as_str()
        );
    }

    // An operator's read still starts it; once it runs, a viewer reads too.
    let _: Vec<SessionInfo> = env.ok(Op::SessionList, WS, None, None).await?;
    match env
        .call_as::<Vec<SessionInfo>>(Role::Viewer, Op::SessionList, Some(WS), None, None)
        .await?
    {
        Reply::Ok(_) => {}
        Reply::Error(e) => bail!("a viewer cannot list sessions of a running OpenCode: {e}"),
    }
    env.shutdown().await;
    Ok(())
}
