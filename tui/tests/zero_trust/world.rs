//! A zero-trust world: the relay in this process with [`EvilRelay`] hooks, an owner laptop
//! (`cm-tui` with its own state) whose device key is the root, a host enrolled with a token
//! made on that laptop and certified by it, and a real `cm-agent` + `opencode serve`.

use crate::evil::EvilRelay;
use crate::harness::{Proc, WAIT, bin, opencode_installed};
use anyhow::{Context, Result, bail};
use cm_relay::config::RelayConfig;
use cm_relay::server::Relay;
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Instant;
use tempfile::TempDir;

/// One laptop: a `cm-tui` state directory.
pub struct Laptop {
    pub state: PathBuf,
}

impl Laptop {
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(bin("cm-tui")?)
            .args(args)
            .env("CM_TUI_STATE_DIR", &self.state)
            .env("CM_SECRET_STORE", "file")
            .output()?)
    }

    /// Runs a command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "cm-tui {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs a command that must fail; returns stderr and stdout together.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        if out.status.success() {
            bail!("cm-tui {args:?} succeeded but must fail: {text}");
        }
        Ok(text)
    }
}

#[allow(dead_code, reason = "tmp, relay and model are held for their Drop")]
pub struct ZtWorld {
    pub tmp: TempDir,
    pub evil: Arc<EvilRelay>,
    pub relay: Relay,
    pub agent: Proc,
    pub model: cm_test_model::TestModel,
    pub workspace: PathBuf,
    pub owner: Laptop,
    pub addr: String,
    pub agent_config: PathBuf,
    pub agent_state: PathBuf,
}

/// `cm-agent run` for the world's host.
fn agent_command(config: &Path, state: &Path) -> Result<Command> {
    let mut cmd = Command::new(bin("cm-agent")?);
    cmd.arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--heartbeat-interval", "300ms"])
        .env("CM_SECRET_STORE", "file")
        .env("RUST_LOG", "info");
    Ok(cmd)
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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

/// The token printed by `cm-tui admin host add --json` (or on its own line without `--json`).
fn token_in(out: &str) -> Result<String> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(out)
        && let Some(t) = v["token"].as_str().or_else(|| v["invite"].as_str())
    {
        return Ok(t.to_owned());
    }
    out.split_whitespace()
        .find(|w| w.starts_with("cm-enroll-") || w.starts_with("cm-invite-"))
        .map(str::to_owned)
        .with_context(|| format!("no token in {out}"))
}

/// `cm-agent enroll <token>` into `config` and `state`, as a host owner runs it.
pub fn enroll(config: &Path, state: &Path, token: &str) -> Result<()> {
    let out = agent_cli(config, state, &["enroll", token])?;
    anyhow::ensure!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `cm-agent trust show --json` for the agent in `config` and `state`.
pub fn trust_show(config: &Path, state: &Path) -> Result<serde_json::Value> {
    let out = agent_cli(config, state, &["trust", "show", "--json"])?;
    anyhow::ensure!(
        out.status.success(),
        "trust show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One `cm-agent` command on the agent in `config` and `state`.
fn agent_cli(config: &Path, state: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(bin("cm-agent")?)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .env("CM_SECRET_STORE", "file")
        .output()?)
}

impl ZtWorld {
    /// The world with the default revocation freshness limit.
    pub async fn start() -> Result<Self> {
        Self::start_with("24h").await
    }

    /// The world whose agent refuses work when the newest owner-signed revocation list is
    /// older than `revocation_max_age`.
    pub async fn start_with(revocation_max_age: &str) -> Result<Self> {
        opencode_installed()?;
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().to_owned();
        let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;

        let dir = StateDir::new(root.join("relay"));
        let addr = format!("127.0.0.1:{}", free_udp_port()?);
        let init = state::init(&dir, &addr, &UserId::from("owner"))?;
        let mut config = RelayConfig::new(dir.root().to_owned());
        config.listen = addr.parse()?;
        let evil = Arc::new(EvilRelay::default());
        let relay = Relay::spawn_with_tamper(config, evil.clone()).await?;

        // The owner's laptop: log in, make its device key the root.
        let owner = Laptop {
            state: root.join("owner"),
        };
        owner.ok(&["login", &init.invite.encode()])?;
        owner.ok(&["admin", "trust", "init"])?;

        let workspace = root.join("demo");
        std::fs::create_dir_all(&workspace)?;
        std::fs::write(workspace.join("README.md"), "hello\n")?;
        git(&workspace, &["init", "-q"])?;
        git(&workspace, &["add", "."])?;
        git(&workspace, &["commit", "-qm", "init"])?;

        // The host: a token made on the owner's laptop, enrolled with the real binary.
        let token = token_in(&owner.ok(&["admin", "host", "add", "box", "--json"])?)?;
        let agent_config = root.join("agent/agent.toml");
        let agent_state = root.join("agent/state");
        enroll(&agent_config, &agent_state, &token)?;
        let mut text = std::fs::read_to_string(&agent_config)?;
        let opencode = cm_test_model::opencode_toml(&model.base_url(), "");
        text.push_str(&format!(
            r#"
relay_timeout = "3s"

{opencode}
[[workspace]]
name = "demo"
path = "{}"

[trust]
revocation_max_age = "{revocation_max_age}"
"#,
            workspace.display()
        ));
        std::fs::write(&agent_config, text)?;
        let agent = Proc::spawn(agent_command(&agent_config, &agent_state)?)?;
        agent.wait_stderr("connected to relay")?;

        let world = Self {
            tmp,
            evil,
            relay,
            agent,
            model,
            workspace,
            owner,
            addr,
            agent_config,
            agent_state,
        };
        // The owner's laptop added the host, so it certifies the host's proven key claim by
        // itself on first contact (no `admin trust refresh`); the host then answers end to end.
        world.until_ok(&world.owner, &["workspaces", "box"], false)?;
        Ok(world)
    }

    /// Runs `args` on `laptop` until it succeeds (bounded); with `refresh`, the owner runs
    /// `admin trust refresh` before each try (certifying a claim that arrived meanwhile).
    pub fn until_ok(&self, laptop: &Laptop, args: &[&str], refresh: bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if refresh {
                let _ = self.owner.run(&["admin", "trust", "refresh"])?;
            }
            let out = laptop.run(args)?;
            if out.status.success() {
                return Ok(String::from_utf8(out.stdout)?);
            }
            if Instant::now() > deadline {
                bail!(
                    "cm-tui {args:?} never succeeded: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// Runs `args` on `laptop` until it fails with a message containing `needle` (bounded).
    pub fn until_refused(&self, laptop: &Laptop, args: &[&str], needle: &str) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = laptop.run(args)?;
            let text = String::from_utf8_lossy(&out.stderr).to_string();
            if !out.status.success() && text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("cm-tui {args:?} was never refused with {needle:?}; last: {text}");
            }
        }
    }

    /// A user added by the owner with `role` on `box`, logged in on a laptop of their own
    /// (with the invite the owner's laptop made), and certified by the owner when `certify`.
    pub fn user(&self, name: &str, role: &str, certify: bool) -> Result<Laptop> {
        let out = self.owner.ok(&[
            "admin", "user", "add", name, "--role", role, "--host", "box", "--json",
        ])?;
        let invite = token_in(&out)?;
        let laptop = Laptop {
            state: self.tmp.path().join(name),
        };
        let login: serde_json::Value =
            serde_json::from_str(&laptop.ok(&["login", &invite, "--json"])?)?;
        if certify {
            let key = login["device_key_fingerprint"]
                .as_str()
                .context("login --json names no device key")?;
            let grant = format!("box={role}");
            self.owner.ok(&[
                "admin", "user", "certify", name, "--key", key, "--grant", &grant, "--yes",
            ])?;
        }
        Ok(laptop)
    }

    /// Stops the host's agent in order (SIGTERM: it stops its OpenCode first) and waits for it.
    pub fn stop_agent(&mut self) -> Result<()> {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.agent.child.id().to_string())
            .status()?;
        let deadline = Instant::now() + WAIT;
        while self.agent.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                bail!("the agent did not stop on SIGTERM");
            }
            std::thread::park_timeout(std::time::Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the host's agent again and waits until it is connected.
    pub fn start_agent(&mut self) -> Result<()> {
        self.agent = Proc::spawn(agent_command(&self.agent_config, &self.agent_state)?)?;
        self.agent.wait_stderr("connected to relay")
    }

    /// Whether the agent logged a line containing every one of `needles`.
    pub fn agent_logged(&self, needles: &[&str]) -> bool {
        self.agent
            .stderr_log
            .lock()
            .unwrap()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
    }

    /// Waits (bounded) for an agent log line containing every one of `needles`.
    pub fn wait_agent_log(&self, needles: &[&str]) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        while !self.agent_logged(needles) {
            if Instant::now() > deadline {
                bail!(
                    "the agent never logged {needles:?}; its log:\n{}",
                    self.agent.stderr_log.lock().unwrap().join("\n")
                );
            }
            std::thread::park_timeout(std::time::Duration::from_millis(20));
        }
        Ok(())
    }
}

/// Every byte of the relay's state directory (its SQLite database and journal).
pub fn relay_files_contain(w: &ZtWorld, needle: &str) -> Result<bool> {
    let mut stack = vec![w.tmp.path().join("relay")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)?
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
