//! The agent's own limits with the relay's allowance in hand: a real relay authorizes the
//! operation, the real `cm-agent` refuses it because the host is locked (`cm-agent lock`,
//! seen by the running agent without a restart), the operation is disabled in its `[policy]`,
//! or the host owner raised the role it needs.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError};
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::ops::{WatchQuery, WorkspaceInfo};
use proto::rbac::Role;
use proto::wire_error::{ErrorCode, WireError};
use std::process::Command;

fn header(op: Op, workspace: Option<&str>) -> StreamHeader {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from("locked-box"));
    h.workspace = workspace.map(str::to_owned);
    h
}

fn refusal<T: std::fmt::Debug>(r: Result<T, LinkError>) -> WireError {
    match r {
        Err(LinkError::Refused(e)) => e,
        other => panic!("expected a typed refusal, got {other:?}"),
    }
}

fn agent_cli(files: &AgentFiles, args: &[&str]) -> Result<String> {
    let out = Command::new(workspace_bin("cm-agent")?)
        .arg("--config")
        .arg(&files.config)
        .arg("--state-dir")
        .arg(&files.state)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cm-agent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_what_the_relay_allowed() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("locked-box", relay.addr)?;
    let files = enroll_agent(relay.state.tmp.path(), "locked-box", &token)?;
    let mut text = std::fs::read_to_string(&files.config)?;
    text.push_str(
        "\n[policy]\ndisabled_ops = [\"session_list\"]\nmin_role = { opencode_status = \"admin\" }\n",
    );
    std::fs::write(&files.config, text)?;
    let _agent = spawn_agent(&files)?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    watch_until(&op, "agent online", |l| host_online(l, "locked-box")).await?;
    let ops_cred = user_with_grant(&relay, "olga", "*", Role::Operator)?;
    let olga = operator(&relay.addr_str(), &relay.state.pin, &ops_cred).await?;

    // Unlocked: served.
    let list: Vec<WorkspaceInfo> =
        client::request::<(), _>(&op.conn, &header(Op::WorkspaceList, None), None).await?;
    assert!(list.is_empty());

    // Disabled in [policy]: refused to the owner, whom the relay allows everything.
    let e = refusal(
        client::request::<(), serde_json::Value>(
            &op.conn,
            &header(Op::SessionList, Some("demo")),
            None,
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message
            .contains("session_list is disabled by this host's configuration"),
        "{}",
        e.message
    );

    // Raised role: the relay lets an operator ask for opencode_status; the host wants admin.
    let e = refusal(
        client::request::<(), serde_json::Value>(
            &olga.conn,
            &header(Op::OpencodeStatus, Some("demo")),
            None,
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message.contains(
            "opencode_status needs role admin on this host ([policy] min_role), you have operator"
        ),
        "{}",
        e.message
    );
    // The owner passes the policy and reaches the workspace check.
    let e = refusal(
        client::request::<(), serde_json::Value>(
            &op.conn,
            &header(Op::OpencodeStatus, Some("demo")),
            None,
        )
        .await,
    );
    assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);

    // Lock on the host, with the agent running: the next stream is refused.
    let out = agent_cli(&files, &["lock", "--reason", "incident 42"])?;
    assert!(out.contains("host locked"), "{out}");
    let e = refusal(
        client::request::<(), Vec<WorkspaceInfo>>(&op.conn, &header(Op::WorkspaceList, None), None)
            .await,
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message.contains("locked by its owner (incident 42)")
            && e.message.contains("cm-agent unlock"),
        "{}",
        e.message
    );
    let out = agent_cli(&files, &["unlock"])?;
    assert!(out.contains("unlocked"), "{out}");
    let list: Vec<WorkspaceInfo> =
        client::request::<(), _>(&op.conn, &header(Op::WorkspaceList, None), None).await?;
    assert!(list.is_empty());
    relay.shutdown().await;
    Ok(())
}

/// Opens a watch on `demo`'s events on `locked-box`.
async fn watch(s: &client::Session) -> Result<FramedRecv, LinkError> {
    let (mut send, mut recv) =
        client::subscribe(&s.conn, &header(Op::WatchEvents, Some("demo"))).await?;
    send_frame(&mut send, &WatchQuery { after_seq: None }, MAX_FRAME_LEN).await?;
    let _ = send.finish();
    let first: Reply<u64> = recv.expect().await?;
    first.into_result().map_err(LinkError::Refused)?;
    Ok(recv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_ends_watches_already_open() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("locked-box", relay.addr)?;
    let files = enroll_agent(relay.state.tmp.path(), "locked-box", &token)?;
    let root = std::fs::canonicalize(relay.state.tmp.path())?.join("demo");
    std::fs::create_dir_all(&root)?;
    let mut text = std::fs::read_to_string(&files.config)?;
    text.push_str(&format!(
        "\n[[workspace]]\nname = \"demo\"\npath = \"{}\"\n",
        root.display()
    ));
    std::fs::write(&files.config, text)?;
    let _agent = spawn_agent(&files)?;
    let owner = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    watch_until(&op, "agent online", |l| host_online(l, "locked-box")).await?;

    let mut open = watch(&op).await?;
    agent_cli(&files, &["lock", "--reason", "incident 43"])?;
    // The open watch ends (no event would come on an idle workspace otherwise)...
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match open.next::<proto::event::EventFrame>().await {
                Ok(Some(_)) => continue,
                Ok(None) => return "ended",
                Err(_) => return "reset",
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the watch stayed open on a locked host");
    // ... and opening it again says why.
    let e = refusal(watch(&op).await);
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(
        e.message.contains("locked by its owner (incident 43)"),
        "{}",
        e.message
    );

    agent_cli(&files, &["unlock"])?;
    watch(&op).await?;
    relay.shutdown().await;
    Ok(())
}
