//! One agent on two relays at once: two real `cm-relay` processes on one PostgreSQL (sharing
//! one client-facing key, so one pin), one real `cm-agent` configured with both addresses. The
//! host shows online on BOTH relays (one link each, never two links to one relay), and stays
//! online on relay B after relay A is killed. And one relay under two addresses (IPv4 and
//! IPv6) gets one link, not two that keep displacing each other.

use crate::harness::{
    LogLines, Proc, RelayState, WAIT, enroll_agent, free_udp_port, host_online, operator_retrying,
    spawn_logged_agent, watch_until, workspace_bin,
};
use crate::pg_server::PgServer;
use anyhow::{Context, Result};
use cm_client as client;
use cm_relay::server::Relay;
use proto::handshake::{IssuedCredential, LoginMethod, LoginRequest};
use proto::ids::ReqId;
use proto::token::{EnrollmentToken, Invite};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// `cm-relay --config relay.toml --state-dir state ARGS`; its stdout, or the error with stderr.
fn cm_relay(config: &Path, state: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cm-relay {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// The text after `marker` on its line, or the next line.
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
    anyhow::bail!("no {marker:?} in {out}")
}

/// `cm-relay run` on `addr` with the shared store, once it listens.
fn spawn_relay(config: &Path, state: &Path, addr: &str) -> Result<Proc> {
    let mut child = Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--listen", addr, "--heartbeat-timeout", "1s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let proc = Proc { child };
    LogLines::read(stderr, "relay").wait_line(&["relay listening"])?;
    Ok(proc)
}

/// A second relay's state dir: the first one's key and certificate (one pin for clients).
fn copy_identity(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700))?;
    for name in ["relay.crt", "relay.key"] {
        std::fs::copy(from.join(name), to.join(name))?;
    }
    Ok(())
}

/// Logs the invited user in at `addr` (no password set).
pub(crate) async fn login(addr: &str, pin: &str, invite: &Invite) -> Result<IssuedCredential> {
    Ok(client::login(
        addr,
        pin,
        LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: invite.user.clone(),
            method: LoginMethod::Invite {
                secret: invite.secret,
                new_password: None,
            },
            ttl_s: None,
            label: Some("multi".into()),
            device_key: None,
        },
    )
    .await?)
}

/// Rewrites the `relay = "…"` line `cm-agent enroll` wrote (for `first`) into `relay`.
fn set_relays(config: &Path, first: &str, relay: &str) -> Result<()> {
    let text = std::fs::read_to_string(config)?;
    let one = format!("relay = \"{first}\"");
    anyhow::ensure!(text.contains(&one), "{text}");
    std::fs::write(config, text.replace(&one, &format!("relay = {relay}")))?;
    Ok(())
}

/// Waits until the agent logged a connection to each of `relays` (in any order); fails if a
/// link connects to an address another link already holds.
fn wait_connected(log: &LogLines, relays: &[&str]) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    while seen.len() < relays.len() {
        let line = log.wait_line(&["connected to relay"])?;
        let relay = relays
            .iter()
            .find(|r| line.contains(&format!("relay={r}")))
            .with_context(|| format!("a connection to an unexpected relay: {line}"))?;
        anyhow::ensure!(
            !seen.iter().any(|s| s == relay),
            "two links on {relay}: {line}"
        );
        seen.push((*relay).to_owned());
    }
    Ok(())
}

/// `n` relay processes on one PostgreSQL sharing relay A's key, with host `box` enrolled
/// (token for relay A) and the owner's invite.
struct Fleet {
    tmp: tempfile::TempDir,
    pin: String,
    invite: Invite,
    token: EnrollmentToken,
    addrs: Vec<String>,
    relays: Vec<Proc>,
    _server: PgServer,
}

impl Fleet {
    /// `None` when PostgreSQL is not installed (the test is skipped loudly).
    fn start(n: usize) -> Result<Option<Self>> {
        let Some(server) = PgServer::start() else {
            return Ok(None);
        };
        let tmp = tempfile::tempdir()?;
        let config = tmp.path().join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
                server.url()
            ),
        )?;
        let mut addrs = Vec::new();
        for _ in 0..n {
            addrs.push(format!("127.0.0.1:{}", free_udp_port()?));
        }
        let states: Vec<_> = (0..n)
            .map(|i| tmp.path().join(format!("relay{i}")))
            .collect();
        let init = cm_relay(
            &config,
            &states[0],
            &["init", "--public-addr", &addrs[0], "--owner", "owner"],
        )?;
        let token = EnrollmentToken::decode(
            cm_relay(&config, &states[0], &["host", "add", "box"])?.trim(),
        )?;
        let mut relays = Vec::new();
        for (i, (state, addr)) in states.iter().zip(&addrs).enumerate() {
            if i > 0 {
                copy_identity(&states[0], state)?;
            }
            relays.push(spawn_relay(&config, state, addr)?);
        }
        Ok(Some(Self {
            pin: value_after(&init, "relay key pin:")?,
            invite: Invite::decode(&value_after(&init, "(valid 7 days):")?)?,
            token,
            addrs,
            relays,
            tmp,
            _server: server,
        }))
    }

    /// `cm-agent` enrolled with relay A's token, every relay then listed by hand as an array.
    fn agent(&self) -> Result<crate::harness::LoggedAgent> {
        let files = enroll_agent(self.tmp.path(), "box", &self.token)?;
        let list: Vec<String> = self.addrs.iter().map(|a| format!("\"{a}\"")).collect();
        set_relays(
            &files.config,
            &self.addrs[0],
            &format!("[{}]", list.join(", ")),
        )?;
        spawn_logged_agent(&files)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_two_relays_is_online_on_both_and_stays_online_when_one_is_killed() -> Result<()>
{
    let Some(mut fleet) = Fleet::start(2)? else {
        return Ok(());
    };
    let (addr_a, addr_b) = (fleet.addrs[0].clone(), fleet.addrs[1].clone());
    let agent = fleet.agent()?;
    wait_connected(&agent.log, &[&addr_a, &addr_b])?;

    let cred = login(&addr_a, &fleet.pin, &fleet.invite).await?;
    let on_a = operator_retrying(&addr_a, &fleet.pin, &cred).await?;
    let on_b = operator_retrying(&addr_b, &fleet.pin, &cred).await?;
    watch_until(&on_a, "box online at A", |l| host_online(l, "box")).await?;
    watch_until(&on_b, "box online at B", |l| host_online(l, "box")).await?;

    // B's host watch, from before A goes: it must never show the host offline.
    let mut watch_b = client::HostWatch::open(&on_b.conn, ReqId(21)).await?;
    fleet.relays[0].kill();
    // The agent notices A is gone (2 s relay_timeout), and fails to reach it again twice: far
    // longer than B's 1 s heartbeat timeout, so a silent link to B would show offline by now.
    agent
        .log
        .wait_line(&["relay connection lost", &format!("relay={addr_a}")])?;
    for _ in 0..2 {
        agent
            .log
            .wait_line(&["cannot reach relay", &format!("relay={addr_a}")])?;
    }
    let list = tokio::time::timeout(WAIT, client::host_list(&on_b.conn, ReqId(22))).await??;
    assert!(host_online(&list, "box"), "{list:?}");
    // Every update B sent meanwhile showed the host online (its first answer is the list at
    // the time it opened; updates follow changes; none may be the host going offline).
    while let Ok(update) = tokio::time::timeout(std::time::Duration::ZERO, watch_b.next()).await {
        let Some(update) = update? else { break };
        assert!(host_online(&update, "box"), "{update:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_relay_dies_moves_to_the_relay_no_other_link_holds() -> Result<()> {
    let Some(mut fleet) = Fleet::start(3)? else {
        return Ok(());
    };
    let addrs = fleet.addrs.clone();
    // Two links (the default) on three relays: A and B, in list order.
    let agent = fleet.agent()?;
    wait_connected(&agent.log, &[&addrs[0], &addrs[1]])?;
    fleet.relays[0].kill();
    agent
        .log
        .wait_line(&["relay connection lost", &format!("relay={}", addrs[0])])?;
    // The link that held A moves to C (B is held by the other link), not to B.
    wait_connected(&agent.log, &[&addrs[2]])?;
    let cred = login(&addrs[1], &fleet.pin, &fleet.invite).await?;
    for addr in &addrs[1..] {
        let session = operator_retrying(addr, &fleet.pin, &cred).await?;
        watch_until(&session, "box online", |l| host_online(l, "box")).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_under_two_addresses_keeps_one_link_not_two_that_displace_each_other()
-> Result<()> {
    let state = RelayState::new()?;
    // Dual-stack: the same relay answers at 127.0.0.1 and at [::1].
    let relay = Relay::spawn(state.config("[::]:0".parse()?)).await?;
    let port = relay.local_addr().port();
    let (v4, v6) = (format!("127.0.0.1:{port}"), format!("[::1]:{port}"));
    let token = state.add_host("box", v4.parse()?)?;
    let files = enroll_agent(state.tmp.path(), "box", &token)?;
    set_relays(&files.config, &v4, &format!("\"{v4},{v6}\""))?;
    let agent = spawn_logged_agent(&files)?;
    // Both links connect; the relay keeps the newer and closes the older as replaced; that
    // link sets its address aside instead of taking the connection back.
    agent
        .log
        .wait_line(&["same relay under two addresses", "moves to another address"])?;
    let cred = login(&v4, &state.pin, &state.invite).await?;
    let session = operator_retrying(&v6, &state.pin, &cred).await?;
    watch_until(&session, "box online", |l| host_online(l, "box")).await?;
    relay.shutdown().await;
    Ok(())
}
