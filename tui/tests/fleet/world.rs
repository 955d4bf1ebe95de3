//! The fleet world: PostgreSQL, relays `a`, `b`, `c` on it, agents each on two relays (real
//! `cm-agent` + `opencode serve` on the test model), and operators logged in with `cm-tui`.
//! Processes stop on Drop (before the database and the temporary directory go).

use crate::harness::{Proc, WAIT, bin, opencode_installed};
use crate::pg_server::PgServer;
use anyhow::{Context, Result, bail};
use cm_client::secrets::StoreChoice;
use cm_tui::profile::{Logins, Profile};
use cm_tui::remote::Remote;
use proto::handshake::Key;
use proto::token::{EnrollmentToken, Invite};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The relays' ids, in the order of [`Fleet::relays`].
pub const RELAY_IDS: [&str; 3] = ["a", "b", "c"];

/// A host is shown offline this long after its last heartbeat; a relay's presence rows count
/// this long after its last heartbeat in the database.
const HEARTBEAT_TIMEOUT: &str = "2s";

/// A port the OS chose as free for UDP on 127.0.0.1 (released again for the relay to bind).
fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One relay of the fleet: its `relay.toml`, state directory, addresses and process.
pub struct RelayNode {
    pub id: String,
    /// Where agents and operators dial it.
    pub addr: String,
    /// Where its peers dial it (`[fleet] peer_listen`).
    pub peer_addr: String,
    pub config: PathBuf,
    pub state: PathBuf,
    pub proc: Option<Proc>,
}

impl RelayNode {
    fn new(root: &Path, id: &str, db_url: &str) -> Result<Self> {
        let dir = root.join(format!("relay-{id}"));
        std::fs::create_dir_all(&dir)?;
        let addr = format!("127.0.0.1:{}", free_udp_port()?);
        let peer_addr = format!("127.0.0.1:{}", free_udp_port()?);
        let config = dir.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nbackend = \"postgres\"\nurl = \"{db_url}\"\n\n\
                 [fleet]\nid = \"{id}\"\npeer_listen = \"{peer_addr}\"\n"
            ),
        )?;
        Ok(Self {
            id: id.to_owned(),
            addr,
            peer_addr,
            config,
            state: dir.join("state"),
            proc: None,
        })
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(bin("cm-relay")?);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .args(args);
        Ok(cmd)
    }

    /// `cm-relay --config … --state-dir … ARGS` to completion.
    pub fn cli(&self, args: &[&str]) -> Result<Output> {
        Ok(self.command(args)?.output()?)
    }

    /// As [`Self::cli`], which must succeed; its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.cli(args)?;
        anyhow::ensure!(
            out.status.success(),
            "cm-relay {args:?} (relay {}) failed: {}",
            self.id,
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Starts `cm-relay run` and waits until it listens.
    pub fn start(&mut self) -> Result<()> {
        let mut cmd = self.command(&[
            "run",
            "--listen",
            &self.addr,
            "--heartbeat-timeout",
            HEARTBEAT_TIMEOUT,
        ])?;
        cmd.env("RUST_LOG", "info,cm_relay=debug");
        let proc = Proc::spawn(cmd)?;
        proc.wait_stderr("relay listening")
            .with_context(|| format!("relay {} did not start", self.id))?;
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGKILL: the relay dies without a word.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.proc
            .as_ref()
            .map(|p| p.stderr_log.lock().unwrap().join("\n"))
            .unwrap_or_default()
    }
}

/// One agent: a host enrolled once, configured with two relays' addresses.
pub struct AgentNode {
    pub host: String,
    /// Indexes into [`Fleet::relays`].
    pub relays: Vec<usize>,
    pub config: PathBuf,
    pub state: PathBuf,
    pub proc: Option<Proc>,
}

impl AgentNode {
    /// Starts `cm-agent run`; it connects by itself (wait with [`Fleet::wait_held`]).
    pub fn start(&mut self) -> Result<()> {
        let mut cmd = Command::new(bin("cm-agent")?);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .args(["run", "--heartbeat-interval", "300ms"])
            .env("CM_SECRET_STORE", "file")
            .env("RUST_LOG", "info");
        self.proc = Some(Proc::spawn(cmd)?);
        Ok(())
    }
}

/// An operator's `cm-tui` state directory (profile and credential), bound to one relay.
#[derive(Clone)]
pub struct Operator {
    pub user: String,
    pub relay: String,
    state: PathBuf,
}

impl Operator {
    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(bin("cm-tui")?);
        cmd.args(args)
            .env("CM_TUI_STATE_DIR", &self.state)
            .env("CM_SECRET_STORE", "file");
        Ok(cmd)
    }

    /// `cm-tui ARGS` to completion.
    pub fn tui(&self, args: &[&str]) -> Result<Output> {
        Ok(self.command(args)?.output()?)
    }

    /// As [`Self::tui`], which must succeed; its stdout.
    pub fn tui_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.tui(args)?;
        if !out.status.success() {
            bail!(
                "cm-tui {args:?} as {} on {} failed: {}",
                self.user,
                self.relay,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// The same login, used against another relay (a copy of the state directory whose
    /// profile and credential entry name `relay`).
    pub fn at(&self, relay: &RelayNode) -> Result<Self> {
        let state = self
            .state
            .with_file_name(format!("tui-{}-{}", self.user, relay.id));
        std::fs::create_dir_all(&state)?;
        for entry in std::fs::read_dir(&self.state)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(entry.path())?;
            let to = state.join(entry.file_name());
            std::fs::write(&to, text.replace(&self.relay, &relay.addr))?;
            std::fs::set_permissions(&to, entry.metadata()?.permissions())?;
        }
        Ok(Self {
            user: self.user.clone(),
            relay: relay.addr.clone(),
            state,
        })
    }

    /// The saved login (profile and credential secret).
    pub fn profile(&self) -> Result<(Profile, Key)> {
        Ok(Logins::open(&self.state, StoreChoice::File)?.load(cm_client::time::now_ms())?)
    }

    /// The operator library client on this operator's relay, retrying while it is not up
    /// (bounded).
    pub async fn remote(&self) -> Result<Remote> {
        let (profile, key) = self.profile()?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match Remote::connect(&profile, &key).await {
                Ok(r) => return Ok(r),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// `session`'s messages on `host`'s workspace `demo`: (role, text) in order.
    pub fn transcript(&self, host: &str, session: &str) -> Result<Vec<(String, String)>> {
        let out = self.tui_ok(&["messages", host, "demo", session, "--json"])?;
        let v: Value = serde_json::from_str(&out)?;
        Ok(v.as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                let text: String = m["parts"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["type"] == "text")
                            .filter_map(|p| p["text"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                (m["role"].as_str().unwrap_or("").to_owned(), text)
            })
            .collect())
    }

    /// `cm-tui hosts --json`: host → online.
    pub fn hosts(&self) -> Result<Vec<(String, bool)>> {
        let v: Value = serde_json::from_str(&self.tui_ok(&["hosts", "--json"])?)?;
        Ok(v["hosts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|h| {
                (
                    h["host"].as_str().unwrap_or_default().to_owned(),
                    h["online"] == Value::Bool(true),
                )
            })
            .collect())
    }

    /// Waits (bounded) until this operator's relay shows `host` online (`true`) or offline.
    pub async fn wait_online(&self, host: &str, online: bool) -> Result<()> {
        crate::support::eventually(&format!("{host} online={online} on {}", self.relay), || {
            Ok(self
                .hosts()
                .ok()
                .filter(|hs| hs.iter().any(|(h, o)| h == host && *o == online))
                .map(|_| ()))
        })
        .await
    }
}

/// What a fleet holds besides its relays: the agents (host name, indexes of its relays).
pub struct Spec<'a> {
    pub agents: &'a [(&'a str, &'a [usize])],
}

/// PostgreSQL, three relays, the agents of a [`Spec`], and the owner logged in.
pub struct Fleet {
    // Drop order: processes first, then the model, the database, the directory.
    pub relays: Vec<RelayNode>,
    pub agents: Vec<AgentNode>,
    /// The owner, logged in through relay `a`.
    pub owner: Operator,
    /// The client-facing key pin all relays share.
    pub pin: String,
    pub model: cm_test_model::TestModel,
    pub pg: PgServer,
    pub tmp: tempfile::TempDir,
}

/// The line after the one containing `marker` (or the rest of that line after `marker`).
fn value_after(out: &str, marker: &str) -> Result<String> {
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.split_once(marker).map(|(_, r)| r.trim()) {
            if !rest.is_empty() {
                return Ok(rest.to_owned());
            }
            return lines.next().map(str::to_owned).context("nothing after it");
        }
    }
    bail!("no {marker:?} in {out}")
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

/// Copies `from` to `to` with owner-only permissions.
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copy {}", from.display()))?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

impl Fleet {
    /// Starts the fleet, or `None` (after a loud message) when PostgreSQL is not installed.
    pub async fn start(spec: &Spec<'_>) -> Result<Option<Self>> {
        opencode_installed()?;
        let Some(pg) = PgServer::start() else {
            return Ok(None);
        };
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().to_owned();
        let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
        let mut relays = RELAY_IDS
            .iter()
            .map(|id| RelayNode::new(&root, id, &pg.url()))
            .collect::<Result<Vec<_>>>()?;

        // Relay a creates the shared state; b and c get its client-facing identity.
        let init =
            relays[0].cli_ok(&["init", "--public-addr", &relays[0].addr, "--owner", "owner"])?;
        let pin = value_after(&init, "relay key pin:")?;
        let invite = Invite::decode(&value_after(&init, "(valid 7 days):")?)?;
        for relay in &relays[1..] {
            std::fs::create_dir_all(&relay.state)?;
            std::fs::set_permissions(
                &relay.state,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )?;
            for file in ["relay.crt", "relay.key"] {
                copy_private(&relays[0].state.join(file), &relay.state.join(file))?;
            }
        }
        for relay in &relays {
            relay.cli_ok(&[
                "cluster",
                "add",
                "--id",
                &relay.id,
                "--peer-addr",
                &relay.peer_addr,
            ])?;
        }
        for relay in &mut relays {
            relay.start()?;
        }

        // The owner logs in through relay a with the init invite.
        let owner = Operator {
            user: "owner".into(),
            relay: relays[0].addr.clone(),
            state: root.join("tui-owner-a"),
        };
        let mut invite = invite;
        invite.relay.clone_from(&relays[0].addr);
        owner.tui_ok(&["login", &invite.encode()])?;

        let mut fleet = Self {
            relays,
            agents: Vec::new(),
            owner,
            pin,
            model,
            pg,
            tmp,
        };
        for (host, on) in spec.agents {
            fleet.add_agent(host, on)?;
        }
        for i in 0..fleet.agents.len() {
            fleet.wait_held(i).await?;
        }
        Ok(Some(fleet))
    }

    /// Enrolls `host` (through relay a's CLI), configured with the relays `on`, and starts it.
    fn add_agent(&mut self, host: &str, on: &[usize]) -> Result<()> {
        let root = self.tmp.path().join(format!("agent-{host}"));
        let workspace = root.join("demo");
        std::fs::create_dir_all(&workspace)?;
        std::fs::write(workspace.join("README.md"), "hello\n")?;
        git(&workspace, &["init", "-q"])?;
        git(&workspace, &["add", "."])?;
        git(&workspace, &["commit", "-qm", "init"])?;

        // The token names this agent's relays, comma-separated: `cm-agent enroll` writes them
        // into agent.toml and files the host secret under that relay string.
        let mut token =
            EnrollmentToken::decode(self.relays[0].cli_ok(&["host", "add", host])?.trim())?;
        token.relay = on
            .iter()
            .map(|&i| self.relays[i].addr.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let config = root.join("agent.toml");
        let state = root.join("state");
        let out = Command::new(bin("cm-agent")?)
            .arg("--config")
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .args(["enroll", &token.encode()])
            .env("CM_SECRET_STORE", "file")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "enroll {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut text = std::fs::read_to_string(&config)?;
        let opencode = cm_test_model::opencode_toml(&self.model.base_url(), "");
        text.push_str(&format!(
            r#"
relay_timeout = "3s"
relay_connections = {links}

{opencode}
[[workspace]]
name = "demo"
path = "{ws}"
"#,
            links = on.len(),
            ws = workspace.display()
        ));
        std::fs::write(&config, text)?;
        let mut agent = AgentNode {
            host: host.to_owned(),
            relays: on.to_vec(),
            config,
            state,
            proc: None,
        };
        agent.start()?;
        self.agents.push(agent);
        Ok(())
    }

    /// `cm-relay cluster status --json` through relay `via`'s configuration.
    pub fn cluster_status(&self, via: usize) -> Result<Value> {
        Ok(serde_json::from_str(
            &self.relays[via].cli_ok(&["cluster", "status", "--json"])?,
        )?)
    }

    /// How many hosts relay `id` holds according to `status` (`None`: not listed).
    pub fn hosts_held(status: &Value, id: &str) -> Option<u64> {
        let relays = status
            .get("relays")
            .and_then(Value::as_array)
            .or_else(|| status.as_array())?;
        relays
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["hosts"].as_u64().or_else(|| r["hosts_held"].as_u64()))
    }

    /// Waits (bounded) until every relay of agent `i` holds a connection of it (the presence
    /// rows in the database, as `cluster status` shows them) and the host is online.
    pub async fn wait_held(&self, i: usize) -> Result<()> {
        let agent = &self.agents[i];
        let host = agent.host.clone();
        let held = async {
            self.owner.wait_online(&host, true).await?;
            self.wait_rows(i).await
        };
        held.await.with_context(|| {
            format!(
                "agent log:\n{}",
                agent
                    .proc
                    .as_ref()
                    .map(|p| p.stderr_log.lock().unwrap().join("\n"))
                    .unwrap_or_default()
            )
        })
    }

    /// Waits (bounded) until `cluster status` counts agent `i` on each of its relays.
    async fn wait_rows(&self, i: usize) -> Result<()> {
        let agent = &self.agents[i];
        let host = agent.host.clone();
        crate::support::eventually(&format!("{host} held by each of its relays"), || {
            let status = self.cluster_status(0)?;
            let ok = agent.relays.iter().all(|&r| {
                Self::hosts_held(&status, &self.relays[r].id).is_some_and(|n| {
                    n >= self
                        .agents
                        .iter()
                        .filter(|a| a.relays.contains(&r) && a.proc.is_some())
                        .count() as u64
                })
            });
            Ok(ok.then_some(()))
        })
        .await
    }

    /// Adds a user (through relay a's CLI) and logs them in through relay `on` with `cm-tui`.
    pub fn add_operator(&self, user: &str, role: &str, on: usize) -> Result<Operator> {
        let mut invite = Invite::decode(
            self.relays[0]
                .cli_ok(&["user", "add", user, "--role", role, "--host", "*"])?
                .trim(),
        )?;
        let relay = &self.relays[on];
        invite.relay.clone_from(&relay.addr);
        let op = Operator {
            user: user.to_owned(),
            relay: relay.addr.clone(),
            state: self.tmp.path().join(format!("tui-{user}-{}", relay.id)),
        };
        op.tui_ok(&["login", &invite.encode()])?;
        Ok(op)
    }

    /// The owner's login used against relay `i`.
    pub fn owner_on(&self, i: usize) -> Result<Operator> {
        if i == 0 {
            return Ok(self.owner.clone());
        }
        self.owner.at(&self.relays[i])
    }

    /// `cm-relay audit verify` through relay `via`'s configuration must say the chain is
    /// intact.
    pub fn audit_verifies(&self, via: usize) -> Result<()> {
        let out = self.relays[via].cli_ok(&["audit", "verify"])?;
        anyhow::ensure!(out.trim() == "audit chain intact", "{out}");
        Ok(())
    }
}
