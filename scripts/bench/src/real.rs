//! A real CodeMantle in front of a real OpenCode, for scenario 4 (the real event stream) and
//! scenario 5 (OpenCode start-up): the release `cm-relay` and `cm-agent` as child processes,
//! the project's test model (`cm-test-model`) standing in for the LLM, the pinned `opencode`
//! found the way the agent finds it, and the owner logged in through the relay.
//!
//! Reading OpenCode directly (the baselines) uses the agent's own library: its HTTP/SSE client
//! with the port and password from the agent's state file, and its launch plan for a direct
//! `opencode serve`.
//!
//! Debugging: `CM_BENCH_VERBOSE=1` prints the children's logs, and `CM_BENCH_AGENT_LOG` sets
//! the agent's `RUST_LOG` (default `info`), e.g. `debug,quinn=info,hyper=info`.

use crate::child::{self, Proc};
use crate::netutil;
use crate::options::Options;
use crate::report::{Row, Verdict};
use crate::worlds::{init_state, login_owner, online, watch_until};
use anyhow::{Context, Result, bail, ensure};
use cm_agent::opencode::binary::Search;
use cm_agent::opencode::client::OpencodeClient;
use cm_agent::supervisor::statefile::{ChildRecord, FILE_NAME, StateRecord};
use cm_client::{self as client, Session};
use proto::handshake::{IssuedCredential, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::ops::{CreateSession, OpencodeInfo, Prompt, PromptAccepted, SessionInfo};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

/// The agent's host name.
pub const HOST: &str = "bench-host";
/// The workspace name.
pub const WORKSPACE: &str = "bench";
/// Longest wait for the test model's listening line.
const MODEL_WAIT: Duration = Duration::from_secs(15);

/// The programs a real run needs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `opencode`.
    pub opencode: PathBuf,
    /// `cm-test-model`.
    pub model: PathBuf,
}

/// The programs, or why the real scenarios cannot run here (and what to run).
///
/// # Errors
/// A text for a skipped row.
pub fn tools(opts: &Options) -> std::result::Result<Tools, String> {
    for name in ["cm-relay", "cm-agent", "cm-test-model"] {
        child::binary(&opts.bin_dir, name).map_err(|e| format!("{e:#} (scripts/bench.sh does)"))?;
    }
    // The agent's own lookup; its errors say what to run.
    let opencode = Search::from_env(None)
        .resolve()
        .map_err(|e| e.to_string())?;
    Ok(Tools {
        opencode,
        model: opts.bin_dir.join("cm-test-model"),
    })
}

/// A row saying why a scenario did not run.
pub fn skipped(scenario: &str, metric: &str, why: &str) -> Row {
    Row {
        verdict: Verdict::Skipped,
        ..Row::info(scenario, metric, format!("skipped: {why}"))
    }
}

/// A row for a scenario that failed in a full run: shown as missed, not as skipped, so a
/// regression does not read like a missing tool.
pub fn failed(scenario: &str, metric: &str, error: &anyhow::Error) -> Row {
    Row {
        verdict: Verdict::Missed,
        ..Row::info(scenario, metric, format!("FAILED: {error:#}"))
    }
}

/// `cm-test-model` as a child process, killed on drop.
#[derive(Debug)]
struct Model {
    child: Child,
    base_url: String,
}

impl Model {
    fn spawn(bin: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The receiver is gone after the first line; keep draining.
                let _ = tx.send(line);
            }
        });
        let line = rx
            .recv_timeout(MODEL_WAIT)
            .context("cm-test-model printed no listening line")?;
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("no URL in {line:?}"))?
            .to_owned();
        Ok(Self { child, base_url })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The agent configuration appended after enrollment: OpenCode on the test model, one
/// workspace (as `scripts/dev-up.sh` writes it).
fn agent_toml(model_url: &str, workspace: &Path) -> String {
    format!(
        r#"
[opencode]
model = "mock/mock-model"
small_model = "mock/mock-model"

[opencode.provider.mock]
npm = "@ai-sdk/openai-compatible"
name = "CodeMantle test model"

[opencode.provider.mock.options]
baseURL = "{model_url}/v1"
apiKey = "test-model"

[opencode.provider.mock.models.mock-model]
name = "Test model (scripted)"
tool_call = true

[opencode.provider.mock.models.mock-model.limit]
context = 128000
output = 4096

[[workspace]]
name = "{WORKSPACE}"
path = "{}"
"#,
        workspace.display()
    )
}

/// Relay, agent (enrolled, online), test model and an operator session. Call
/// [`RealWorld::stop`] from outside any runtime; dropping it also kills the children.
#[derive(Debug)]
pub struct RealWorld {
    agent: Option<Proc>,
    relay: Option<Proc>,
    _model: Model,
    /// The relay's address.
    pub addr: SocketAddr,
    cred: IssuedCredential,
    ep: quinn::Endpoint,
    control: Session,
    /// The workspace root as the agent sees it (canonical).
    pub workspace: PathBuf,
    /// The agent's configuration file.
    pub agent_config: PathBuf,
    agent_state: PathBuf,
    next_req: AtomicU64,
    tmp: TempDir,
}

impl RealWorld {
    /// Starts everything; `rt` drives the operator side.
    ///
    /// # Errors
    /// Any step failing (the error says which).
    pub fn start(opts: &Options, tools: &Tools, rt: &tokio::runtime::Runtime) -> Result<Self> {
        Self::start_with(opts, tools, rt, "")
    }

    /// As [`Self::start`], with `extra` appended to the agent's configuration (after the
    /// workspace table: start it with a `[table]` header).
    ///
    /// # Errors
    /// Any step failing (the error says which).
    pub fn start_with(
        opts: &Options,
        tools: &Tools,
        rt: &tokio::runtime::Runtime,
        extra: &str,
    ) -> Result<Self> {
        let tmp = opts.tempdir()?;
        let (dir, init) = init_state(&tmp)?;
        let (relay, addr, _) = child::relay(&opts.bin_dir, dir.root())?;
        let model = Model::spawn(&tools.model)?;
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(&ws)?;
        std::fs::write(ws.join("README.md"), "# cm-bench workspace\n")?;
        let workspace = std::fs::canonicalize(&ws)?;

        let token = cm_relay::cli::host_add(&dir, HOST, Some(addr.to_string()))?;
        let root = tmp.path().join("agent");
        child::enroll_agent(&opts.bin_dir, &root, &token.encode())?;
        let agent_config = root.join("agent.toml");
        let mut config = std::fs::read_to_string(&agent_config)?;
        config.push_str(&agent_toml(&model.base_url, &workspace));
        config.push_str(extra);
        std::fs::write(&agent_config, config)?;

        let mut cmd = child::agent_cmd(&opts.bin_dir, &root)?;
        cmd.env(
            "RUST_LOG",
            std::env::var("CM_BENCH_AGENT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env(cm_agent::opencode::binary::BIN_ENV, &tools.opencode);
        let agent = Proc::spawn(cmd)?;
        // The agent runs `opencode --version` once at start (about 0.6 s of CPU and disk): let
        // it finish, so it does not slow the first measured launch.
        agent.wait_for("OpenCode found").context(
            "the agent did not find a working OpenCode (see its log with CM_BENCH_VERBOSE=1)",
        )?;

        let (cred, ep, control) = rt.block_on(async {
            let cred = login_owner(addr, &init.pin, &init).await?;
            let ep = netutil::client_endpoint(&init.pin)?;
            let conn = netutil::connect(&ep, addr).await?;
            let control =
                client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
            watch_until(&control.conn, |l| online(l) == 1)
                .await
                .context("the agent did not come online")?;
            Ok::<_, anyhow::Error>((cred, ep, control))
        })?;
        Ok(Self {
            agent: Some(agent),
            relay: Some(relay),
            _model: model,
            addr,
            cred,
            ep,
            control,
            workspace,
            agent_config,
            agent_state: root.join("state"),
            next_req: AtomicU64::new(100),
            tmp,
        })
    }

    /// A fresh temporary directory inside this world's.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p)?;
        Ok(p)
    }

    /// The pids of the relay and the agent.
    pub fn pids(&self) -> (u32, u32) {
        (
            self.relay.as_ref().map_or(0, Proc::pid),
            self.agent.as_ref().map_or(0, Proc::pid),
        )
    }

    /// A new authenticated operator session on its own connection (keep it alive).
    ///
    /// # Errors
    /// Connection or authentication failures.
    pub async fn operator(&self) -> Result<Session> {
        let conn = netutil::connect(&self.ep, self.addr).await?;
        Ok(client::authenticate(
            conn,
            PeerKind::Operator,
            &self.cred.cred_id,
            &self.cred.secret,
        )
        .await?)
    }

    /// A stream header for `op` on the workspace (and `session`).
    pub fn header(&self, op: Op, session: Option<&str>) -> StreamHeader {
        let mut h = StreamHeader::new(op, ReqId(self.next_req.fetch_add(1, Ordering::Relaxed)));
        h.host = Some(HostId::from(HOST));
        h.workspace = Some(WORKSPACE.into());
        h.session = session.map(str::to_owned);
        h
    }

    async fn call<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        op: Op,
        session: Option<&str>,
        body: Option<&B>,
    ) -> Result<T> {
        let h = self.header(op, session);
        client::request(&self.control.conn, &h, body)
            .await
            .with_context(|| format!("{} through the relay", op.as_str()))
    }

    /// `opencode_start` through the relay; returns once the agent says OpenCode is ready.
    ///
    /// # Errors
    /// Refused, failed, or OpenCode not ready afterwards.
    pub async fn start_opencode(&self) -> Result<OpencodeInfo> {
        let info: OpencodeInfo = self.call::<(), _>(Op::OpencodeStart, None, None).await?;
        ensure!(
            info.state == proto::ops::OpencodeState::Ready,
            "opencode_start answered {:?} ({})",
            info.state,
            info.last_error.as_deref().unwrap_or("no error given")
        );
        Ok(info)
    }

    /// `opencode_stop` through the relay.
    ///
    /// # Errors
    /// Refused or failed.
    pub async fn stop_opencode(&self) -> Result<OpencodeInfo> {
        self.call::<(), _>(Op::OpencodeStop, None, None).await
    }

    /// `session_create` through the relay; returns the session id.
    ///
    /// # Errors
    /// Refused or failed.
    pub async fn create_session(&self) -> Result<String> {
        let body = CreateSession {
            title: Some("cm-bench".into()),
        };
        let s: SessionInfo = self.call(Op::SessionCreate, None, Some(&body)).await?;
        Ok(s.id)
    }

    /// `prompt` through the relay (answered once OpenCode accepted it; the answer streams).
    ///
    /// # Errors
    /// Refused or failed.
    pub async fn prompt(&self, session: &str, text: &str) -> Result<PromptAccepted> {
        let n = self.next_req.fetch_add(1, Ordering::Relaxed);
        let body = Prompt {
            text: text.into(),
            idempotency_key: format!("cm-bench-{}-{n}", std::process::id()),
            model: None,
            agent: None,
        };
        self.call(Op::Prompt, Some(session), Some(&body)).await
    }

    /// The running OpenCode as the agent recorded it in its state file (port, password).
    ///
    /// # Errors
    /// No file or no running child for the workspace.
    pub fn opencode_child(&self) -> Result<ChildRecord> {
        let path = self.agent_state.join(FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the agent state file {}", path.display()))?;
        match StateRecord::parse(&text).children.remove(WORKSPACE) {
            Some(c) => Ok(c),
            None => bail!("the agent state file lists no running OpenCode for {WORKSPACE}"),
        }
    }

    /// A client that reads OpenCode directly (the agent's own HTTP/SSE client).
    ///
    /// # Errors
    /// See [`Self::opencode_child`].
    pub fn direct_client(&self) -> Result<OpencodeClient> {
        let c = self.opencode_child()?;
        Ok(OpencodeClient::new(c.port, &c.password, &self.workspace))
    }

    /// Stops the agent (which stops its OpenCode), the relay and the model. Call outside any
    /// runtime's `block_on`.
    pub fn stop(mut self) {
        self.ep.close(0u32.into(), b"done");
        if let Some(a) = self.agent.take() {
            a.stop();
        }
        if let Some(r) = self.relay.take() {
            r.stop();
        }
    }
}
