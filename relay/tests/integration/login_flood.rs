//! Floods of unauthenticated work against a real relay process: concurrent password logins
//! (argon2, 19 MiB each) and junk hellos. The relay's memory and audit trail stay bounded.

use crate::harness::*;
use anyhow::{Context, Result};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::store::AuditRow;
use proto::frame::MAX_HEADER_LEN;
use proto::handshake::{ClientHello, LoginMethod, LoginRequest, ServerHello};
use proto::ids::UserId;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A QUIC client endpoint bound to `source` (any 127.x.y.z works on Linux loopback), so one
/// test can be several addresses.
pub fn endpoint_from(source: IpAddr, pin: &str) -> Result<quinn::Endpoint> {
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(source, 0))?;
    let (cfg, _) = cm_relay::tls::client_config(pin, Duration::from_secs(30))?;
    endpoint.set_default_client_config(cfg);
    Ok(endpoint)
}

/// Sends one hello on a fresh connection and returns the relay's answer.
pub async fn hello_from(
    endpoint: &quinn::Endpoint,
    relay: SocketAddr,
    hello: ClientHello,
) -> Result<ServerHello> {
    let conn = endpoint
        .connect(relay, cm_relay::tls::RELAY_SERVER_NAME)?
        .await?;
    let (mut send, recv) = conn.open_bi().await?;
    send_frame(&mut send, &hello, MAX_HEADER_LEN).await?;
    let _ = send.finish();
    let answer = FramedRecv::new(recv, MAX_HEADER_LEN)
        .expect::<ServerHello>()
        .await?;
    conn.close(0u32.into(), b"");
    Ok(answer)
}

fn login_request(user: &str) -> LoginRequest {
    LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: UserId::from(user),
        method: LoginMethod::Password {
            password: "guess".into(),
            totp: None,
        },
        ttl_s: None,
        label: None,
        device_key: None,
    }
}

fn password_login(user: &str) -> ClientHello {
    ClientHello::Login(login_request(user))
}

/// `cm-relay run` with a `relay.toml` holding `toml`, on a free port.
fn relay_process(state: &RelayState, toml: &str) -> Result<(Proc, SocketAddr)> {
    let (proc, addr, _) = relay_process_logged(state, toml)?;
    Ok((proc, addr))
}

/// [`relay_process`], with its log.
pub fn relay_process_logged(
    state: &RelayState,
    toml: &str,
) -> Result<(Proc, SocketAddr, LogLines)> {
    let port = free_udp_port()?;
    let config = state.tmp.path().join("relay.toml");
    std::fs::write(&config, toml)?;
    let mut child = Command::new(workspace_bin("cm-relay")?)
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let proc = Proc { child };
    let logs = LogLines::read(stderr, "relay");
    logs.wait_line(&["relay listening"])?;
    Ok((proc, SocketAddr::from(([127, 0, 0, 1], port)), logs))
}

/// The peak resident memory of a process (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM line")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

fn login_rows(rows: &[AuditRow]) -> impl Iterator<Item = &AuditRow> {
    rows.iter().filter(|r| r.event.op == "login")
}

/// Password checks (argon2 runs) the audit trail records for `user`: an unknown user is
/// checked against a dummy hash, so "unknown user" rows are checks too.
fn password_checks(rows: &[AuditRow], user: &str) -> usize {
    login_rows(rows)
        .filter(|r| r.event.actor.split('@').next() == Some(user))
        .filter(|r| {
            matches!(
                r.event.reason.as_deref(),
                Some("wrong password" | "unknown user or no password set")
            )
        })
        .count()
}

/// Two argon2 memory areas (19 MiB each, `max_password_checks = 2`), the relay itself
/// (~25 MiB) and slack. Unbounded, 200 concurrent logins held ~19 MiB each (1.9 GB).
const PEAK_RSS_BOUND_KIB: u64 = 128 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_runs_at_most_limit_password_checks_per_user() -> Result<()> {
    const ADDRESSES: u8 = 10;
    const USERS: usize = 20;
    const LOGINS: usize = 200;
    let state = RelayState::new()?;
    let (relay, addr) = relay_process(&state, "max_password_checks = 2\n")?;
    let endpoints = (0..ADDRESSES)
        .map(|k| endpoint_from(IpAddr::from([127, 0, 0, 2 + k]), &state.pin))
        .collect::<Result<Vec<_>>>()?;
    // 200 at once: 20 from each of 10 addresses, 10 against each of 20 users.
    let logins: Vec<_> = (0..LOGINS)
        .map(|i| {
            let endpoint = endpoints[i % usize::from(ADDRESSES)].clone();
            let hello = password_login(&format!("u{}", i % USERS));
            tokio::spawn(async move {
                tokio::time::timeout(WAIT * 4, hello_from(&endpoint, addr, hello)).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for login in logins {
        answers.push(login.await?);
    }
    let peak = peak_rss_kib(relay.child.id())?;
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "relay peak RSS {peak} KiB exceeds {PEAK_RSS_BOUND_KIB} KiB"
    );
    for answer in answers {
        // Every login gets its answer, after its audit row is durable.
        match answer.context("a login hung")?? {
            ServerHello::Error(e) => assert_eq!(e.code, proto::wire_error::ErrorCode::LoginFailed),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let mut relay = relay;
    relay.terminate()?;
    let rows = state.store()?.audit_tail(10_000)?;
    assert_eq!(login_rows(&rows).count(), LOGINS, "every login is audited");
    for u in 0..USERS {
        let user = format!("u{u}");
        let checks = password_checks(&rows, &user);
        assert!(
            checks <= 5,
            "{user} got {checks} password checks against a limit of 5"
        );
    }
    Ok(())
}

/// A hello whose `type` is ~55 KiB (as JSON) of terminal escapes (title-setting OSC, clear screen, CR/LF).
pub fn junk_hello() -> Result<bytes::BytesMut> {
    let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\r\nFAKE LOG LINE ".repeat(1_200);
    let body = serde_json::to_vec(&serde_json::json!({ "type": evil }))?;
    let mut frame = bytes::BytesMut::new();
    proto::frame::encode_raw(&body, MAX_HEADER_LEN, &mut frame)?;
    Ok(frame)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_hellos_cost_one_short_audit_row_per_address_and_count_towards_its_limit() -> Result<()>
{
    let relay = TestRelay::start().await?;
    let junk = junk_hello()?;
    for _ in 0..30 {
        let conn = cm_client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(&junk).await?;
        send.finish()?;
        match FramedRecv::new(recv, MAX_HEADER_LEN)
            .expect::<ServerHello>()
            .await?
        {
            ServerHello::Error(e) => {
                assert_eq!(e.code, proto::wire_error::ErrorCode::BadRequest);
                assert!(!e.message.contains('\u{1b}'), "{:?}", e.message);
            }
            other => panic!("expected bad_request, got {other:?}"),
        }
        conn.close(0u32.into(), b"");
    }
    // The junk counted as failures: this address may not try a password now.
    let err = cm_client::login(&relay.addr_str(), &relay.state.pin, login_request("owner"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("too many failed attempts from your address"),
        "{err}"
    );
    let mut relay = relay;
    if let Some(running) = relay.relay.take() {
        running.shutdown().await;
    }
    let rows = relay.state.store()?.audit_tail(1_000)?;
    let junk_rows: Vec<_> = rows.iter().filter(|r| r.event.op == "handshake").collect();
    assert_eq!(
        junk_rows.len(),
        2,
        "one row for the address in this window, and the count of the rest: {junk_rows:?}"
    );
    let reason = junk_rows[0].event.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("bad client hello: "), "{reason}");
    assert!(reason.contains("<invalid id, "), "{reason}");
    let summary = junk_rows[1].event.reason.as_deref().unwrap_or_default();
    assert!(
        summary.starts_with("29 more refused handshakes"),
        "{summary}"
    );
    assert!(
        reason.chars().count() <= cm_relay::store::MAX_REASON_CHARS + 40,
        "{} characters",
        reason.chars().count()
    );
    assert!(
        !reason.contains('\u{1b}') && !reason.contains('\n'),
        "{reason:?}"
    );
    Ok(())
}
