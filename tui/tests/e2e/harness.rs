//! The e2e world: relay, agent with a demo workspace, test model, logged-in operator. Child
//! processes are killed on Drop. Waits are on output lines, bounded by a hang guard.

use anyhow::{Context, Result, bail};
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

/// Hang guard for any single wait (OpenCode's first prompt takes a few seconds).
pub const WAIT: Duration = Duration::from_secs(90);

pub fn bin(name: &str) -> Result<PathBuf> {
    let tui = PathBuf::from(env!("CARGO_BIN_EXE_cm-tui"));
    let path = tui.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} is missing; run `cargo build --workspace` first (scripts/test.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// The pinned OpenCode, installed by scripts/install-opencode.sh.
pub fn opencode_installed() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let oc = repo.join("tools/opencode/node_modules/opencode-linux-x64/bin/opencode");
    if !oc.exists() {
        bail!("OpenCode is not installed: run scripts/install-opencode.sh --with-system-tools");
    }
    Ok(())
}

/// A child process killed and reaped on Drop, with its stdout/stderr lines on channels.
pub struct Proc {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr_log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().context("stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let err = child.stderr.take().context("stderr")?;
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CM_TEST_VERBOSE").is_some() {
                    eprintln!("[child] {line}");
                }
                log2.lock().unwrap().push(line);
            }
        });
        Ok(Self {
            child,
            stdout: rx,
            stderr_log: log,
        })
    }

    /// The next stdout line, or an error after the hang guard.
    pub fn next_line(&self) -> Result<String> {
        self.stdout
            .recv_timeout(WAIT)
            .context("no output line in time")
    }

    /// Stdout lines until one satisfies `pred` (returned).
    pub fn line_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
        loop {
            let line = self
                .next_line()
                .with_context(|| format!("waiting for {what}"))?;
            if pred(&line) {
                return Ok(line);
            }
        }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_stderr(&self, needle: &str) -> Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if self
                .stderr_log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "child never logged {needle:?}; stderr:\n{}",
                    self.stderr_log.lock().unwrap().join("\n")
                );
            }
            // Polling a log file we do not control the timing of; bounded by the deadline.
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for exit and returns the status with all remaining stdout.
    pub fn finish(mut self) -> Result<(std::process::ExitStatus, Vec<String>, String)> {
        let status = self.child.wait()?;
        let lines: Vec<String> = self.stdout.try_iter().collect();
        std::thread::park_timeout(Duration::from_millis(50));
        let mut rest: Vec<String> = lines;
        rest.extend(self.stdout.try_iter());
        let err = self.stderr_log.lock().unwrap().join("\n");
        Ok((status, rest, err))
    }
}

impl Drop for Proc {
    /// SIGTERM first, so an agent stops its OpenCode (and OpenCode's tools) in order; SIGKILL
    /// only if it has not exited within the bound.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::park_timeout(Duration::from_millis(20));
            }
        }
        self.kill9();
    }
}

#[allow(dead_code, reason = "tmp, relay and model are held for their Drop")]
pub struct World {
    pub tmp: TempDir,
    pub relay: Proc,
    pub agent: Option<Proc>,
    pub model: cm_test_model::TestModel,
    pub workspace: PathBuf,
    pub agent_config: PathBuf,
    pub agent_state: PathBuf,
    tui_state: PathBuf,
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let st = Command::new("git").current_dir(dir).args(args).status()?;
    anyhow::ensure!(st.success(), "git {args:?} failed");
    Ok(())
}

/// Starts `cm-relay run` on `state_dir` listening on `addr`, and waits until it listens. Its
/// relay.toml lets notifications reach the tests' receivers on loopback (refused by default).
pub fn spawn_relay(state_dir: &Path, addr: &str) -> Result<Proc> {
    let config = state_dir.join("relay.toml");
    std::fs::write(&config, "[notify]\nallow_hosts = [\"127.0.0.1\"]\n")?;
    let mut cmd = Command::new(bin("cm-relay")?);
    cmd.arg("--config").arg(&config);
    cmd.arg("--state-dir").arg(state_dir).args([
        "run",
        "--listen",
        addr,
        "--heartbeat-timeout",
        "2s",
    ]);
    let relay = Proc::spawn(cmd)?;
    relay.wait_stderr("relay listening")?;
    Ok(relay)
}

impl World {
    pub async fn start() -> Result<Self> {
        Self::start_with("", &[]).await
    }

    /// A world whose `agent.toml` ends with `extra` (its first lines still belong to the
    /// `[[workspace]]` table of `demo`; a `[table]` header starts a host table) and whose agent
    /// runs with the extra environment `agent_env`.
    pub async fn start_with(extra: &str, agent_env: &[(&str, &str)]) -> Result<Self> {
        opencode_installed()?;
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().to_owned();
        let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;

        // Relay.
        let dir = StateDir::new(root.join("relay"));
        let port = free_udp_port()?;
        let addr = format!("127.0.0.1:{port}");
        let init = state::init(&dir, &addr, &UserId::from("owner"))?;
        let relay = spawn_relay(dir.root(), &addr)?;

        // Workspace: a git repository with one commit.
        let workspace = root.join("demo");
        std::fs::create_dir_all(&workspace)?;
        std::fs::write(workspace.join("README.md"), "hello\n")?;
        git(&workspace, &["init", "-q"])?;
        git(
            &workspace,
            &["-c", "user.email=t@t", "-c", "user.name=t", "add", "."],
        )?;
        git(
            &workspace,
            &[
                "-c",
                "user.email=t@t",
                "-c",
                "user.name=t",
                "commit",
                "-qm",
                "init",
            ],
        )?;

        // Agent: enrolled with the real binary, OpenCode pointed at the test model.
        let token = cm_relay::cli::host_add(&dir, "box", None)?;
        let agent_config = root.join("agent/agent.toml");
        let agent_state = root.join("agent/state");
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
        let opencode = cm_test_model::opencode_toml(&model.base_url(), "");
        config.push_str(&format!(
            r#"
relay_timeout = "3s"

{opencode}
[[workspace]]
name = "demo"
path = "{}"
{extra}
"#,
            workspace.display()
        ));
        std::fs::write(&agent_config, config)?;

        let mut world = Self {
            tui_state: root.join("tui"),
            tmp,
            relay,
            agent: None,
            model,
            workspace,
            agent_config,
            agent_state,
        };
        world.start_agent_with(agent_env)?;

        // Operator: log in with the invite through the real binary.
        let out = world.tui(&["login", &init.invite.encode()])?;
        anyhow::ensure!(
            out.status.success(),
            "login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        world.wait_host_online()?;
        Ok(world)
    }

    #[allow(
        dead_code,
        reason = "used by the faults suite, which shares this harness"
    )]
    pub fn start_agent(&mut self) -> Result<()> {
        self.start_agent_with(&[])
    }

    /// Starts `cm-agent run` (as the world's agent) with extra environment `env`, and waits
    /// until it is connected to the relay.
    pub fn start_agent_with(&mut self, env: &[(&str, &str)]) -> Result<()> {
        let mut cmd = Command::new(bin("cm-agent")?);
        cmd.arg("--config")
            .arg(&self.agent_config)
            .arg("--state-dir")
            .arg(&self.agent_state)
            .args(["run", "--heartbeat-interval", "300ms"])
            .env("CM_SECRET_STORE", "file")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        let agent = Proc::spawn(cmd)?;
        agent.wait_stderr("connected to relay")?;
        self.agent = Some(agent);
        Ok(())
    }

    /// The environment every `cm-tui` of this world runs with: the operator's state directory
    /// (profile, credential) and the file credential store.
    pub fn tui_env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("CM_TUI_STATE_DIR", self.tui_state.clone().into_os_string()),
            ("CM_SECRET_STORE", "file".into()),
        ]
    }

    fn tui_cmd(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(bin("cm-tui")?);
        cmd.args(args).envs(self.tui_env());
        Ok(cmd)
    }

    /// Runs a `cm-tui` command to completion.
    pub fn tui(&self, args: &[&str]) -> Result<Output> {
        Ok(self.tui_cmd(args)?.output()?)
    }

    /// Runs a `cm-tui` command that must succeed; returns stdout.
    pub fn tui_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.tui(args)?;
        if !out.status.success() {
            bail!(
                "cm-tui {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `cm-tui send box demo --session SESSION TEXT --wait`, which must succeed; returns stdout
    /// (the answer).
    pub fn send_wait(&self, session: &str, text: &str) -> Result<String> {
        self.tui_ok(&["send", "box", "demo", "--session", session, text, "--wait"])
    }

    /// Starts a long-running `cm-tui` command.
    pub fn tui_spawn(&self, args: &[&str]) -> Result<Proc> {
        Proc::spawn(self.tui_cmd(args)?)
    }

    fn wait_host_online(&self) -> Result<()> {
        // The agent logged "connected"; its first heartbeat follows at once. `watch` of the host
        // list is not a CLI command, so ask until it says online (bounded).
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let hosts = self.tui_ok(&["hosts", "--json"])?;
            let v: serde_json::Value = serde_json::from_str(&hosts)?;
            if v["hosts"][0]["online"] == serde_json::Value::Bool(true) {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "host never came online: {hosts}"
            );
        }
    }
}
