//! Sub-agent sessions (OpenCode's `task` tool): the agent announces each child → parent link,
//! which the relay uses to give the child its parent's owner.

use crate::harness::Env;
use anyhow::{Context as _, Result, ensure};
use proto::header::Op;
use proto::message::Control;
use proto::ops::{PromptAccepted, SessionInfo};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_tool_session_is_announced_as_a_child_of_its_parent() -> Result<()> {
    let env = Env::start(&["main"], None).await?;
    let _: serde_json::Value = env.ok(Op::OpencodeStart, "main", None, None).await?;
    let (tx, mut links) = tokio::sync::mpsc::channel(16);
    tokio::spawn(cm_agent::session_links::forward(
        std::sync::Arc::clone(&env.workspaces),
        tx,
    ));
    let parent: SessionInfo = env
        .ok(
            Op::SessionCreate,
            "main",
            None,
            Some(json!({ "title": "parent" })),
        )
        .await?;
    let task = json!({
        "description": "a sub-agent",
        "prompt": "hello from the parent",
        "subagent_type": "general",
    });
    let _: PromptAccepted = env
        .ok(
            Op::Prompt,
            "main",
            Some(&parent.id),
            Some(json!({ "text": format!("TOOL: task {task}"), "idempotency_key": "task-1" })),
        )
        .await?;
    let link = tokio::time::timeout(Duration::from_secs(60), links.recv())
        .await
        .context("no child session announced")?
        .context("the link forwarder ended")?;
    let Control::SessionParent { session, parent: p } = link else {
        anyhow::bail!("unexpected {link:?}");
    };
    ensure!(p == parent.id, "child of {p}, expected {}", parent.id);
    ensure!(
        session != parent.id && session.starts_with("ses_"),
        "{session}"
    );
    env.shutdown().await;
    Ok(())
}
