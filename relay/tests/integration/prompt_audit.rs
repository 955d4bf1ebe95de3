//! Prompts through the relay: forwarded to the agent byte for byte, and audited with their
//! text's hash by default or their text when configured.

use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, Session};
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::token::EnrollmentToken;

/// An agent that answers each forwarded stream with the hex of every byte that followed the
/// forward header (to check the relay forwards bodies byte for byte).
async fn raw_agent(relay_addr: &str, pin: &str, token: &EnrollmentToken) -> Result<Session> {
    use cm_relay::framed::FramedRecv;
    let conn = client::dial(relay_addr, pin, &quick_dial()).await?;
    let mut session = client::authenticate(
        conn,
        proto::handshake::PeerKind::Agent,
        &proto::ids::CredId(token.host.0.clone()),
        &token.secret,
    )
    .await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, proto::frame::MAX_HEADER_LEN);
                let _fwd: proto::ops::ForwardHeader = recv.expect().await?;
                let mut bytes = recv.take_buffered().to_vec();
                bytes.extend(recv.into_inner().read_to_end(1 << 20).await?);
                cm_relay::framed::send_frame(
                    &mut send,
                    &proto::message::Reply::Ok(hex::encode(bytes)),
                    proto::frame::MAX_FRAME_LEN,
                )
                .await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    cm_relay::framed::send_frame(
        &mut session.control_send,
        &proto::message::Control::Heartbeat {
            seq: 1,
            status: Default::default(),
        },
        proto::frame::MAX_FRAME_LEN,
    )
    .await?;
    Ok(session)
}

/// Sends a prompt through a relay with `full_text`, checks it reached the agent byte for byte,
/// and returns the reason of its audit row.
async fn prompt_through(full_text: bool) -> Result<String> {
    let state = RelayState::new()?;
    let mut config = state.config("127.0.0.1:0".parse()?);
    config.audit_prompt_text = full_text;
    let server = cm_relay::server::Relay::spawn(config).await?;
    let relay = TestRelay {
        addr: server.local_addr(),
        relay: Some(server),
        state,
    };
    let token = relay.state.add_host("box", relay.addr)?;
    let _agent = raw_agent(&relay.addr_str(), &relay.state.pin, &token).await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let prompt = proto::ops::Prompt {
        text: "deploy the secret plan".into(),
        idempotency_key: "k1".into(),
        model: None,
        agent: None,
    };
    let mut h = StreamHeader::new(Op::Prompt, ReqId(5));
    h.host = Some(proto::ids::HostId::from("box"));
    h.workspace = Some("demo".into());
    h.session = Some("ses_1".into());
    let forwarded: String = client::request(&op.conn, &h, Some(&prompt)).await?;
    let sent = proto::frame::to_frame(&prompt, proto::frame::MAX_FRAME_LEN)?;
    assert_eq!(forwarded, hex::encode(&sent), "forwarded byte for byte");
    let rows = relay.state.store()?.audit_tail(20)?;
    let row = rows
        .iter()
        .find(|r| r.event.op == "prompt" && r.event.decision == "allow")
        .expect("the prompt is audited");
    assert_eq!(relay.state.store()?.audit_verify()?, None);
    let reason = row.event.reason.clone().unwrap_or_default();
    relay.shutdown().await;
    Ok(reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_are_audited_hashed_by_default_and_in_full_when_configured() -> Result<()> {
    // The owner prompts into a session no one recorded: a take-over, noted before the text.
    let takeover = "take-over of a session owned by nobody on record; ";
    let hashed = prompt_through(false).await?;
    assert_eq!(
        hashed,
        format!(
            "{takeover}prompt blake3:{}",
            blake3::hash(b"deploy the secret plan").to_hex()
        )
    );
    let full = prompt_through(true).await?;
    assert_eq!(
        full,
        format!("{takeover}prompt text: deploy the secret plan")
    );
    Ok(())
}
