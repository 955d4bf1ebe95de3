//! Every bad input from the foundation issue: each gets a clear (generic where it must be)
//! error, the precise reason lands in the audit trail, and the relay keeps serving others.

use crate::harness::*;
use anyhow::Result;
use bytes::BytesMut;
use cm_client::{self as client, LinkError};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::time::now_ms;
use proto::frame::MAX_HEADER_LEN;
use proto::handshake::{
    self, ClientHello, EXPORTER_LABEL, H1, IssuedCredential, Key, PeerKind, ServerHello,
};
use proto::ids::{CredId, UserId};
use proto::wire_error::ErrorCode;

fn exporter(conn: &quinn::Connection) -> [u8; 32] {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .unwrap();
    out
}

/// Sends `hello` on a fresh connection and returns the relay's answer.
async fn send_hello(
    relay: &TestRelay,
    build: impl FnOnce(&quinn::Connection) -> ClientHello,
) -> Result<ServerHello> {
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let hello = build(&conn);
    let (mut send, recv) = conn.open_bi().await?;
    send_frame(&mut send, &hello, MAX_HEADER_LEN).await?;
    let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
    let answer = recv.expect::<ServerHello>().await?;
    conn.close(0u32.into(), b"");
    Ok(answer)
}

fn h1_for(
    conn: &quinn::Connection,
    cred: &IssuedCredential,
    key: &Key,
    ts_ms: u64,
    nonce: [u8; 32],
) -> H1 {
    handshake::build_h1(
        key,
        PeerKind::Operator,
        cred.cred_id.clone(),
        nonce,
        ts_ms,
        &exporter(conn),
    )
}

fn assert_generic_refusal(answer: &ServerHello) {
    match answer {
        ServerHello::Error(e) => {
            assert_eq!(e.code, ErrorCode::AuthFailed);
            assert_eq!(e, &proto::wire_error::WireError::auth_failed());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn last_audit_reason(relay: &TestRelay) -> String {
    let rows = relay.state.store().unwrap().audit_tail(1).unwrap();
    rows[0].event.reason.clone().unwrap_or_default()
}

/// The relay still serves a well-behaved operator.
async fn still_serving(relay: &TestRelay, cred: &IssuedCredential) -> Result<()> {
    let op = operator(&relay.addr_str(), &relay.state.pin, cred).await?;
    let list = cm_client::host_list(&op.conn, proto::ids::ReqId(1)).await?;
    assert!(list.hosts.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refusals_are_generic_on_the_wire_and_precise_in_the_audit() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let now = now_ms();

    // Wrong secret.
    let wrong = Key::from_bytes([0xee; 32]);
    let a = send_hello(&relay, |c| {
        ClientHello::H1(h1_for(c, &cred, &wrong, now, [1; 32]))
    })
    .await?;
    assert_generic_refusal(&a);
    assert_eq!(last_audit_reason(&relay), "bad mac");

    // Unknown credential.
    let unknown = IssuedCredential {
        cred_id: CredId::from("c-unknown"),
        ..cred.clone()
    };
    let a = send_hello(&relay, |c| {
        ClientHello::H1(h1_for(c, &unknown, &cred.secret, now, [2; 32]))
    })
    .await?;
    assert_generic_refusal(&a);
    assert_eq!(last_audit_reason(&relay), "unknown credential");

    // Stale and future timestamps (31 s off).
    let a = send_hello(&relay, |c| {
        ClientHello::H1(h1_for(c, &cred, &cred.secret, now - 31_000, [3; 32]))
    })
    .await?;
    assert_generic_refusal(&a);
    assert!(
        last_audit_reason(&relay).starts_with("clock skew of -"),
        "{}",
        last_audit_reason(&relay)
    );
    let a = send_hello(&relay, |c| {
        ClientHello::H1(h1_for(c, &cred, &cred.secret, now + 31_000, [4; 32]))
    })
    .await?;
    assert_generic_refusal(&a);
    assert!(last_audit_reason(&relay).starts_with("clock skew of 3"));

    // Expired credential: issue one that expired a minute ago straight into the store.
    let expired = IssuedCredential {
        cred_id: CredId::from("c-expired"),
        secret: Key::from_bytes([7; 32]),
        expires_at_ms: now - 60_000,
        user: UserId::from("owner"),
    };
    relay.state.store()?.add_credential(
        &expired.cred_id,
        &expired.user,
        &expired.secret,
        expired.expires_at_ms,
        None,
        now,
    )?;
    let err = operator(&relay.addr_str(), &relay.state.pin, &expired)
        .await
        .unwrap_err();
    let link = err.downcast_ref::<LinkError>().expect("a link error");
    assert!(link.is_fatal(), "{link}");
    assert!(link.to_string().contains("authentication failed"), "{link}");
    assert_eq!(last_audit_reason(&relay), "credential expired");

    // Revoked credential.
    let revoked = IssuedCredential {
        cred_id: CredId::from("c-revoked"),
        secret: Key::from_bytes([8; 32]),
        expires_at_ms: now + 3_600_000,
        user: UserId::from("owner"),
    };
    let store = relay.state.store()?;
    store.add_credential(
        &revoked.cred_id,
        &revoked.user,
        &revoked.secret,
        revoked.expires_at_ms,
        None,
        now,
    )?;
    operator(&relay.addr_str(), &relay.state.pin, &revoked).await?;
    store.revoke_credential(&revoked.cred_id)?;
    assert!(
        operator(&relay.addr_str(), &relay.state.pin, &revoked)
            .await
            .is_err()
    );
    assert_eq!(last_audit_reason(&relay), "credential revoked");

    still_serving(&relay, &cred).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_h1_is_refused() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let nonce = [0x42; 32];

    // A genuine handshake on connection A.
    let mut captured = None;
    let a = send_hello(&relay, |c| {
        let h1 = h1_for(c, &cred, &cred.secret, now_ms(), nonce);
        captured = Some(h1.clone());
        ClientHello::H1(h1)
    })
    .await?;
    assert!(matches!(a, ServerHello::H2(_)), "{a:?}");
    let captured = captured.expect("h1 built");

    // The same h1 copied onto connection B: the exporter differs, so the MAC fails.
    let b = send_hello(&relay, |_| ClientHello::H1(captured.clone())).await?;
    assert_generic_refusal(&b);
    assert_eq!(last_audit_reason(&relay), "bad mac");

    // A key holder reusing the nonce with a fresh MAC on connection C: the replay window says no.
    let c = send_hello(&relay, |c| {
        ClientHello::H1(h1_for(c, &cred, &cred.secret, now_ms(), nonce))
    })
    .await?;
    assert_generic_refusal(&c);
    assert_eq!(last_audit_reason(&relay), "replayed nonce");

    still_serving(&relay, &cred).await?;
    relay.shutdown().await;
    Ok(())
}

/// Sends raw bytes as the first stream and returns the relay's answer.
async fn send_raw(relay: &TestRelay, bytes: &[u8]) -> Result<ServerHello> {
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let (mut send, recv) = conn.open_bi().await?;
    send.write_all(bytes).await?;
    send.finish()?;
    let answer = FramedRecv::new(recv, MAX_HEADER_LEN)
        .expect::<ServerHello>()
        .await?;
    conn.close(0u32.into(), b"");
    Ok(answer)
}

fn assert_bad_request(answer: &ServerHello, needle: &str) {
    match answer {
        ServerHello::Error(e) => {
            assert_eq!(e.code, ErrorCode::BadRequest, "{e:?}");
            assert!(
                e.message.contains(needle),
                "{:?} does not mention {needle:?}",
                e.message
            );
        }
        other => panic!("expected bad_request, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_clear_errors() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;

    // Oversize length prefix: refused from the prefix alone.
    let a = send_raw(&relay, &[0xff, 0xff, 0xff, 0xff, b'{']).await?;
    assert_bad_request(&a, "exceeds the limit");

    // Truncated frame: the stream ends inside the announced body.
    let mut truncated = BytesMut::new();
    truncated.extend_from_slice(&100u32.to_be_bytes());
    truncated.extend_from_slice(b"{\"type\":");
    let a = send_raw(&relay, &truncated).await?;
    assert_bad_request(&a, "stream ended inside a frame");

    // Invalid JSON.
    let mut garbage = BytesMut::new();
    proto::frame::encode_raw(b"{not json", MAX_HEADER_LEN, &mut garbage)?;
    let a = send_raw(&relay, &garbage).await?;
    assert_bad_request(&a, "malformed frame");

    // Valid JSON, but not a hello.
    let mut wrong = BytesMut::new();
    proto::frame::encode_raw(br#"{"type":"teleport"}"#, MAX_HEADER_LEN, &mut wrong)?;
    let a = send_raw(&relay, &wrong).await?;
    assert_bad_request(&a, "malformed frame");

    still_serving(&relay, &cred).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_the_handshake_timeout() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    // Say nothing; the relay must close the connection itself (configured timeout: 1 s).
    let reason = tokio::time::timeout(WAIT, conn.closed()).await?;
    match reason {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(
                proto::message::CloseReason::from_code(c.error_code.into_inner()),
                proto::message::CloseReason::ProtocolError
            );
            assert_eq!(&c.reason[..], b"handshake timeout");
        }
        other => panic!("expected an application close, got {other}"),
    }
    assert_eq!(last_audit_reason(&relay), "handshake timeout");
    still_serving(&relay, &cred).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_mismatch_is_a_hard_clear_error() -> Result<()> {
    let relay = TestRelay::start().await?;
    let wrong_pin = proto::token::pin_from_spki(b"someone else");
    let err = client::dial(&relay.addr_str(), &wrong_pin, &quick_dial())
        .await
        .unwrap_err();
    match &err {
        LinkError::PinMismatch {
            expected,
            presented,
        } => {
            assert_eq!(expected, &wrong_pin);
            assert_eq!(presented, &relay.state.pin);
        }
        other => panic!("expected a pin mismatch, got {other}"),
    }
    assert!(err.is_fatal());
    assert!(err.to_string().contains("pin mismatch"));
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_uniform_and_invites_single_use() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    // The invite was used by login_owner: a second use is refused.
    let again = relay.login_owner().await.unwrap_err();
    let link = again.downcast_ref::<LinkError>().expect("link error");
    match link {
        LinkError::Refused(e) => {
            assert_eq!(e.code, ErrorCode::LoginFailed);
            assert!(
                e.message.contains("already used or expired"),
                "{}",
                e.message
            );
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(last_audit_reason(&relay), "invite unknown, used or expired");
    // A password login for a user without a password gets the same message.
    let req = proto::handshake::LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: UserId::from("owner"),
        method: proto::handshake::LoginMethod::Password {
            password: "hunter22".into(),
            totp: None,
        },
        ttl_s: None,
        label: None,
        device_key: None,
    };
    let err = client::login(&relay.addr_str(), &relay.state.pin, req)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used or expired"), "{err}");
    still_serving(&relay, &cred).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_lock_the_user_out_with_the_time_left() -> Result<()> {
    let relay = TestRelay::start().await?;
    cm_relay::cli::user_passwd(&relay.state.dir, "owner", "correct horse")?;
    let addr = relay.addr_str();
    let attempt = |password: &str| {
        let req = proto::handshake::LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: UserId::from("owner"),
            method: proto::handshake::LoginMethod::Password {
                password: password.into(),
                totp: None,
            },
            ttl_s: Some(60),
            label: None,
            device_key: None,
        };
        client::login(&addr, &relay.state.pin, req)
    };
    // The right password works, and the credential's lifetime follows the request.
    let cred = attempt("correct horse").await?;
    assert!(cred.expires_at_ms <= now_ms() + 60_000);
    for _ in 0..5 {
        let err = attempt("wrong").await.unwrap_err();
        assert!(
            err.to_string().contains("wrong user name or password"),
            "{err}"
        );
    }
    // Locked: even the right password is refused, and the error says for how long.
    let err = attempt("correct horse").await.unwrap_err().to_string();
    assert!(
        err.contains("too many failed logins for this user; try again in"),
        "{err}"
    );
    let rows = relay.state.store()?.audit_tail(7)?;
    assert_eq!(
        rows.iter()
            .filter(|r| r.event.reason.as_deref() == Some("wrong password"))
            .count(),
        5
    );
    assert!(
        rows.last()
            .unwrap()
            .event
            .reason
            .as_deref()
            .unwrap()
            .starts_with("user locked out")
    );
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_second_factor_accepts_the_current_code_once_and_refuses_old_ones() -> Result<()> {
    let relay = TestRelay::start().await?;
    cm_relay::cli::user_passwd(&relay.state.dir, "owner", "correct horse")?;
    let uri = cm_relay::cli::user_totp(&relay.state.dir, "owner")?;
    assert!(
        uri.starts_with("otpauth://totp/CodeMantle:owner?secret="),
        "{uri}"
    );
    let (secret, _) = relay
        .state
        .store()?
        .totp(&UserId::from("owner"))?
        .expect("enrolled");
    let addr = relay.addr_str();
    let attempt = |totp: Option<String>| {
        let req = proto::handshake::LoginRequest {
            v: proto::PROTOCOL_VERSION,
            user: UserId::from("owner"),
            method: proto::handshake::LoginMethod::Password {
                password: "correct horse".into(),
                totp,
            },
            ttl_s: None,
            label: None,
            device_key: None,
        };
        client::login(&addr, &relay.state.pin, req)
    };
    let err = attempt(None).await.unwrap_err().to_string();
    assert!(err.contains("add --totp CODE"), "{err}");
    let step = now_ms() / 1000 / cm_relay::totp::STEP_S;
    let code = |s: u64| format!("{:06}", cm_relay::totp::code_at(&secret, s, 6));
    let err = attempt(Some(code(step - 3))).await.unwrap_err().to_string();
    assert!(
        err.contains("wrong user name or password"),
        "an old code: {err}"
    );
    attempt(Some(code(step))).await?;
    // The same code a second time is refused (replay), even within its 30 s.
    assert!(attempt(Some(code(step))).await.is_err());
    assert_eq!(last_audit_reason(&relay), "wrong, old or reused TOTP code");
    relay.shutdown().await;
    Ok(())
}
