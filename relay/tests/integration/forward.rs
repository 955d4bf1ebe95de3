//! Forwarding through the relay to an agent: the agent sees the principal and role, bytes flow
//! both ways, several watchers can share a host, and refusals are typed.

use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use cm_relay::time::now_ms;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{IssuedCredential, Key, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::Reply;
use proto::ops::{ForwardHeader, Prompt};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// A minimal agent built from the client library, heart-beating every 200 ms (the test
/// relay's window is 1 s) until its connection closes.
pub struct FakeAgent {
    /// Its connection.
    pub conn: quinn::Connection,
    /// The receive half of its control stream (notices from the relay).
    pub control_recv: FramedRecv,
}

/// A [`FakeAgent`] that answers each forwarded stream with a `Reply<String>` describing what
/// it received.
pub async fn fake_agent(relay: &TestRelay, name: &str) -> Result<FakeAgent> {
    fake_agent_answering(relay, name, Reply::Ok).await
}

/// The same, answering with what `reply` makes of the description (e.g. a refusal).
pub async fn fake_agent_answering(
    relay: &TestRelay,
    name: &str,
    reply: fn(String) -> Reply<String>,
) -> Result<FakeAgent> {
    let token = relay.state.add_host(name, relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                let body: Option<Prompt> = recv.next().await?;
                let answer = format!(
                    "{} as {} ({}) op={} text={}",
                    fwd.principal,
                    fwd.role,
                    fwd.cred_id,
                    fwd.header.op.as_str(),
                    body.map(|b| b.text).unwrap_or_default()
                );
                send_frame(&mut send, &reply(answer), MAX_FRAME_LEN).await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    let Session {
        conn,
        control_send,
        control_recv,
        ..
    } = session;
    heartbeat_forever(control_send, Default::default()).await?;
    Ok(FakeAgent { conn, control_recv })
}

/// A header for `op` on `host`'s `demo` workspace.
pub fn header(op: Op, host: &str) -> StreamHeader {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from(host));
    h.workspace = Some("demo".into());
    h
}

/// A user with one grant and a fresh credential, written straight into the store.
pub fn user_with_grant(
    relay: &TestRelay,
    name: &str,
    host: &str,
    role: Role,
) -> Result<IssuedCredential> {
    let store = relay.state.store()?;
    let user = UserId::from(name);
    store.add_user(&user, now_ms())?;
    store.grant(&user, host, role)?;
    let cred = IssuedCredential {
        cred_id: CredId(format!("c-{name}")),
        secret: Key::from_bytes([name.len() as u8; 32]),
        expires_at_ms: now_ms() + 3_600_000,
        user,
    };
    store.add_credential(
        &cred.cred_id,
        &cred.user,
        &cred.secret,
        cred.expires_at_ms,
        None,
        now_ms(),
    )?;
    Ok(cred)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_stream_carries_principal_role_and_body() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let _agent = fake_agent(&relay, "box").await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;

    let prompt = Prompt {
        text: "hello through the relay".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let answer: String =
        client::request(&op.conn, &header(Op::Prompt, "box"), Some(&prompt)).await?;
    assert_eq!(
        answer,
        format!(
            "owner as owner ({}) op=prompt text=hello through the relay",
            cred.cred_id
        )
    );

    // Several operators at once on the same host.
    let viewer = user_with_grant(&relay, "vera", "box", Role::Viewer)?;
    let op2 = operator(&relay.addr_str(), &relay.state.pin, &viewer).await?;
    let h = header(Op::Messages, "box");
    let (a, b) = tokio::join!(
        client::request::<(), String>(&op.conn, &h, None),
        client::request::<(), String>(&op2.conn, &h, None),
    );
    assert!(a?.starts_with("owner as owner"));
    assert!(b?.starts_with("vera as viewer"));
    relay.shutdown().await;
    Ok(())
}

fn refused(err: LinkError) -> proto::wire_error::WireError {
    match err {
        LinkError::Refused(e) => e,
        other => panic!("expected a typed refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_and_name_the_missing_role() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;

    // Enrolled but not connected.
    relay.state.add_host("sleepy", relay.addr)?;
    let e = refused(
        client::request::<(), String>(&op.conn, &header(Op::SessionList, "sleepy"), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, ErrorCode::HostOffline);
    assert!(e.message.contains("sleepy is offline"), "{}", e.message);

    // Never enrolled.
    let e = refused(
        client::request::<(), String>(&op.conn, &header(Op::SessionList, "ghost"), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, ErrorCode::UnknownHost);

    // A viewer may read but not prompt; the error names the missing role.
    let _agent = fake_agent(&relay, "box").await?;
    let viewer = user_with_grant(&relay, "vic", "box", Role::Viewer)?;
    let vop = operator(&relay.addr_str(), &relay.state.pin, &viewer).await?;
    let prompt = Prompt {
        text: "x".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let e = refused(
        client::request::<_, String>(&vop.conn, &header(Op::Prompt, "box"), Some(&prompt))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert_eq!(e.message, "prompt: needs role operator, you have viewer");
    // A grant on another host does not reach this one.
    let e = refused(
        client::request::<(), String>(&vop.conn, &header(Op::Messages, "sleepy"), None)
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, ErrorCode::Forbidden);
    assert!(e.message.contains("no grant"), "{}", e.message);
    // The denial is audited with its reason.
    let rows = relay.state.store()?.audit_tail(1)?;
    assert_eq!(rows[0].event.decision, "deny");
    assert_eq!(
        rows[0].event.reason.as_deref(),
        Some("no grant on this host")
    );
    relay.shutdown().await;
    Ok(())
}
