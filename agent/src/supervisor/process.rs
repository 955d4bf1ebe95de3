//! The thin process runner: spawns `opencode serve` in its own process group, watches its
//! stdout for the listening line, keeps the last stderr lines, and stops it (dispose, SIGTERM,
//! grace, SIGKILL), then removes the tool processes it left behind. It decides nothing: the
//! state machine in `state.rs` does.

use super::leftovers::{self, ProcId};
use crate::opencode::client::OpencodeClient;
use crate::opencode::launch::Launch;
use crate::sandbox::cgroup::{self, LimitHits};
use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Stderr lines kept for the operator's `last_error`.
pub const STDERR_LINES: usize = 20;
/// Longest stderr line kept.
const MAX_LINE: usize = 2048;
/// Time between SIGTERM and SIGKILL. OpenCode 1.18.33 has no graceful handler and dies in under
/// 0.1 s, so this only matters for a wedged process.
pub const STOP_GRACE: Duration = Duration::from_secs(3);
/// Bound on the rounds of leftover killing and reaping after an exit (a killed process's
/// children are re-parented and caught in the next round, and a killed OpenCode of 0.5 GB
/// takes a few rounds to be reapable; most stops need one to five). 5 s in all.
const CLEANUP_ROUNDS: u32 = 100;
/// Pause between cleanup rounds, for signalled processes to die.
const CLEANUP_PAUSE: Duration = Duration::from_millis(50);
/// How often a launch's cgroup counters are read, to tell operators when it reached a limit.
const LIMITS_POLL: Duration = Duration::from_secs(1);
/// What OpenCode prints once it accepts connections.
pub const LISTENING: &str = "opencode server listening on http://127.0.0.1:";

/// What a launch reports to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// The listening line, with the port it names.
    ReadyLine {
        /// Port OpenCode says it listens on.
        port: Option<u16>,
    },
    /// Health answered and the event stream is attached.
    Attached {
        /// Version from `/global/health`.
        version: Option<String>,
    },
    /// The process is gone and its leftovers were removed.
    Exited {
        /// Exit status as text.
        status: String,
        /// Last stderr lines.
        stderr_tail: Vec<String>,
    },
}

/// Events tagged with the launch number they belong to.
pub type EventTx = mpsc::UnboundedSender<(u64, ProcessEvent)>;

/// A running launch.
#[derive(Debug, Clone)]
pub struct Running {
    /// Launch number (events of older launches are ignored).
    pub launch: u64,
    /// OpenCode's pid (also its process group id).
    pub pid: u32,
    /// The client for this launch.
    pub client: OpencodeClient,
    /// Cancelled as soon as the process has exited.
    pub died: CancellationToken,
    /// Cancelled when the launch is over: stops its health probe and event reader.
    pub token: CancellationToken,
    /// Descendants recorded just before the process was signalled.
    snapshot: Arc<Mutex<Vec<ProcId>>>,
}

fn tail_push(tail: &Mutex<VecDeque<String>>, line: String) {
    let mut t = tail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if t.len() == STDERR_LINES {
        t.pop_front();
    }
    t.push_back(line);
}

async fn read_lines(stream: impl AsyncRead + Unpin, mut on_line: impl FnMut(String)) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let mut line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                if line.len() > MAX_LINE {
                    let mut cut = MAX_LINE;
                    while !line.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    line.truncate(cut);
                }
                on_line(line);
            }
        }
    }
}

/// The port in a listening line.
pub fn parse_listening(line: &str) -> Option<Option<u16>> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(digits.parse().ok())
}

/// Spawns the launch; its events arrive on `events`.
///
/// # Errors
/// The process could not be started.
pub fn spawn(launch: &Launch, launch_no: u64, events: EventTx) -> std::io::Result<Running> {
    // Through the keeper (no orphan outlives an agent gone for good; see keeper.rs).
    let (program, args) = super::keeper::wrap(
        &launch.program,
        &launch.args,
        &launch.state_file,
        &launch.dirs.sandbox_file(),
        launch.sandbox.mode,
    )
    .map_err(std::io::Error::other)?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // An allow-list, never the agent's own environment (its settings, tokens, proxies,
    // `SSH_AUTH_SOCK`): see sandbox/env.rs.
    cmd.env_clear();
    cmd.envs(crate::sandbox::env::allowed(
        std::env::vars_os(),
        launch.host_env_names.iter().map(String::as_str),
    ));
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
    let workspace = launch
        .dirs
        .base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::sandbox::report::limits_reached(&workspace, None);
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the process exited at once"))?;
    let raw_pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    leftovers::register_child(raw_pid);
    let client = OpencodeClient::new(launch.port, &launch.password, &launch.cwd);
    let running = Running::new(launch_no, pid, client);

    if let Some(stdout) = child.stdout.take() {
        let tx = events.clone();
        tokio::spawn(read_lines(stdout, move |line| {
            tracing::debug!(target: "opencode", pid, "{line}");
            if let Some(port) = parse_listening(&line) {
                let _ = tx.send((launch_no, ProcessEvent::ReadyLine { port }));
            }
        }));
    }
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let stderr_task = child.stderr.take().map(|stderr| {
        let tail = Arc::clone(&tail);
        tokio::spawn(read_lines(stderr, move |line| {
            tracing::debug!(target: "opencode", pid, "{line}");
            tail_push(&tail, line);
        }))
    });

    let died = running.died.clone();
    let snapshot = Arc::clone(&running.snapshot);
    let marker = launch.marker.clone();
    watch_limits(workspace.clone(), marker.clone(), died.clone());
    tokio::spawn(async move {
        let status = match child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        after_exit(raw_pid, &died, &snapshot, marker.clone()).await;
        let m = marker.clone();
        let hits = tokio::task::spawn_blocking(move || LimitHits::read(&m))
            .await
            .unwrap_or_default();
        cgroup::remove_for(&marker);
        if let Some(task) = stderr_task {
            // Ends at EOF; tool processes holding the pipe were just killed.
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        // Why a launch that died of its limits died, in the operator's `last_error`.
        if let Some(note) = note_limits(&workspace, &hits) {
            tail_push(&tail, format!("sandbox: {note}"));
        }
        let stderr_tail: Vec<String> = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let _ = events.send((
            launch_no,
            ProcessEvent::Exited {
                status,
                stderr_tail,
            },
        ));
    });
    Ok(running)
}

/// Reads the launch's cgroup counters every [`LIMITS_POLL`] until it is gone, and tells
/// operators (log, the workspace's sandbox line) as soon as it reached a limit.
fn watch_limits(workspace: String, marker: String, died: CancellationToken) {
    tokio::spawn(async move {
        let mut seen = LimitHits::default();
        let mut tick = tokio::time::interval(LIMITS_POLL);
        loop {
            tokio::select! {
                () = died.cancelled() => return,
                _ = tick.tick() => {}
            }
            let m = marker.clone();
            let hits = tokio::task::spawn_blocking(move || LimitHits::read(&m))
                .await
                .unwrap_or_default();
            if hits != seen {
                note_limits(&workspace, &hits);
                seen = hits;
            }
        }
    });
}

/// Logs and records what limits `hits` show reached, if any.
fn note_limits(workspace: &str, hits: &LimitHits) -> Option<String> {
    let note = hits.describe()?;
    tracing::warn!(workspace, "sandbox: {note}");
    crate::sandbox::report::limits_reached(workspace, Some(note.clone()));
    Some(note)
}

/// The live processes in the launch's cgroups (none without cgroups).
fn cgroup_members(marker: &str) -> Vec<ProcId> {
    cgroup::members(marker)
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let st = leftovers::parse_stat(&stat)?;
            (st.state != 'Z').then_some(ProcId {
                pid,
                start_time: st.start_time,
            })
        })
        .collect()
}

/// How often an adopted process (not our child, so not waitable) is checked for life.
const ADOPTED_POLL: std::time::Duration = Duration::from_millis(250);

/// Takes over a running OpenCode of an earlier run of the agent (see `statefile.rs`): the same
/// [`Running`] as a fresh launch, with the process watched through `/proc` instead of `wait`.
/// The listening line was printed to the earlier agent, so it is reported at once; the
/// health probe with the recorded password decides whether the launch becomes ready.
pub fn adopt(
    child: &super::statefile::ChildRecord,
    cwd: &std::path::Path,
    launch_no: u64,
    events: EventTx,
) -> Running {
    let client = OpencodeClient::new(child.port, &child.password, cwd);
    let pid = u32::try_from(child.pid).unwrap_or(0);
    let running = Running::new(launch_no, pid, client);
    let _ = events.send((
        launch_no,
        ProcessEvent::ReadyLine {
            port: Some(child.port),
        },
    ));
    let id = ProcId {
        pid: child.pid,
        start_time: child.start_time,
    };
    let died = running.died.clone();
    let snapshot = Arc::clone(&running.snapshot);
    let marker = child.marker.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ADOPTED_POLL);
        loop {
            tick.tick().await;
            let alive = tokio::task::spawn_blocking(move || leftovers::is_alive(id))
                .await
                .unwrap_or(false);
            if !alive {
                break;
            }
        }
        after_exit(id.pid, &died, &snapshot, marker.clone()).await;
        cgroup::remove_for(&marker);
        let _ = events.send((
            launch_no,
            ProcessEvent::Exited {
                status: "exited (adopted from an earlier run of the agent; status unknown)".into(),
                stderr_tail: Vec::new(),
            },
        ));
    });
    running
}

/// Once the launch's process `pid` is gone: forgets it, tells the waiters, and removes what it
/// left behind (the descendants in `snapshot` and whatever carries `marker`).
async fn after_exit(
    pid: i32,
    died: &CancellationToken,
    snapshot: &Mutex<Vec<ProcId>>,
    marker: String,
) {
    leftovers::unregister_child(pid);
    died.cancel();
    let snap = snapshot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    remove_leftovers(pid, marker, snap).await;
}

/// Kills what the launch (process group `group`) left behind, in rounds, and reaps what was
/// re-parented to us, until nothing of it is left (alive or zombie).
async fn remove_leftovers(group: i32, marker: String, snapshot: Vec<ProcId>) {
    for round in 0..CLEANUP_ROUNDS {
        let (m, s) = (marker.clone(), snapshot.clone());
        let (targets, killed, waiting) = tokio::task::spawn_blocking(move || {
            let mut targets = leftovers::leftovers(&m, &s);
            // Whatever is still in the launch's cgroups, even a process that left OpenCode's
            // tree and scrubbed its environment.
            for id in cgroup_members(&m) {
                if !targets.contains(&id) {
                    targets.push(id);
                }
            }
            let n = leftovers::kill(&targets);
            let (_, waiting) = leftovers::reap_launch_zombies(group, &s);
            (targets, n, waiting)
        })
        .await
        .unwrap_or_default();
        if targets.is_empty() && waiting == 0 {
            break;
        }
        if !targets.is_empty() {
            tracing::info!(round, killed, pids = ?targets.iter().map(|p| p.pid).collect::<Vec<_>>(), "killed tool processes left by OpenCode");
        }
        tokio::time::sleep(CLEANUP_PAUSE).await;
        let _ = tokio::task::spawn_blocking(leftovers::reap_adopted).await;
    }
    let _ = tokio::task::spawn_blocking(leftovers::reap_adopted).await;
}

fn signal_group(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // ESRCH (already gone) is fine.
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

impl Running {
    fn new(launch: u64, pid: u32, client: OpencodeClient) -> Self {
        Self {
            launch,
            pid,
            client,
            died: CancellationToken::new(),
            token: CancellationToken::new(),
            snapshot: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn take_snapshot(&self) {
        let pid = i32::try_from(self.pid).unwrap_or(0);
        let snap = tokio::task::spawn_blocking(move || leftovers::descendants(pid))
            .await
            .unwrap_or_default();
        tracing::debug!(
            pid = self.pid,
            descendants = snap.len(),
            "snapshot before stopping OpenCode"
        );
        *self
            .snapshot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = snap;
    }

    /// Graceful stop: `POST /global/dispose` (when `dispose`), snapshot, SIGTERM to the group,
    /// [`STOP_GRACE`], SIGKILL. Returns once the process is gone; leftovers are removed before
    /// the `Exited` event is sent.
    pub async fn stop(&self, dispose: bool) {
        if dispose {
            match self.client.dispose().await {
                Ok(_) => tracing::debug!(pid = self.pid, "OpenCode disposed its sessions"),
                Err(e) => {
                    tracing::debug!(pid = self.pid, error = %e, "dispose failed; stopping anyway")
                }
            }
        }
        self.take_snapshot().await;
        signal_group(self.pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(STOP_GRACE, self.died.cancelled())
            .await
            .is_err()
        {
            tracing::warn!(pid = self.pid, grace = ?STOP_GRACE, "OpenCode ignored SIGTERM; killing it");
            signal_group(self.pid, rustix::process::Signal::KILL);
            self.died.cancelled().await;
        }
    }

    /// Immediate SIGKILL of the group (after a snapshot).
    pub async fn kill(&self) {
        self.take_snapshot().await;
        signal_group(self.pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        assert_eq!(
            parse_listening("opencode server listening on http://127.0.0.1:4102"),
            Some(Some(4102))
        );
        assert_eq!(
            parse_listening("Warning: x\nopencode server listening on http://127.0.0.1:80/"),
            Some(Some(80))
        );
        assert_eq!(parse_listening("starting"), None);
    }

    #[tokio::test]
    async fn an_adopted_process_reports_ready_line_then_its_exit() {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let record = crate::supervisor::statefile::ChildRecord {
            pid,
            start_time: leftovers::start_time(pid).unwrap(),
            port: 9,
            password: "pw".into(),
            marker: "adopt-test-marker".into(),
            started_ms: 0,
            lease: None,
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let running = adopt(&record, std::path::Path::new("/"), 7, tx);
        assert_eq!(running.pid, u32::try_from(pid).unwrap());
        assert_eq!(
            rx.recv().await,
            Some((7, ProcessEvent::ReadyLine { port: Some(9) }))
        );
        running.kill().await;
        let _ = child.wait();
        let (launch, ev) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(launch, 7);
        assert!(matches!(ev, ProcessEvent::Exited { .. }), "{ev:?}");
        assert!(running.died.is_cancelled());
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let t = Mutex::new(VecDeque::new());
        for i in 0..50 {
            tail_push(&t, format!("line {i}"));
        }
        let t = t.into_inner().unwrap();
        assert_eq!(t.len(), STDERR_LINES);
        assert_eq!(t.front().map(String::as_str), Some("line 30"));
    }
}
