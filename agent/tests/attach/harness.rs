//! The attach world: a relay's state (the relay process started when a test wants it), an
//! enrolled `cm-agent` with workspace `demo` (a git repository) whose OpenCode uses the test
//! model, and a logged-in `cm-tui`. Every program is the real binary from target/debug (run
//! `cargo build --workspace --bins` first). Waits are on output lines, bounded by a hang guard.

use anyhow::{Context as _, Result, bail};
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Hang guard for any single wait (OpenCode's first start and prompt take seconds).
pub(crate) const WAIT: Duration = Duration::from_secs(90);

/// A binary of this workspace: `cm-agent` as cargo built it for these tests, the others next
/// to it.
pub(crate) fn bin(name: &str) -> Result<PathBuf> {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_cm-agent"));
    let path = agent.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing; run `cargo build --workspace --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// The pinned OpenCode, installed by scripts/install-opencode.sh.
pub(crate) fn opencode() -> Result<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let oc = repo.join("tools/opencode/node_modules/opencode-linux-x64/bin/opencode");
    if !oc.exists() {
        bail!("OpenCode is not installed: run scripts/install-opencode.sh --with-system-tools");
    }
    Ok(oc)
}

/// A child process whose stderr lines are collected; SIGTERM (then SIGKILL) and reaped on
/// drop.
pub(crate) struct Proc {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let err = child.stderr.take().context("stderr")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CM_TEST_VERBOSE").is_some() {
                    eprintln!("[child] {line}");
                }
                lines.lock().unwrap().push(line);
            }
        });
        Ok(Self { child, stderr })
    }

    /// Waits for a stderr line containing `needle`.
    pub(crate) fn wait_stderr(&mut self, needle: &str) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "exited ({status}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!("never logged {needle:?}; stderr:\n{}", self.log());
            }
            // Polling another process's log; bounded by the deadline.
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no clean stop), and reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything logged so far.
    pub(crate) fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    /// SIGTERM first, so an agent stops its OpenCode in order; SIGKILL if it does not exit.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Some(pid) = i32::try_from(self.child.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let st = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .status()?;
    anyhow::ensure!(st.success(), "git {args:?} failed");
    Ok(())
}

/// The world. Fields drop in order: processes first, then the model and its runtime, then the
/// files.
pub(crate) struct World {
    pub(crate) agent: Option<Proc>,
    pub(crate) relay: Option<Proc>,
    _model: cm_test_model::TestModel,
    _runtime: tokio::runtime::Runtime,
    pub(crate) relay_state: PathBuf,
    relay_addr: String,
    invite: String,
    pub(crate) agent_config: PathBuf,
    pub(crate) agent_state: PathBuf,
    pub(crate) workspace: PathBuf,
    tui_state: PathBuf,
    /// HOME and XDG folders of OpenCode's TUI (the desk user's), seeded like the agent's.
    pub(crate) desk_home: PathBuf,
    pub(crate) tmp: TempDir,
}

impl World {
    /// Relay state (not running), test model, workspace `demo`, and host `box` enrolled with
    /// the real `cm-agent enroll`; `extra` is appended to agent.toml's `[opencode]` table.
    pub(crate) fn new(opencode_extra: &str) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let root = std::fs::canonicalize(tmp.path())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let model = runtime.block_on(cm_test_model::spawn("127.0.0.1:0".parse()?))?;

        let relay_state = root.join("relay");
        let dir = StateDir::new(relay_state.clone());
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let relay_addr = format!("127.0.0.1:{port}");
        let init = state::init(&dir, &relay_addr, &UserId::from("owner"))?;
        let token = cm_relay::cli::host_add(&dir, "box", None)?;

        let workspace = root.join("demo");
        std::fs::create_dir_all(&workspace)?;
        std::fs::write(workspace.join("README.md"), "hello\n")?;
        git(&workspace, &["init", "-q"])?;
        git(&workspace, &["add", "."])?;
        git(&workspace, &["commit", "-qm", "init"])?;

        // Short: a Unix socket path has at most 107 bytes.
        let agent_config = root.join("a/agent.toml");
        let agent_state = root.join("a/s");
        let out = Command::new(bin("cm-agent")?)
            .arg("--config")
            .arg(&agent_config)
            .arg("--state-dir")
            .arg(&agent_state)
            .args(["enroll", &token.encode()])
            .env("CM_SECRET_STORE", "file")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config = std::fs::read_to_string(&agent_config)?;
        let opencode = cm_test_model::opencode_toml(&model.base_url(), opencode_extra);
        config.push_str(&format!(
            r#"
relay_timeout = "3s"

{opencode}
[[workspace]]
name = "demo"
path = "{}"
"#,
            workspace.display()
        ));
        std::fs::write(&agent_config, config)?;

        // The desk user's own OpenCode folders, seeded so its TUI does not `npm install`.
        let desk_home = root.join("desk");
        let seeded = desk_home.join("xdg/config/opencode");
        std::fs::create_dir_all(seeded.join("node_modules"))?;
        std::fs::write(
            seeded.join("package-lock.json"),
            r#"{"packages":{"":{"dependencies":{"@opencode-ai/plugin":"*"}}}}"#,
        )?;

        Ok(Self {
            agent: None,
            relay: None,
            _model: model,
            _runtime: runtime,
            relay_state,
            relay_addr,
            invite: init.invite.encode(),
            agent_config,
            agent_state,
            workspace,
            tui_state: root.join("tui"),
            desk_home,
            tmp,
        })
    }

    /// `cm-agent` with this world's config and state folder, then `args`.
    pub(crate) fn agent_cmd(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(bin("cm-agent")?);
        cmd.arg("--config")
            .arg(&self.agent_config)
            .arg("--state-dir")
            .arg(&self.agent_state)
            .args(args)
            .env("CM_SECRET_STORE", "file")
            .env("NO_COLOR", "1");
        Ok(cmd)
    }

    /// Starts `cm-agent run` and waits until its control socket is ready (not for the relay).
    pub(crate) fn start_agent(&mut self) -> Result<()> {
        let mut cmd = self.agent_cmd(&["run", "--heartbeat-interval", "300ms"])?;
        cmd.env("RUST_LOG", "info");
        let mut agent = Proc::spawn(cmd)?;
        agent.wait_stderr("control socket ready")?;
        self.agent = Some(agent);
        Ok(())
    }

    /// The running agent.
    pub(crate) fn agent(&mut self) -> Result<&mut Proc> {
        self.agent.as_mut().context("the agent is not running")
    }

    /// Starts `cm-relay run` and waits until it listens.
    pub(crate) fn start_relay(&mut self) -> Result<()> {
        let mut cmd = Command::new(bin("cm-relay")?);
        cmd.arg("--state-dir").arg(&self.relay_state).args([
            "run",
            "--listen",
            &self.relay_addr,
            "--heartbeat-timeout",
            "2s",
        ]);
        let mut relay = Proc::spawn(cmd)?;
        relay.wait_stderr("relay listening")?;
        self.relay = Some(relay);
        Ok(())
    }

    /// Logs the owner in with `cm-tui login` and waits until host `box` is online.
    pub(crate) fn login(&self) -> Result<()> {
        self.tui_ok(&["login", &self.invite])?;
        let deadline = Instant::now() + WAIT;
        loop {
            let hosts: serde_json::Value =
                serde_json::from_str(&self.tui_ok(&["hosts", "--json"])?)?;
            if hosts["hosts"][0]["online"] == serde_json::Value::Bool(true) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "host never came online: {hosts}");
        }
    }

    /// Runs `cm-tui` to completion.
    pub(crate) fn tui(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin("cm-tui")?)
            .args(args)
            .env("CM_TUI_STATE_DIR", &self.tui_state)
            .env("CM_SECRET_STORE", "file")
            .output()?)
    }

    /// Runs `cm-tui`, which must succeed; returns stdout.
    pub(crate) fn tui_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.tui(args)?;
        if !out.status.success() {
            bail!(
                "cm-tui {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The relay's audit trail as `cm-relay audit` prints it.
    pub(crate) fn audit(&self) -> Result<String> {
        let out = Command::new(bin("cm-relay")?)
            .arg("--state-dir")
            .arg(&self.relay_state)
            .args(["audit", "--limit", "500"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "cm-relay audit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Polls the audit trail until a line holds every needle; returns that line.
    pub(crate) fn wait_audit(&self, needles: &[&str]) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let audit = self.audit()?;
            if let Some(line) = audit
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return Ok(line.to_owned());
            }
            if Instant::now() > deadline {
                bail!("no audit line with {needles:?}:\n{audit}");
            }
            // Polling the relay's store, written by another process; bounded by the deadline.
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    /// The environment of the desk user's OpenCode TUI.
    pub(crate) fn desk_env(&self) -> Vec<(String, PathBuf)> {
        let xdg = self.desk_home.join("xdg");
        vec![
            ("HOME".into(), self.desk_home.clone()),
            ("XDG_CONFIG_HOME".into(), xdg.join("config")),
            ("XDG_DATA_HOME".into(), xdg.join("data")),
            ("XDG_STATE_HOME".into(), xdg.join("state")),
            ("XDG_CACHE_HOME".into(), xdg.join("cache")),
        ]
    }
}

/// One HTTP/1.0 request to OpenCode at `url` (`http://127.0.0.1:PORT`) with HTTP Basic
/// `password` (or none) and a JSON `body`; the whole response, status line first.
pub(crate) fn opencode_http(
    url: &str,
    password: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String> {
    use base64::Engine as _;
    use std::io::{Read as _, Write as _};
    let addr = url.strip_prefix("http://").context("not an http URL")?;
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(WAIT))?;
    let auth = password
        .map(|p| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("opencode:{p}"));
            format!("Authorization: Basic {token}\r\n")
        })
        .unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        conn,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    Ok(response)
}

/// The body of an HTTP response.
pub(crate) fn body_of(response: &str) -> &str {
    response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}
