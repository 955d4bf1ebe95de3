//! (4) A killed OpenCode is restarted and its tool processes do not survive it; (5) a stop
//! leaves no OpenCode and no tool process behind.

use crate::harness::{Env, Watcher, alive, eventually, processes_matching};
use anyhow::{Context as _, Result, bail, ensure};
use proto::event::Event;
use proto::header::Op;
use proto::ops::{OpencodeInfo, OpencodeState, PromptAccepted, SessionInfo};
use serde_json::json;
use std::time::{Duration, Instant};

const WS: &str = "life";

/// Starts `sleep <secs>` through the bash tool (approved) and returns its pid.
async fn running_sleep(env: &Env, watch: &mut Watcher, secs: u32, key: &str) -> Result<i32> {
    let ses: SessionInfo = env
        .ok(Op::SessionCreate, WS, None, Some(json!({"title": key})))
        .await?;
    let cmd = format!("sleep {secs}");
    let _: PromptAccepted = env
        .ok(
            Op::Prompt,
            WS,
            Some(&ses.id),
            Some(json!({"text": format!("RUN_BASH: {cmd}"), "idempotency_key": key})),
        )
        .await?;
    let frames = watch
        .until(
            "bash permission",
            |e| matches!(e, Event::PermissionAsked { request } if request.session == ses.id),
        )
        .await?;
    let Some(Event::PermissionAsked { request }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no request")
    };
    ensure!(request.permission == "bash", "{request:?}");
    let _: bool = env
        .ok(
            Op::PermissionReply,
            WS,
            None,
            Some(json!({"request_id": request.id, "answer": "once"})),
        )
        .await?;
    let mut pid = None;
    eventually(
        &format!("a `{cmd}` process"),
        Duration::from_secs(30),
        || {
            pid = processes_matching(&cmd)
                .into_iter()
                .find(|(_, c)| c == &cmd || c.ends_with(&format!("-c {cmd}")))
                .map(|(p, _)| p);
            pid.is_some()
        },
    )
    .await?;
    let pid = pid.context("no pid")?;
    // The launch marker is how leftovers are found after OpenCode is gone.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    ensure!(
        String::from_utf8_lossy(&environ).contains("CM_AGENT_LAUNCH="),
        "tool process {pid} does not carry the launch marker"
    );
    Ok(pid)
}

fn opencode_state(e: &Event, state: OpencodeState) -> bool {
    matches!(e, Event::Opencode { info } if info.state == state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restart_then_clean_stop() -> Result<()> {
    let env = Env::start(&[WS], None).await?;
    let mut watch = env.watch(WS, None).await?;
    let t0 = Instant::now();
    let info: OpencodeInfo = env.ok(Op::OpencodeStart, WS, None, None).await?;
    println!("OpenCode ready after {:?}", t0.elapsed());
    ensure!(
        info.state == OpencodeState::Ready && info.restarts == 0,
        "{info:?}"
    );
    let rt = env.workspaces.get(WS).context("workspace")?;
    let first_pid = rt.supervisor.snapshot().pid.context("no pid")?;

    // (4) SIGKILL OpenCode while a tool process runs: the tool process is killed with it, and
    // OpenCode comes back.
    let orphan = running_sleep(&env, &mut watch, 301, "k-sleep-1").await?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(first_pid)?).context("pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    let frames = watch
        .until("backoff after the crash", |e| {
            opencode_state(e, OpencodeState::Backoff)
        })
        .await?;
    let Some(Event::Opencode { info }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no state")
    };
    ensure!(info.restarts == 1, "{info:?}");
    ensure!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.contains("exited unexpectedly")),
        "{info:?}"
    );
    ensure!(
        !alive(orphan),
        "tool process {orphan} outlived its OpenCode"
    );
    let t1 = Instant::now();
    let frames = watch
        .until("ready after the restart", |e| {
            opencode_state(e, OpencodeState::Ready)
        })
        .await?;
    println!(
        "restarted after {:?} (includes the 1 s backoff)",
        t1.elapsed()
    );
    let Some(Event::Opencode { info }) = frames.last().map(|f| f.event.clone()) else {
        bail!("no state")
    };
    ensure!(info.restarts >= 1, "{info:?}");
    let second_pid = rt
        .supervisor
        .snapshot()
        .pid
        .context("no pid after restart")?;
    ensure!(second_pid != first_pid);

    // (5) Stop with an approved tool process running: nothing survives.
    let sleeper = running_sleep(&env, &mut watch, 302, "k-sleep-2").await?;
    let t2 = Instant::now();
    let info: OpencodeInfo = env.ok(Op::OpencodeStop, WS, None, None).await?;
    println!("stopped after {:?}", t2.elapsed());
    ensure!(info.state == OpencodeState::Stopped, "{info:?}");
    ensure!(rt.supervisor.snapshot().pid.is_none());
    ensure!(
        !alive(i32::try_from(second_pid)?),
        "OpenCode {second_pid} still alive"
    );
    ensure!(!alive(sleeper), "tool process {sleeper} survived the stop");
    // Only this test's tool processes: other tests on the machine may run sleeps of their own.
    let left: Vec<_> = processes_matching("sleep 30")
        .into_iter()
        .filter(|(_, cmd)| cmd.ends_with("sleep 301") || cmd.ends_with("sleep 302"))
        .collect();
    ensure!(
        left.iter().all(|(p, _)| !alive(*p)),
        "left behind: {left:?}"
    );
    env.shutdown().await;
    Ok(())
}

/// Without operations or events for `idle_stop`, OpenCode is stopped; the next operation
/// starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_opencode_is_stopped_and_restarted_on_demand() -> Result<()> {
    let env = Env::start_with(&["idle"], None, |c| {
        c.idle_stop = Some(Duration::from_secs(2))
    })
    .await?;
    let mut watch = env.watch("idle", None).await?;
    let info: OpencodeInfo = env.ok(Op::OpencodeStart, "idle", None, None).await?;
    ensure!(info.state == OpencodeState::Ready, "{info:?}");
    let pid = env
        .workspaces
        .get("idle")
        .and_then(|w| w.supervisor.snapshot().pid)
        .context("no pid")?;
    watch
        .until("idle stop", |e| opencode_state(e, OpencodeState::Stopped))
        .await?;
    ensure!(
        !alive(i32::try_from(pid)?),
        "OpenCode {pid} still alive after the idle stop"
    );
    let sessions: Vec<SessionInfo> = env.ok(Op::SessionList, "idle", None, None).await?;
    ensure!(sessions.is_empty(), "{sessions:?}");
    env.shutdown().await;
    Ok(())
}

/// Processes of an earlier run of the agent (same state folder) that was killed without
/// stopping its OpenCode are killed when the agent starts.
#[tokio::test]
async fn leftovers_of_an_earlier_run_are_killed_at_start() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let state = tmp.path().join("state");
    let config = state.join("opencode/w/opencode.json");
    // A stand-in for a stale tool process: re-parented to this test process (a subreaper), as
    // it would be to the agent, with a launch marker and the earlier run's config path.
    cm_agent::supervisor::leftovers::become_subreaper()?;
    let out = std::process::Command::new("sh")
        .args(["-c", "sleep 303 >/dev/null 2>&1 & echo $!"])
        .env("CM_AGENT_LAUNCH", "earlier-run")
        .env("OPENCODE_CONFIG", &config)
        .output()?;
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    ensure!(alive(pid), "stand-in {pid} did not start");
    // Someone else's process with a marker but another state folder is left alone.
    let other = tmp.path().join("other/opencode/w/opencode.json");
    let out = std::process::Command::new("sh")
        .args(["-c", "sleep 304 >/dev/null 2>&1 & echo $!"])
        .env("CM_AGENT_LAUNCH", "someone-else")
        .env("OPENCODE_CONFIG", &other)
        .output()?;
    let foreign: i32 = String::from_utf8_lossy(&out.stdout).trim().parse()?;

    let ws = cm_agent::config::Workspace {
        name: "w".into(),
        root: tmp.path().to_owned(),
        permissions: Default::default(),
        sandbox: Default::default(),
    };
    let workspaces = cm_agent::workspaces::Workspaces::spawn(&[ws], Default::default(), &state);
    eventually("the stale process to die", Duration::from_secs(10), || {
        !alive(pid)
    })
    .await?;
    ensure!(
        alive(foreign),
        "a process of another state folder was killed"
    );
    let foreign_pid = rustix::process::Pid::from_raw(foreign).context("pid")?;
    rustix::process::kill_process(foreign_pid, rustix::process::Signal::KILL)?;
    workspaces.shutdown().await;
    Ok(())
}

/// A lapsed launch lease stops OpenCode through the workspace's supervisor, on tokio's paused
/// clock: the default 30-minute lease passes without waiting for it, and the workspace's
/// state says why (the supervisor owns the stop and its reason).
#[tokio::test]
async fn a_lapsed_lease_stops_opencode_through_the_supervisor_on_paused_time() -> Result<()> {
    let env = Env::start(&["leased"], None).await?;
    // The operation binds the launch to its credential (the harness's `cred-tester`).
    let info: OpencodeInfo = env.ok(Op::OpencodeStart, "leased", None, None).await?;
    ensure!(info.state == OpencodeState::Ready, "{info:?}");
    let rt = env.workspaces.get("leased").context("workspace")?;
    let mut states = rt.supervisor.watch();
    tokio::time::pause();
    tokio::time::advance(cm_agent::config::DEFAULT_LAUNCH_LEASE).await;
    tokio::time::resume();
    tokio::time::timeout(crate::harness::EVENT_WAIT, async {
        while states.borrow_and_update().info.state != OpencodeState::Stopped {
            if states.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .context("OpenCode was not stopped by its lapsed lease")?;
    let info = rt.supervisor.info();
    ensure!(info.state == OpencodeState::Stopped, "{info:?}");
    let why = info.last_error.clone().unwrap_or_default();
    ensure!(
        why.contains("lease lapsed") && why.contains("30 min"),
        "{info:?}"
    );
    env.shutdown().await;
    Ok(())
}
