//! Two real `cm-relay` processes on one PostgreSQL, joined as a fleet the documented way (init
//! on the first; on the second: its TLS identity copied, `[fleet] id`, `cluster add`, `run`):
//! an agent on relay A shows online in relay B's host list, and offline once A is killed
//! (its heartbeat goes stale); a revocation made elsewhere closes A's operator connection.

use crate::harness::{
    LogLines, Proc, closed_reason, free_udp_port, heartbeat_forever, host_offline, host_online,
    operator, operator_retrying, quick_dial, watch_until, workspace_bin,
};
use crate::pg_server::PgServer;
use anyhow::{Context, Result};
use cm_client as client;
use proto::handshake::{LoginMethod, LoginRequest, PeerKind};
use proto::ids::CredId;
use proto::message::CloseReason;
use proto::token::{EnrollmentToken, Invite};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `cm-relay --config CONFIG --state-dir STATE ARGS`.
pub(crate) fn cm_relay_out(config: &Path, state: &Path, args: &[&str]) -> Result<Output> {
    Ok(Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()?)
}

/// Its stdout, or the error with stderr.
pub(crate) fn cm_relay(config: &Path, state: &Path, args: &[&str]) -> Result<String> {
    let out = cm_relay_out(config, state, args)?;
    anyhow::ensure!(
        out.status.success(),
        "cm-relay {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

pub(crate) fn after(out: &str, marker: &str) -> Result<String> {
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

pub(crate) struct Member {
    pub(crate) config: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) addr: String,
}

pub(crate) fn member(root: &Path, id: &str, url: &str) -> Result<Member> {
    let config = root.join(format!("{id}.toml"));
    std::fs::write(
        &config,
        format!(
            "heartbeat_timeout = \"1s\"\n\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n\n[fleet]\nid = \"{id}\"\npeer_listen = \"127.0.0.1:{}\"\n\n[notify]\nallow_hosts = [\"127.0.0.1\"]\nsecret_key_file = \"{}\"\n",
            free_udp_port()?,
            // One notification key for the whole fleet, as docs/deployment.md says.
            root.join("notify.key").display()
        ),
    )?;
    Ok(Member {
        config,
        state: root.join(id),
        addr: format!("127.0.0.1:{}", free_udp_port()?),
    })
}

pub(crate) fn run(m: &Member) -> Result<Proc> {
    Ok(run_logged(m, "info")?.0)
}

/// [`run`] with `RUST_LOG=rust_log`; its log lines to wait on.
pub(crate) fn run_logged(m: &Member, rust_log: &str) -> Result<(Proc, LogLines)> {
    let mut child = Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(&m.config)
        .arg("--state-dir")
        .arg(&m.state)
        .args(["run", "--listen", &m.addr])
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let proc = Proc { child };
    let log = LogLines::read(stderr, "relay");
    log.wait_line(&["relay listening"])?;
    Ok((proc, log))
}

/// Makes `joining` a second relay of `first`'s fleet the documented way: `first`'s TLS
/// identity copied, both registered with `cluster add` (peer ports `port` and `port + 1`).
pub(crate) fn join_two(first: &Member, joining: &Member, port: u16) -> Result<()> {
    std::fs::create_dir_all(&joining.state)?;
    std::fs::set_permissions(&joining.state, std::fs::Permissions::from_mode(0o700))?;
    for f in ["relay.crt", "relay.key"] {
        std::fs::copy(first.state.join(f), joining.state.join(f))?;
    }
    for (m, id, port) in [(first, "a", port), (joining, "b", port + 1)] {
        let out = cm_relay(
            &m.config,
            &m.state,
            &[
                "cluster",
                "add",
                "--id",
                id,
                "--peer-addr",
                &format!("127.0.0.1:{port}"),
            ],
        )?;
        anyhow::ensure!(out.contains(&format!("registered relay {id}")), "{out}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_relay_a_is_online_at_relay_b_until_a_dies_and_revocations_reach_a()
-> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let (a, b) = (
        member(tmp.path(), "a", &server.url())?,
        member(tmp.path(), "b", &server.url())?,
    );

    // Relay A: the first, initialised as usual.
    let init = cm_relay(&a.config, &a.state, &["init", "--public-addr", &a.addr])?;
    let pin = after(&init, "relay key pin:")?;
    let invite = Invite::decode(&after(&init, "(valid 7 days):")?)?;
    // A second `init` on the same database says how to join instead.
    let refused = cm_relay_out(&b.config, &tmp.path().join("other"), &["init"])?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && said.contains("cm-relay cluster add")
            && said.contains("copy relay.crt"),
        "{said}"
    );
    // `run` before `cluster add` names the command to run.
    std::fs::create_dir_all(&b.state)?;
    std::fs::set_permissions(&b.state, std::fs::Permissions::from_mode(0o700))?;
    for f in ["relay.crt", "relay.key"] {
        std::fs::copy(a.state.join(f), b.state.join(f))?;
    }
    let early = cm_relay_out(&b.config, &b.state, &["run", "--listen", &b.addr])?;
    let said = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success() && said.contains("cluster add --id b"),
        "{said}"
    );
    for (m, id, port) in [(&a, "a", 7444), (&b, "b", 7445)] {
        let out = cm_relay(
            &m.config,
            &m.state,
            &[
                "cluster",
                "add",
                "--id",
                id,
                "--peer-addr",
                &format!("127.0.0.1:{port}"),
            ],
        )?;
        assert!(out.contains(&format!("registered relay {id}")), "{out}");
    }
    let token =
        EnrollmentToken::decode(cm_relay(&a.config, &a.state, &["host", "add", "box"])?.trim())?;
    let mut relay_a = run(&a)?;
    let _relay_b = run(&b)?;

    // One owner credential, usable at either relay (the database is shared).
    let cred = client::login(
        &a.addr,
        &pin,
        LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: invite.user.clone(),
            method: LoginMethod::Invite {
                secret: invite.secret,
                new_password: Some("correct horse battery staple".into()),
            },
            ttl_s: None,
            label: Some("fleet".into()),
            device_key: None,
        },
    )
    .await?;
    let at_b = operator_retrying(&b.addr, &pin, &cred).await?;

    // The agent dials relay A (its token names A).
    let conn = client::dial(&token.relay, &token.pin, &quick_dial()).await?;
    let agent =
        client::authenticate(conn, PeerKind::Agent, &CredId("box".into()), &token.secret).await?;
    heartbeat_forever(agent.control_send, proto::message::HostStatus::default()).await?;
    watch_until(&at_b, "box online at relay B", |l| host_online(l, "box")).await?;

    let status = cm_relay(&b.config, &b.state, &["cluster", "status", "--json"])?;
    let relays: serde_json::Value = serde_json::from_str(&status)?;
    let alive_a = relays
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "a"))
        .context("relay a listed")?;
    assert_eq!(alive_a["alive"], true, "{status}");
    assert_eq!(alive_a["hosts"], 1, "{status}");

    // A revocation made outside relay A (here the CLI on B's machine) closes A's operator
    // connection: A's sweeper is woken by the notice.
    let second = client::login(
        &b.addr,
        &pin,
        LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: invite.user.clone(),
            method: LoginMethod::Password {
                password: "correct horse battery staple".into(),
                totp: None,
            },
            ttl_s: None,
            label: Some("doomed".into()),
            device_key: None,
        },
    )
    .await?;
    let at_a = operator(&a.addr, &pin, &second).await?;
    cm_relay(
        &b.config,
        &b.state,
        &["kill", "--cred", second.cred_id.as_str()],
    )?;
    let (reason, _) = closed_reason(&at_a.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);

    // Relay A dies without a word: its heartbeat goes stale and B shows the host offline.
    relay_a.kill();
    let at_b = operator(&b.addr, &pin, &cred).await?;
    watch_until(&at_b, "box offline at relay B", |l| host_offline(l, "box")).await?;
    let doctor = cm_relay_out(&b.config, &b.state, &["doctor", "--listen", "127.0.0.1:0"])?;
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(said.contains("a: no heartbeat"), "{said}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_retired_while_running_stops_and_tells_its_agents_to_reconnect_elsewhere()
-> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let a = member(tmp.path(), "a", &server.url())?;
    cm_relay(&a.config, &a.state, &["init", "--public-addr", &a.addr])?;
    cm_relay(
        &a.config,
        &a.state,
        &[
            "cluster",
            "add",
            "--id",
            "a",
            "--peer-addr",
            "127.0.0.1:7444",
        ],
    )?;
    let token =
        EnrollmentToken::decode(cm_relay(&a.config, &a.state, &["host", "add", "box"])?.trim())?;
    let relay_a = run(&a)?;
    let conn = client::dial(&token.relay, &token.pin, &quick_dial()).await?;
    let agent =
        client::authenticate(conn, PeerKind::Agent, &CredId("box".into()), &token.secret).await?;
    heartbeat_forever(agent.control_send, proto::message::HostStatus::default()).await?;

    // Retired (peers refuse it now): it must not keep its agents where nobody reaches them.
    cm_relay(&a.config, &a.state, &["cluster", "remove", "--id", "a"])?;
    let (reason, _) = closed_reason(&agent.conn).await?;
    assert_eq!(
        reason,
        CloseReason::Restarting,
        "the agent reconnects elsewhere"
    );
    let mut relay_a = relay_a;
    let exited = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || relay_a.child.wait()),
    )
    .await???;
    assert!(!exited.success(), "the retired relay stopped with an error");
    Ok(())
}
