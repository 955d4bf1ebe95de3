//! Test environment: the test model in-process, real git workspaces in a temp folder, a real
//! OpenCode per environment driven through the agent's supervisor, and operations called
//! through `cm_agent::ops::serve_stream` over an in-memory pipe (the same bytes the relay
//! would forward).

use anyhow::{Context as _, Result, bail};
use cm_agent::config::{OpencodeConfig, Workspace};
use cm_agent::opencode::binary::Search;
use cm_agent::ops::frames::{FrameReader, write_frame};
use cm_agent::workspaces::Workspaces;
use cm_test_model::TestModel;
use proto::event::{Event, EventFrame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, ReqId, UserId};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::Role;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncWriteExt as _, DuplexStream, ReadHalf};

/// Hang guard for one wait on events (OpenCode's first prompt takes ~2.5 s on 2 cores).
pub const EVENT_WAIT: Duration = Duration::from_secs(60);

/// The installed OpenCode, or a failure that says how to install it.
pub fn opencode_binary() -> Result<PathBuf> {
    Search::from_env(None).resolve().context(
        "OpenCode is not installed: run scripts/install-opencode.sh (CI runs it before the tests)",
    )
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running git (install git)")?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A git workspace with one committed README.
pub fn git_workspace(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q"])?;
    git(dir, &["config", "user.email", "t@t"])?;
    git(dir, &["config", "user.name", "t"])?;
    std::fs::write(dir.join("README.md"), "hello\n")?;
    git(dir, &["add", "."])?;
    git(dir, &["commit", "-qm", "init"])?;
    Ok(())
}

/// The sandbox of workspaces in these tests: explicitly `off`. The agent is embedded in this
/// test binary, which cannot launch OpenCode through `cm-agent __exec-child`, and the agent
/// refuses to run OpenCode unconfined in any other mode (the sandbox itself is tested through
/// the real binaries in tui/tests/e2e/sandbox.rs).
pub fn unsandboxed() -> cm_agent::sandbox::SandboxConfig {
    cm_agent::sandbox::SandboxConfig {
        mode: cm_agent::sandbox::Mode::Off,
        ..Default::default()
    }
}

/// OpenCode settings pointing at the test model.
pub fn config(binary: Option<PathBuf>, model: &TestModel) -> OpencodeConfig {
    let provider = json!({
        "mock": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "Mock LLM",
            "options": { "baseURL": model.base_url(), "apiKey": "mock-key" },
            "models": {
                "mock-model": { "name": "Mock Model", "tool_call": true, "limit": { "context": 128000, "output": 4096 } }
            }
        }
    });
    OpencodeConfig {
        binary,
        model: Some("mock/mock-model".into()),
        small_model: Some("mock/mock-model".into()),
        enabled_providers: Some(vec!["mock".into()]),
        provider: provider.as_object().cloned(),
        idle_stop: None,
        ready_timeout: Duration::from_secs(30),
        allowed_models: Vec::new(),
    }
}

/// One environment: its own state folder, workspaces and OpenCode.
pub struct Env {
    pub tmp: TempDir,
    pub model: TestModel,
    pub workspaces: Arc<Workspaces>,
}

static REQ: AtomicU64 = AtomicU64::new(1);

impl Env {
    /// Workspaces `names` (git repos under the temp folder); `binary` overrides the installed
    /// OpenCode.
    pub async fn start(names: &[&str], binary: Option<PathBuf>) -> Result<Self> {
        Self::start_with(names, binary, |_| {}).await
    }

    /// As [`Env::start`], with a chance to change the OpenCode settings.
    pub async fn start_with(
        names: &[&str],
        binary: Option<PathBuf>,
        tweak: impl FnOnce(&mut OpencodeConfig),
    ) -> Result<Self> {
        // Logs with RUST_LOG (e.g. RUST_LOG=cm_agent=debug cargo test -- --nocapture).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // As the agent does at start, so orphaned tool processes come to this test process.
        cm_agent::supervisor::leftovers::become_subreaper()?;
        let binary = match binary {
            Some(b) => b,
            None => opencode_binary()?,
        };
        let tmp = tempfile::tempdir()?;
        let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
        let mut list = Vec::new();
        for name in names {
            let root = tmp.path().join("ws").join(name);
            git_workspace(&root)?;
            list.push(Workspace {
                name: (*name).to_owned(),
                root: std::fs::canonicalize(&root)?,
                permissions: Default::default(),
                sandbox: unsandboxed(),
            });
        }
        let mut cfg = config(Some(binary), &model);
        tweak(&mut cfg);
        let workspaces = Workspaces::spawn(&list, cfg, &tmp.path().join("state"));
        Ok(Self {
            tmp,
            model,
            workspaces,
        })
    }

    /// A workspace's root.
    pub fn root(&self, name: &str) -> PathBuf {
        self.workspaces
            .get(name)
            .map(|w| w.workspace.root.clone())
            .unwrap_or_default()
    }

    /// Stops every OpenCode.
    pub async fn shutdown(self) {
        self.workspaces.shutdown().await;
    }

    fn header(op: Op, workspace: Option<&str>, session: Option<&str>, role: Role) -> ForwardHeader {
        ForwardHeader {
            header: StreamHeader {
                op,
                req_id: ReqId(REQ.fetch_add(1, Ordering::Relaxed)),
                host: None,
                workspace: workspace.map(str::to_owned),
                session: session.map(str::to_owned),
                auth: None,
                mac: None,
            },
            principal: UserId::from("tester"),
            role,
            cred_id: CredId::from("cred-tester"),
        }
    }

    /// Opens an operation stream the way the relay does and sends the header and body.
    async fn open<B: Serialize>(
        &self,
        fwd: &ForwardHeader,
        body: Option<&B>,
    ) -> Result<FrameReader<ReadHalf<DuplexStream>>> {
        let (client, server) = tokio::io::duplex(1 << 20);
        let (server_r, server_w) = tokio::io::split(server);
        let ws = Arc::clone(&self.workspaces);
        tokio::spawn(async move {
            cm_agent::ops::serve_stream(&ws, server_r, server_w, std::future::pending()).await;
        });
        let (client_r, mut client_w) = tokio::io::split(client);
        write_frame(&mut client_w, fwd, MAX_HEADER_LEN).await?;
        // The agent may answer (a refusal) and close before it reads the body, as over QUIC;
        // the reply is what counts, so a failed body write is not an error here.
        if let Some(b) = body {
            let _ = write_frame(&mut client_w, b, MAX_FRAME_LEN).await;
        }
        let _ = client_w.shutdown().await;
        // The write half must stay alive only until shutdown; the read half carries replies.
        Ok(FrameReader::new(client_r, MAX_FRAME_LEN))
    }

    /// One request, one reply, with a given role.
    pub async fn call_as<T: DeserializeOwned>(
        &self,
        role: Role,
        op: Op,
        workspace: Option<&str>,
        session: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply<T>> {
        let fwd = Self::header(op, workspace, session, role);
        let mut r = self.open(&fwd, body.as_ref()).await?;
        let reply = tokio::time::timeout(EVENT_WAIT, r.next::<Reply<T>>())
            .await
            .with_context(|| format!("no reply to {}", op.as_str()))??
            .with_context(|| format!("stream ended without a reply to {}", op.as_str()))?;
        Ok(reply)
    }

    /// One request as an operator.
    pub async fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        workspace: Option<&str>,
        session: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply<T>> {
        self.call_as(Role::Operator, op, workspace, session, body)
            .await
    }

    /// A request that must succeed.
    pub async fn ok<T: DeserializeOwned>(
        &self,
        op: Op,
        workspace: &str,
        session: Option<&str>,
        body: Option<Value>,
    ) -> Result<T> {
        match self.call::<T>(op, Some(workspace), session, body).await? {
            Reply::Ok(t) => Ok(t),
            Reply::Error(e) => bail!("{} failed: {e}", op.as_str()),
        }
    }

    /// Starts watching a workspace's events.
    pub async fn watch(&self, workspace: &str, after_seq: Option<u64>) -> Result<Watcher> {
        let fwd = Self::header(Op::WatchEvents, Some(workspace), None, Role::Viewer);
        let mut r = self
            .open(&fwd, Some(&json!({ "after_seq": after_seq })))
            .await?;
        let first = tokio::time::timeout(EVENT_WAIT, r.next::<Reply<u64>>())
            .await
            .context("no first watch frame")??
            .context("watch ended at once")?;
        let next_seq = first.into_result().context("watch refused")?;
        Ok(Watcher {
            reader: r,
            next_seq,
            seen: Vec::new(),
        })
    }
}

/// An event stream.
pub struct Watcher {
    reader: FrameReader<ReadHalf<DuplexStream>>,
    /// From the first frame.
    pub next_seq: u64,
    /// Every frame received so far.
    pub seen: Vec<EventFrame>,
}

impl Watcher {
    /// The next frame.
    pub async fn next(&mut self) -> Result<EventFrame> {
        let f = tokio::time::timeout(EVENT_WAIT, self.reader.next::<EventFrame>())
            .await
            .context("no event in time")??
            .context("event stream ended")?;
        self.seen.push(f.clone());
        Ok(f)
    }

    /// Reads until `pred` matches; returns the frames read (including the match).
    pub async fn until(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Vec<EventFrame>> {
        let mut got = Vec::new();
        loop {
            let f = self
                .next()
                .await
                .with_context(|| format!("waiting for {what}; got {:?}", summary(&got)))?;
            let hit = pred(&f.event);
            got.push(f);
            if hit {
                return Ok(got);
            }
        }
    }
}

/// Short form of events for failure messages.
pub fn summary(frames: &[EventFrame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let v = serde_json::to_value(&f.event).unwrap_or_default();
            format!("{}:{}", f.seq, v["type"].as_str().unwrap_or("?"))
        })
        .collect()
}

/// Processes whose command line contains `needle` (joined by spaces), with their pids.
pub fn processes_matching(needle: &str) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_owned();
            // Zombies have an empty command line and are already dead.
            (cmd.contains(needle)).then_some((pid, cmd))
        })
        .collect()
}

/// Whether `pid` is alive (not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| cm_agent::supervisor::leftovers::parse_stat(&s))
        .is_some_and(|st| st.state != 'Z')
}

/// Polls `cond` every 50 ms until it holds (hang guard: `bound`). For conditions that produce
/// no event (a process appearing in /proc).
pub async fn eventually(what: &str, bound: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + bound;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
