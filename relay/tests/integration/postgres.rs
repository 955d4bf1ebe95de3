//! A real `cm-relay` on PostgreSQL (`[store] backend = "postgres"`): init, an owner login, a
//! host enrolled by the CLI whose agent connects, the host list, and `cm-relay audit verify`
//! over the chain the relay wrote. Nothing goes to SQLite: no relay.db is created.

use crate::harness::{
    WAIT, enroll_agent, free_udp_port, host_online, operator_retrying, spawn_agent, watch_until,
    workspace_bin,
};
use crate::pg_server::PgServer;
use anyhow::{Context, Result};
use cm_client as client;
use proto::handshake::{LoginMethod, LoginRequest};
use proto::ids::ReqId;
use proto::token::{EnrollmentToken, Invite};
use std::path::{Path, PathBuf};
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
    anyhow::bail!("no {marker:?} in {out}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_on_postgres_logs_in_serves_an_agent_and_its_audit_chain_verifies() -> Result<()> {
    let Some(server) = PgServer::start() else {
        return Ok(());
    };
    let tmp = tempfile::tempdir()?;
    let config: PathBuf = tmp.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
            server.url()
        ),
    )?;
    let state = tmp.path().join("state");
    let port = free_udp_port()?;
    let addr = format!("127.0.0.1:{port}");

    let init = cm_relay(
        &config,
        &state,
        &["init", "--public-addr", &addr, "--owner", "owner"],
    )?;
    let pin = value_after(&init, "relay key pin:")?;
    let invite = Invite::decode(&value_after(&init, "(valid 7 days):")?)?;
    let token =
        EnrollmentToken::decode(cm_relay(&config, &state, &["host", "add", "box"])?.trim())?;

    let mut relay = Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["run", "--listen", &addr, "--heartbeat-timeout", "1s"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = relay.stderr.take().context("no stderr")?;
    let relay = crate::harness::Proc { child: relay };
    crate::harness::LogLines::read(stderr, "relay").wait_line(&["relay listening"])?;

    let cred = client::login(
        &addr,
        &pin,
        LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: invite.user.clone(),
            method: LoginMethod::Invite {
                secret: invite.secret,
                new_password: None,
            },
            ttl_s: None,
            label: Some("pg".into()),
            device_key: None,
        },
    )
    .await?;
    let files = enroll_agent(tmp.path(), "box", &token)?;
    let _agent = spawn_agent(&files)?;
    let session = operator_retrying(&addr, &pin, &cred).await?;
    watch_until(&session, "box online", |l| host_online(l, "box")).await?;
    let list = tokio::time::timeout(WAIT, client::host_list(&session.conn, ReqId(9))).await??;
    assert!(host_online(&list, "box"), "{list:?}");

    // The relay wrote its rows (logins, handshakes, the host list) to PostgreSQL's chain.
    drop(session);
    drop(relay);
    let listed = cm_relay(&config, &state, &["host", "list"])?;
    assert!(listed.contains("box"), "{listed}");
    let trail = cm_relay(&config, &state, &["audit"])?;
    assert!(trail.contains("login") && trail.contains("box"), "{trail}");
    assert_eq!(
        cm_relay(&config, &state, &["audit", "verify"])?.trim(),
        "audit chain intact"
    );
    assert!(!state.join("relay.db").exists(), "nothing goes to SQLite");
    Ok(())
}
