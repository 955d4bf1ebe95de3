//! Test harness: an in-process relay (library instance) or a relay process, agent processes,
//! and an operator client. Everything shuts down on Drop; waits are on events, with generous
//! timeouts that only guard against hangs.

use anyhow::{Context, Result, bail};
use cm_client::{self as client, DialOptions, Session};
use cm_relay::cli::KillArgs;
use cm_relay::config::RelayConfig;
use cm_relay::notify::targets::AllowEntry;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use cm_relay::store::Store;
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest, PeerKind};
use proto::ids::{ReqId, UserId};
use proto::message::{CloseReason, HostList};
use proto::token::{EnrollmentToken, Invite};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Upper bound for any single wait in these tests (a hang guard, not a timing assertion).
pub const WAIT: Duration = Duration::from_secs(30);

/// The initialised state directory of a test relay.
pub struct RelayState {
    pub tmp: TempDir,
    pub dir: StateDir,
    pub pin: String,
    pub invite: Invite,
}

impl RelayState {
    pub fn new() -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = StateDir::new(tmp.path().join("relay"));
        let out = state::init(&dir, "127.0.0.1:7443", &UserId::from("owner"))?;
        Ok(Self {
            tmp,
            dir,
            pin: out.pin,
            invite: out.invite,
        })
    }

    pub fn store(&self) -> Result<Box<Store>> {
        Ok(self.dir.open_store()?)
    }

    pub fn add_host(&self, name: &str, addr: SocketAddr) -> Result<EnrollmentToken> {
        Ok(cm_relay::cli::host_add(
            &self.dir,
            name,
            Some(addr.to_string()),
        )?)
    }

    pub fn config(&self, listen: SocketAddr) -> RelayConfig {
        let mut c = RelayConfig::new(self.dir.root().to_owned());
        c.listen = listen;
        c.heartbeat_timeout = Duration::from_secs(1);
        c.handshake_timeout = Duration::from_secs(1);
        c.drain_timeout = Duration::from_secs(1);
        // The tests' notification receivers listen on loopback, which a relay refuses by
        // default: allowed here as an operator would, by address.
        c.notify.targets.allow_hosts = vec![AllowEntry::Addr([127, 0, 0, 1].into())];
        c
    }
}

/// An in-process relay on 127.0.0.1:0.
pub struct TestRelay {
    pub state: RelayState,
    pub relay: Option<Relay>,
    pub addr: SocketAddr,
}

impl TestRelay {
    pub async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// A relay whose configuration `change` adjusts first.
    pub async fn start_with(change: impl FnOnce(&mut RelayConfig)) -> Result<Self> {
        let state = RelayState::new()?;
        let mut config = state.config("127.0.0.1:0".parse()?);
        change(&mut config);
        let relay = Relay::spawn(config).await?;
        let addr = relay.local_addr();
        Ok(Self {
            state,
            relay: Some(relay),
            addr,
        })
    }

    pub fn addr_str(&self) -> String {
        self.addr.to_string()
    }

    /// Logs the owner in with the init invite and returns the credential.
    pub async fn login_owner(&self) -> Result<IssuedCredential> {
        let req = LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: self.state.invite.user.clone(),
            method: LoginMethod::Invite {
                secret: self.state.invite.secret,
                new_password: None,
            },
            ttl_s: None,
            label: Some("test".into()),
            device_key: None,
        };
        Ok(client::login(&self.addr_str(), &self.state.pin, req).await?)
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.relay.take() {
            r.shutdown().await;
        }
    }
}

pub fn quick_dial() -> DialOptions {
    DialOptions {
        idle_timeout: Duration::from_secs(2),
        ..DialOptions::default()
    }
}

/// Dials and authenticates as an operator.
pub async fn operator(addr: &str, pin: &str, cred: &IssuedCredential) -> Result<Session> {
    let conn = client::dial(addr, pin, &quick_dial()).await?;
    Ok(client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?)
}

/// Dials and authenticates as an operator, retrying while the relay is not up yet.
pub async fn operator_retrying(addr: &str, pin: &str, cred: &IssuedCredential) -> Result<Session> {
    tokio::time::timeout(WAIT, async {
        loop {
            match operator(addr, pin, cred).await {
                Ok(s) => return Ok(s),
                // A retry interval while a process starts, not a synchronisation sleep.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .context("relay did not come back")?
}

/// Watches the host list until `pred` holds for it.
pub async fn watch_until(
    session: &Session,
    what: &str,
    pred: impl Fn(&HostList) -> bool,
) -> Result<HostList> {
    let mut watch = client::HostWatch::open(&session.conn, ReqId(7)).await?;
    tokio::time::timeout(WAIT, async {
        loop {
            let list = watch
                .next()
                .await?
                .context("the relay ended the host watch")?;
            if pred(&list) {
                return Ok::<_, anyhow::Error>(list);
            }
        }
    })
    .await
    .with_context(|| format!("timed out waiting for: {what}"))?
}

pub fn host_online(list: &HostList, host: &str) -> bool {
    list.hosts
        .iter()
        .any(|h| h.host.as_str() == host && h.online)
}

pub fn host_offline(list: &HostList, host: &str) -> bool {
    list.hosts
        .iter()
        .any(|h| h.host.as_str() == host && !h.online)
}

/// A workspace binary next to the test's own `cm-relay` (cargo builds all workspace binaries
/// before running `cargo test --workspace`).
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let relay = PathBuf::from(env!("CARGO_BIN_EXE_cm-relay"));
    let path = relay.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing; run `cargo build --workspace` first (scripts/test.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// A UDP port that was free a moment ago (the relay process binds it; reused across restarts).
pub fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process killed (SIGKILL) and reaped on Drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(self.child.wait()?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `cm-relay run` on `port` and waits for its "relay listening" log line.
pub fn spawn_relay_process(state: &RelayState, port: u16) -> Result<Proc> {
    let mut child = Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--heartbeat-timeout",
            "1s",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let proc = Proc { child };
    LogLines::read(stderr, "relay").wait_line(&["relay listening"])?;
    Ok(proc)
}

/// A child's stderr lines, read on a thread that keeps draining after the receiver is gone (so
/// the child never blocks on a full pipe).
pub struct LogLines {
    who: &'static str,
    lines: mpsc::Receiver<String>,
}

impl LogLines {
    pub fn read(stderr: ChildStderr, who: &'static str) -> Self {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CM_TEST_VERBOSE").is_some() {
                    eprintln!("[{who}] {line}");
                }
                let _ = tx.send(line);
            }
        });
        Self { who, lines }
    }

    /// Waits for a line containing every one of `needles`.
    pub fn wait_line(&self, needles: &[&str]) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("{} never logged {needles:?}", self.who))?;
            if needles.iter().all(|n| line.contains(n)) {
                return Ok(line);
            }
        }
    }
}

/// An enrolled agent's files.
pub struct AgentFiles {
    pub config: PathBuf,
    pub state: PathBuf,
}

/// Enrolls an agent with the real `cm-agent enroll` (file secret store).
pub fn enroll_agent(root: &Path, name: &str, token: &EnrollmentToken) -> Result<AgentFiles> {
    let files = AgentFiles {
        config: root.join(format!("{name}/agent.toml")),
        state: root.join(format!("{name}/state")),
    };
    let out = Command::new(workspace_bin("cm-agent")?)
        .arg("--config")
        .arg(&files.config)
        .arg("--state-dir")
        .arg(&files.state)
        .args(["enroll", &token.encode()])
        .env("CM_SECRET_STORE", "file")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Tight timing so the tests are quick: the agent notices a dead relay within 2 s.
    let mut text = std::fs::read_to_string(&files.config)?;
    text.push_str("\nrelay_timeout = \"2s\"\n");
    std::fs::write(&files.config, text)?;
    Ok(files)
}

/// A `cm-agent run` process whose log lines the test reads.
pub struct LoggedAgent {
    pub proc: Proc,
    pub log: LogLines,
}

/// Starts `cm-agent run` (plain log lines, no colour codes) and waits until it logs its start.
pub fn spawn_logged_agent(files: &AgentFiles) -> Result<LoggedAgent> {
    let mut child = Command::new(workspace_bin("cm-agent")?)
        .arg("--config")
        .arg(&files.config)
        .arg("--state-dir")
        .arg(&files.state)
        .args(["run", "--heartbeat-interval", "200ms"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let agent = LoggedAgent {
        proc: Proc { child },
        log: LogLines::read(stderr, "agent"),
    };
    agent.log.wait_line(&["agent started"])?;
    Ok(agent)
}

/// Starts `cm-agent run` and waits until it logs its start (its log is drained unread).
pub fn spawn_agent(files: &AgentFiles) -> Result<Proc> {
    Ok(spawn_logged_agent(files)?.proc)
}

/// `cm-relay kill` arguments naming no target, to fill in with `..kill_args()`.
pub fn kill_args() -> KillArgs {
    KillArgs {
        user: None,
        host: None,
        cred: None,
        all: false,
    }
}

/// Waits (bounded) for `conn` to be closed by the relay; the reason and its text.
pub async fn closed_reason(conn: &quinn::Connection) -> Result<(CloseReason, String)> {
    match tokio::time::timeout(WAIT, conn.closed()).await? {
        quinn::ConnectionError::ApplicationClosed(c) => Ok((
            CloseReason::from_code(c.error_code.into_inner()),
            String::from_utf8_lossy(&c.reason).into_owned(),
        )),
        other => anyhow::bail!("closed otherwise: {other}"),
    }
}

/// Sends a first heartbeat with `status` (the relay counts an agent online from it, so it is
/// sent before this returns), then one every 200 ms (the test relay's window is 1 s) until the
/// control stream fails.
pub async fn heartbeat_forever(
    mut control: quinn::SendStream,
    status: proto::message::HostStatus,
) -> Result<()> {
    let beat = |seq, status: &proto::message::HostStatus| proto::message::Control::Heartbeat {
        seq,
        status: status.clone(),
    };
    cm_relay::framed::send_frame(&mut control, &beat(1, &status), proto::frame::MAX_FRAME_LEN)
        .await?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.tick().await;
        for seq in 2.. {
            tick.tick().await;
            let frame = beat(seq, &status);
            if cm_relay::framed::send_frame(&mut control, &frame, proto::frame::MAX_FRAME_LEN)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    Ok(())
}
