//! The lab: the network of [`crate::topology`] with the real processes in it: `cm-relay` in
//! the relay namespace on 10.77.0.1:7443 (QUIC and, by default, the TCP tunnel listener on
//! the same port), `cm-agent` with `opencode serve` and the test model (on the host's
//! loopback) in the host namespace, `cm-tui` commands in the laptop namespace. Drop order:
//! processes, then namespaces, then files.

use crate::harness::{Proc, WAIT, bin, opencode_installed};
use crate::topology::{Net, RELAY_PORT, relay_addr};
use anyhow::{Context, Result, bail};
use cm_relay::state::{self, StateDir};
use proto::ids::UserId;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;
use tempfile::TempDir;

/// Proxy settings of the test machine must not leak into the clients under test.
const PROXY_ENV: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "CM_PROXY",
    "CM_TRANSPORT",
];

/// Three namespaces and what runs in them.
pub struct Lab {
    pub agent: Option<Proc>,
    pub relay: Proc,
    pub model: Proc,
    pub net: Net,
    /// Extra environment of every `cm-tui` the laptop runs (transport settings, a proxy).
    pub laptop_env: Vec<(String, String)>,
    pub agent_config: PathBuf,
    pub agent_state: PathBuf,
    tui_state: PathBuf,
    invite: String,
    pub tmp: TempDir,
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

/// Waits (bounded) for a stderr line of `proc` containing `needle`; fails at once when the
/// process exits first (a refused configuration, say), with its log.
fn wait_log(proc: &mut Proc, what: &str, needle: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = proc.stderr_log.lock().unwrap().join("\n");
        if log.contains(needle) {
            return Ok(());
        }
        if let Some(status) = proc.child.try_wait()? {
            // Its last lines may still be on their way from the reader thread.
            std::thread::park_timeout(std::time::Duration::from_millis(100));
            let log = proc.stderr_log.lock().unwrap().join("\n");
            bail!("{what} exited ({status}) before logging {needle:?}:\n{log}");
        }
        if Instant::now() > deadline {
            bail!("{what} never logged {needle:?}:\n{log}");
        }
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
}

impl Lab {
    /// The namespaces, the test model and the relay (with a host `box` enrolled but its agent
    /// not started: [`Self::start_agent`]; the operator not logged in: [`Self::login`]), or
    /// `None` (after a loud message) when the kernel refuses namespaces.
    pub async fn start() -> Result<Option<Self>> {
        opencode_installed()?;
        let Some(net) = Net::build()? else {
            return Ok(None);
        };
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().to_owned();

        // The test model, on the host's loopback (OpenCode reaches it there).
        let mut cmd = net.host.command(&bin("cm-test-model")?);
        cmd.args(["--listen", "127.0.0.1:0"]);
        let model = Proc::spawn(cmd)?;
        let line = model.line_until("the test model's address", |l| l.contains("http://"))?;
        let model_url = line
            .split_whitespace()
            .last()
            .context("the test model's address")?
            .to_owned();

        // The relay.
        let dir = StateDir::new(root.join("relay"));
        let init = state::init(&dir, &relay_addr(), &UserId::from("owner"))?;
        let mut cmd = net.relay.command(&bin("cm-relay")?);
        cmd.arg("--state-dir").arg(dir.root()).args([
            "run",
            "--listen",
            &relay_addr(),
            "--heartbeat-timeout",
            "2s",
        ]);
        cmd.env("RUST_LOG", "info");
        let mut relay = Proc::spawn(cmd)?;
        wait_log(&mut relay, "the relay", "relay listening")?;

        // The workspace: a git repository with one commit.
        let workspace = root.join("demo");
        std::fs::create_dir_all(&workspace)?;
        std::fs::write(workspace.join("README.md"), "hello\n")?;
        git(&workspace, &["init", "-q"])?;
        git(&workspace, &["add", "."])?;
        git(&workspace, &["commit", "-qm", "init"])?;

        // The host, enrolled from its own namespace with the real binary.
        let token = cm_relay::cli::host_add(&dir, "box", None)?;
        let agent_config = root.join("agent/agent.toml");
        let agent_state = root.join("agent/state");
        let out = net
            .host
            .command(&bin("cm-agent")?)
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
        // The transport keys of issue #21: race QUIC and TCP; while on TCP, probe QUIC every
        // 5 s (the least allowed), so returning to QUIC is quick to observe.
        let opencode = cm_test_model::opencode_toml(&format!("{model_url}/v1"), "");
        config.push_str(&format!(
            r#"
relay_timeout = "3s"
transport = "auto"
quic_probe_secs = 5

{opencode}
[[workspace]]
name = "demo"
path = "{}"
"#,
            workspace.display()
        ));
        std::fs::write(&agent_config, config)?;

        // The laptop's tui.toml: the same transport keys (and no file of the machine's user).
        let tui_config = root.join("tui.toml");
        std::fs::write(&tui_config, "transport = \"auto\"\nquic_probe_secs = 5\n")?;

        Ok(Some(Self {
            agent: None,
            relay,
            model,
            net,
            laptop_env: vec![("CM_TUI_CONFIG".into(), tui_config.display().to_string())],
            agent_config,
            agent_state,
            tui_state: root.join("tui"),
            invite: init.invite.encode(),
            tmp,
        }))
    }

    /// Starts `cm-agent run` in the host namespace and waits until it says it is connected.
    pub fn start_agent(&mut self) -> Result<()> {
        let mut cmd = self.net.host.command(&bin("cm-agent")?);
        cmd.arg("--config")
            .arg(&self.agent_config)
            .arg("--state-dir")
            .arg(&self.agent_state)
            .args(["run", "--heartbeat-interval", "300ms"])
            .env("CM_SECRET_STORE", "file")
            .env("RUST_LOG", "info");
        for k in PROXY_ENV {
            cmd.env_remove(k);
        }
        let mut agent = Proc::spawn(cmd)?;
        wait_log(&mut agent, "the agent", "connected to relay")?;
        self.agent = Some(agent);
        Ok(())
    }

    /// The agent's log so far.
    pub fn agent_log(&self) -> String {
        self.agent
            .as_ref()
            .map(|p| p.stderr_log.lock().unwrap().join("\n"))
            .unwrap_or_default()
    }

    fn tui_cmd(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = self.net.laptop.command(&bin("cm-tui")?);
        cmd.args(args)
            .env("CM_TUI_STATE_DIR", &self.tui_state)
            .env("CM_SECRET_STORE", "file");
        for k in PROXY_ENV {
            cmd.env_remove(k);
        }
        cmd.envs(self.laptop_env.iter().map(|(k, v)| (k, v)));
        Ok(cmd)
    }

    /// `cm-tui ARGS` on the laptop, to completion.
    pub fn tui(&self, args: &[&str]) -> Result<Output> {
        Ok(self.tui_cmd(args)?.output()?)
    }

    /// As [`Self::tui`], which must succeed; its stdout.
    pub fn tui_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.tui(args)?;
        if !out.status.success() {
            bail!(
                "cm-tui {args:?} on the laptop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A long-running `cm-tui ARGS` on the laptop.
    pub fn tui_spawn(&self, args: &[&str]) -> Result<Proc> {
        Proc::spawn(self.tui_cmd(args)?)
    }

    /// `cm-tui login` with the owner's invite, from the laptop.
    pub fn login(&self) -> Result<()> {
        self.tui_ok(&["login", &self.invite])?;
        Ok(())
    }

    /// Waits (bounded) until `cm-tui hosts` on the laptop shows `box` online.
    pub fn wait_online(&self) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.tui(&["hosts", "--json"])?;
            if out.status.success() {
                let v: Value = serde_json::from_slice(&out.stdout)?;
                if v["hosts"][0]["online"] == Value::Bool(true) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "box never came online; last: {}{}\nagent log:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.agent_log()
                );
            }
        }
    }

    /// A new session on `box`/`demo`; its id.
    pub fn new_session(&self) -> Result<String> {
        Ok(self.tui_ok(&["new", "box", "demo"])?.trim().to_owned())
    }

    /// How many user messages in `session`'s history (`cm-tui messages --json`) say exactly
    /// `text`.
    pub fn user_messages(&self, session: &str, text: &str) -> Result<usize> {
        let out = self.tui_ok(&["messages", "box", "demo", session, "--json"])?;
        let v: Value = serde_json::from_str(&out)?;
        Ok(v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|m| m["role"] == "user")
            .filter(|m| {
                m["parts"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .filter(|p| p["type"] == "text")
                        .filter_map(|p| p["text"].as_str())
                        .collect::<String>()
                        == text
                })
            })
            .count())
    }

    /// Waits (bounded) until the relay accepts TCP on its address (its tunnel listener).
    pub fn wait_relay_tcp(&self) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.net.relay.exec("ss", &["-Htln"])?;
            if out.contains(&relay_addr()) || out.contains(&format!("*:{RELAY_PORT}")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the relay never listened on TCP {}: {out}\nrelay log:\n{}",
                    relay_addr(),
                    self.relay.stderr_log.lock().unwrap().join("\n")
                );
            }
            std::thread::park_timeout(std::time::Duration::from_millis(20));
        }
    }
}
