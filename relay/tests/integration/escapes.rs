//! Peer-chosen text (a login user name, a credential id, a hello's `type`) never reaches a
//! terminal raw: not through the relay's log, not through `cm-relay audit` (plain, `--json`,
//! `--follow`), even for rows an older relay wrote unsanitized.

use crate::harness::*;
use crate::login_flood::{endpoint_from, hello_from, junk_hello, relay_process_logged};
use anyhow::{Context, Result};
use cm_relay::framed::FramedRecv;
use cm_relay::store::AuditEvent;
use proto::frame::MAX_HEADER_LEN;
use proto::handshake::{self, ClientHello, Key, LoginMethod, LoginRequest, PeerKind, ServerHello};
use proto::ids::{CredId, UserId};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Title-setting OSC, clear screen, a bidi override, a C1 CSI, and CR/LF forging a log line.
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}\u{9b}2J\r\nFAKE LOG LINE";

fn assert_clean(text: &str) {
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}'] {
        assert!(!text.contains(bad), "{bad:?} in {text:?}");
    }
    assert!(!text.contains("pwned"), "{text:?}");
    assert!(
        !text.lines().any(|l| l.starts_with("FAKE")),
        "a forged line in {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_text_never_reaches_the_relay_log_raw() -> Result<()> {
    let state = RelayState::new()?;
    let (relay, addr, logs) = relay_process_logged(&state, "")?;
    let endpoint = endpoint_from([127, 0, 0, 1].into(), &state.pin)?;
    let login = ClientHello::Login(LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: UserId::from(EVIL),
        method: LoginMethod::Password {
            password: "x".into(),
            totp: None,
        },
        ttl_s: None,
        label: None,
        device_key: None,
    });
    hello_from(&endpoint, addr, login).await?;
    let line = logs.wait_line(&["login refused"])?;
    assert!(line.contains("<invalid id, "), "{line}");
    assert_clean(&line);

    // The mac is wrong too; the relay refuses it either way, and must log the id safely.
    let h1 = ClientHello::H1(handshake::build_h1(
        &Key::from_bytes([1; 32]),
        PeerKind::Operator,
        CredId::from(EVIL),
        [2; 32],
        cm_relay::time::now_ms(),
        &[0; 32],
    ));
    hello_from(&endpoint, addr, h1).await?;
    let line = logs.wait_line(&["handshake refused", "cred_id"])?;
    assert!(line.contains("<invalid id, "), "{line}");
    assert_clean(&line);

    let conn = endpoint
        .connect(addr, cm_relay::tls::RELAY_SERVER_NAME)?
        .await?;
    let (mut send, recv) = conn.open_bi().await?;
    send.write_all(&junk_hello()?).await?;
    send.finish()?;
    let answer = FramedRecv::new(recv, MAX_HEADER_LEN)
        .expect::<ServerHello>()
        .await?;
    assert!(matches!(answer, ServerHello::Error(_)), "{answer:?}");
    let line = logs.wait_line(&["handshake refused before authentication"])?;
    assert_clean(&line);
    drop(relay);
    Ok(())
}

fn audit_cmd(state: &RelayState, args: &[&str]) -> Result<String> {
    let out = Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .arg("audit")
        .args(args)
        .output()?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    Ok(String::from_utf8(out.stdout)?)
}

fn evil_row() -> AuditEvent {
    AuditEvent {
        actor: format!("{EVIL}@192.0.2.1"),
        op: "handshake".into(),
        target: Some(EVIL.into()),
        decision: "deny".into(),
        reason: Some(EVIL.into()),
        ..AuditEvent::default()
    }
}

#[test]
fn audit_output_is_sanitized_even_for_rows_written_raw() -> Result<()> {
    let state = RelayState::new()?;
    // As an older relay would have written it.
    state.store()?.audit(1, &evil_row())?;

    let text = audit_cmd(&state, &[])?;
    assert!(text.contains("FAKE LOG LINE"), "the row is shown: {text}");
    assert_clean(&text);

    let json = audit_cmd(&state, &["--json"])?;
    assert!(json.contains("\\u009b"), "C1 escaped: {json}");
    for c in json.chars() {
        assert!(!c.is_control() || c == '\n', "raw {c:?} in {json:?}");
    }
    let last = json.lines().last().context("no rows")?;
    let back: serde_json::Value = serde_json::from_str(last)?;
    assert_eq!(
        back["reason"], EVIL,
        "the JSON still carries the exact text"
    );

    // --follow prints new rows through the same sanitizer.
    let mut follow = Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args(["audit", "--follow", "--limit", "0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = follow.stdout.take().context("no stdout")?;
    let mut follow = Proc { child: follow };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Written after --follow started: the follower only prints rows newer than its start,
    // and keeps polling until one arrives.
    let store = state.store()?;
    let deadline = std::time::Instant::now() + WAIT;
    let line = loop {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "--follow printed nothing"
        );
        store.audit(2, &evil_row())?;
        match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(line) => break line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(e) => anyhow::bail!("follower ended: {e}"),
        }
    };
    follow.kill();
    assert!(line.contains("FAKE LOG LINE"), "{line}");
    assert_clean(&line);
    Ok(())
}
