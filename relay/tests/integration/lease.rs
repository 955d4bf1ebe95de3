//! Launch leases end to end with a real relay, a real `cm-agent` and a real `opencode serve`:
//! the kill switch for a host stops its OpenCode, revoking the credential that started a
//! launch stops it, and so does a lapsed lease; operators see why. Every wait is on an event
//! (a log line of the agent, an event frame, the process table) with a hang guard.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::{self as client, Session};
use cm_relay::cli::{self, KillArgs};
use cm_relay::framed::send_frame;
use proto::event::{Event, EventFrame};
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::ops::{OpencodeInfo, OpencodeState, WatchQuery};
use proto::rbac::Role;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Pids of processes whose working directory is `dir` (OpenCode runs in the workspace root).
fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

/// Polls the process table until nothing runs in `dir` (bounded).
async fn until_no_process_in(dir: &Path) -> Result<()> {
    tokio::time::timeout(WAIT, async {
        while !processes_in(dir).is_empty() {
            // Re-check interval of a condition, not a synchronisation sleep.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .with_context(|| format!("processes still running in {}", dir.display()))
}

struct Setup {
    relay: TestRelay,
    agent: LoggedAgent,
    owner: Session,
    root: PathBuf,
}

/// A relay, an enrolled real agent with workspace `demo` (and `extra` config lines), online.
async fn setup(extra: &str) -> Result<Setup> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("lease-box", relay.addr)?;
    let files = enroll_agent(relay.state.tmp.path(), "lease-box", &token)?;
    let root = relay.state.tmp.path().join("demo");
    std::fs::create_dir_all(&root)?;
    let root = std::fs::canonicalize(root)?;
    let mut text = std::fs::read_to_string(&files.config)?;
    text.push_str(&format!(
        "\n[[workspace]]\nname = \"demo\"\npath = \"{}\"\n{extra}",
        root.display()
    ));
    std::fs::write(&files.config, text)?;
    let agent = spawn_logged_agent(&files)?;
    let cred = relay.login_owner().await?;
    let owner = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&owner, "agent online", |l| host_online(l, "lease-box")).await?;
    Ok(Setup {
        relay,
        agent,
        owner,
        root,
    })
}

fn header(op: Op) -> StreamHeader {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from("lease-box"));
    h.workspace = Some("demo".into());
    h
}

async fn start_opencode(s: &Session) -> Result<()> {
    let info: OpencodeInfo =
        client::request::<(), _>(&s.conn, &header(Op::OpencodeStart), None).await?;
    anyhow::ensure!(info.state == OpencodeState::Ready, "{info:?}");
    Ok(())
}

/// Starts OpenCode; with a short lease it may already be stopping when the answer is made.
async fn start_opencode_any(s: &Session) -> Result<()> {
    let _: OpencodeInfo =
        client::request::<(), _>(&s.conn, &header(Op::OpencodeStart), None).await?;
    Ok(())
}

/// Opens a watch on `demo`'s events.
async fn watch(s: &Session) -> Result<cm_relay::framed::FramedRecv> {
    let (mut send, mut recv) = client::subscribe(&s.conn, &header(Op::WatchEvents)).await?;
    send_frame(&mut send, &WatchQuery { after_seq: None }, MAX_FRAME_LEN).await?;
    let _ = send.finish();
    let first: Reply<u64> = recv.expect().await?;
    first.into_result()?;
    Ok(recv)
}

async fn until_stopped_because(
    recv: &mut cm_relay::framed::FramedRecv,
    needle: &str,
) -> Result<OpencodeInfo> {
    tokio::time::timeout(WAIT, async {
        loop {
            let frame: EventFrame = recv.expect().await?;
            if let Event::Opencode { info } = frame.event
                && info.state == OpencodeState::Stopped
                && info
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains(needle))
            {
                return Ok::<_, anyhow::Error>(info);
            }
        }
    })
    .await
    .with_context(|| format!("no opencode event saying {needle:?}"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_for_a_host_stops_its_leased_opencode() -> Result<()> {
    let s = setup("").await?;
    start_opencode(&s.owner).await?;
    assert!(
        !processes_in(&s.root).is_empty(),
        "OpenCode runs in the workspace"
    );
    // The real `cm-relay kill`, in its own process, against the running relay's database.
    let out = Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(s.relay.state.dir.root())
        .args(["kill", "--host", "lease-box"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = s
        .agent
        .log
        .wait_line(&["leased OpenCode stopped", "demo"])?;
    assert!(line.contains("kill switch"), "{line}");
    until_no_process_in(&s.root).await?;
    s.relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_starting_credential_stops_its_launch() -> Result<()> {
    let s = setup("").await?;
    let olga_cred = user_with_grant(&s.relay, "olga", "*", Role::Operator)?;
    let olga = operator(&s.relay.addr_str(), &s.relay.state.pin, &olga_cred).await?;
    let mut events = watch(&s.owner).await?;
    start_opencode(&olga).await?;
    cli::kill(
        &s.relay.state.dir,
        &KillArgs {
            user: Some("olga".into()),
            ..kill_args()
        },
    )?;
    let info = until_stopped_because(&mut events, "was revoked").await?;
    assert!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.contains(olga_cred.cred_id.as_str())),
        "{info:?}"
    );
    until_no_process_in(&s.root).await?;
    // The owner, who only watched, is untouched and can start it again (and stops it).
    start_opencode(&s.owner).await?;
    let info: OpencodeInfo =
        client::request::<(), _>(&s.owner.conn, &header(Op::OpencodeStop), None).await?;
    assert_eq!(info.state, OpencodeState::Stopped);
    s.relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_stops_opencode_and_says_why() -> Result<()> {
    let s = setup("\n[policy]\nlaunch_lease = \"3s\"\n").await?;
    // A viewer watching does not keep the launch alive (an attached operator would).
    let vic_cred = user_with_grant(&s.relay, "vic", "*", Role::Viewer)?;
    let vic = operator(&s.relay.addr_str(), &s.relay.state.pin, &vic_cred).await?;
    let mut events = watch(&vic).await?;
    start_opencode_any(&s.owner).await?;
    let info = until_stopped_because(&mut events, "lease lapsed").await?;
    assert!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.contains("3 s")),
        "{info:?}"
    );
    until_no_process_in(&s.root).await?;
    // opencode_status says why too (asking for the status does not start it).
    let status: OpencodeInfo =
        client::request::<(), _>(&s.owner.conn, &header(Op::OpencodeStatus), None).await?;
    assert_eq!(status.state, OpencodeState::Stopped);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease lapsed")),
        "{status:?}"
    );
    s.relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_host_lets_the_lease_lapse_though_an_owner_watches() -> Result<()> {
    let s = setup("\n[policy]\nlaunch_lease = \"3s\"\n").await?;
    // An attached owner renews the launch (every second here) ...
    let mut events = watch(&s.owner).await?;
    start_opencode_any(&s.owner).await?;
    // ... until the host owner locks the host: renewals are re-checked against the lock.
    let state = s.relay.state.tmp.path().join("lease-box/state");
    let out = Command::new(workspace_bin("cm-agent")?)
        .arg("--config")
        .arg(s.relay.state.tmp.path().join("lease-box/agent.toml"))
        .arg("--state-dir")
        .arg(&state)
        .args(["lock", "--reason", "incident"])
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The lock ends the open watch (lock::a_lock_ends_watches_already_open), and with no
    // renewals the launch lapses on the host.
    let ended = tokio::time::timeout(WAIT, async {
        while let Ok(Some(_)) = events.next::<EventFrame>().await {}
    })
    .await;
    assert!(ended.is_ok(), "the watch stayed open on a locked host");
    let line = s
        .agent
        .log
        .wait_line(&["leased OpenCode stopped", "demo"])?;
    assert!(line.contains("lease lapsed"), "{line}");
    until_no_process_in(&s.root).await?;
    s.relay.shutdown().await;
    Ok(())
}
