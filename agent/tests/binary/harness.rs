//! The real `cm-agent` binary against an in-process relay: enrolled with `cm-agent enroll`
//! (file secret store), run with `cm-agent run`, its log lines read from stderr, driven by an
//! owner's session over the relay. Waits are on log lines and replies, with hang guards.

use anyhow::{Context as _, Result};
use cm_client::{self as client, DialOptions, Session};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use proto::handshake::{LoginMethod, LoginRequest, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId, UserId};
use proto::message::HostList;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Upper bound for any single wait (a hang guard, not a timing assertion).
pub const WAIT: Duration = Duration::from_secs(60);
/// The host name every test enrolls.
pub const HOST: &str = "box";
/// The workspace every test configures.
pub const WS: &str = "demo";

/// The `cm-agent` binary cargo built for these tests.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cm-agent"))
}

/// An in-process relay, an enrolled agent's files and a workspace folder.
pub struct World {
    /// Holds every file of the test until it ends.
    _tmp: TempDir,
    pub relay: Relay,
    pub pin: String,
    pub invite: proto::token::Invite,
    pub config: PathBuf,
    pub state: PathBuf,
}

impl World {
    /// Starts the relay, enrolls host [`HOST`] with the real `cm-agent enroll` and configures
    /// workspace [`WS`] (plus `extra` config lines).
    pub async fn start(extra: &str) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = StateDir::new(tmp.path().join("relay"));
        let init = state::init(&dir, "127.0.0.1:7443", &UserId::from("owner"))?;
        let mut rc = RelayConfig::new(dir.root().to_owned());
        rc.listen = "127.0.0.1:0".parse()?;
        rc.heartbeat_timeout = Duration::from_secs(1);
        let relay = Relay::spawn(rc).await?;
        let token = cm_relay::cli::host_add(&dir, HOST, Some(relay.local_addr().to_string()))?;
        let config = tmp.path().join("agent/agent.toml");
        let state = tmp.path().join("agent/state");
        let out = Command::new(agent_bin())
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .args(["enroll", &token.encode()])
            .env("CM_SECRET_STORE", "file")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "enroll failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(&root)?;
        let root = std::fs::canonicalize(root)?;
        let mut text = std::fs::read_to_string(&config)?;
        text.push_str(&format!(
            "\n[[workspace]]\nname = \"{WS}\"\npath = \"{}\"\n{extra}",
            root.display()
        ));
        std::fs::write(&config, text)?;
        Ok(Self {
            _tmp: tmp,
            relay,
            pin: init.pin,
            invite: init.invite,
            config,
            state,
        })
    }

    /// A `cm-agent run` on this world's config and state folder (not waited for).
    pub fn spawn_agent(&self) -> Result<Agent> {
        self.spawn_agent_with(&[])
    }

    /// As [`World::spawn_agent`], with extra environment variables.
    pub fn spawn_agent_with(&self, env: &[(&str, &str)]) -> Result<Agent> {
        let mut child = Command::new(agent_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .args(["run", "--heartbeat-interval", "200ms"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        Ok(Agent {
            child,
            log: LogLines::read(stderr),
        })
    }

    /// The owner's operator session, once the agent is online.
    pub async fn owner(&self) -> Result<Session> {
        let addr = self.relay.local_addr().to_string();
        let req = LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: self.invite.user.clone(),
            method: LoginMethod::Invite {
                secret: self.invite.secret,
                new_password: None,
            },
            ttl_s: None,
            label: Some("test".into()),
            device_key: None,
        };
        let cred = client::login(&addr, &self.pin, req).await?;
        let dial = DialOptions {
            idle_timeout: Duration::from_secs(5),
            ..DialOptions::default()
        };
        let conn = client::dial(&addr, &self.pin, &dial).await?;
        let session =
            client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        let mut watch = client::HostWatch::open(&session.conn, ReqId(7)).await?;
        tokio::time::timeout(WAIT, async {
            loop {
                let list: HostList = watch.next().await?.context("host watch ended")?;
                if list
                    .hosts
                    .iter()
                    .any(|h| h.host.as_str() == HOST && h.online)
                {
                    return Ok::<_, anyhow::Error>(());
                }
            }
        })
        .await
        .context("the agent never came online")??;
        Ok(session)
    }

    pub async fn shutdown(self) {
        self.relay.shutdown().await;
    }
}

/// A request header for workspace [`WS`] of [`HOST`].
pub fn header(op: Op) -> StreamHeader {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from(HOST));
    h.workspace = Some(WS.into());
    h
}

/// A running `cm-agent run`; SIGKILLed and reaped on drop.
pub struct Agent {
    pub child: Child,
    pub log: LogLines,
}

impl Agent {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap_or(0)
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = rustix::process::Pid::from_raw(self.pid()).context("bad pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's stderr lines, read on a thread that keeps draining (the child never blocks on a
/// full pipe).
pub struct LogLines {
    lines: mpsc::Receiver<String>,
}

impl LogLines {
    fn read(stderr: ChildStderr) -> Self {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CM_TEST_VERBOSE").is_some() {
                    eprintln!("[agent] {line}");
                }
                let _ = tx.send(line);
            }
        });
        Self { lines }
    }

    /// Waits for a line containing every one of `needles`.
    pub fn wait_line(&self, needles: &[&str]) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("the agent never logged {needles:?}"))?;
            if needles.iter().all(|n| line.contains(n)) {
                return Ok(line);
            }
        }
    }

    /// Every line until the stream ends (the process exited), bounded by [`WAIT`].
    pub fn until_end(&self) -> Result<Vec<String>> {
        let deadline = Instant::now() + WAIT;
        let mut all = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => all.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(all),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    anyhow::bail!("the process did not end; its log so far: {all:#?}")
                }
            }
        }
    }
}

/// Zombie children of `parent` (`/proc/*/stat` state `Z` with that parent pid).
pub fn zombie_children(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| cm_agent::supervisor::leftovers::parse_stat(&s))
                .is_some_and(|st| st.ppid == parent && st.state == 'Z')
        })
        .collect()
}
