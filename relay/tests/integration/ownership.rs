//! Session ownership (design §6): the creator owns a session; another operator may read it
//! but not drive it; an admin may take it over, and that is audited as a take-over.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::Result;
use cm_relay::client::{self, LinkError, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::PeerKind;
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId};
use proto::message::Reply;
use proto::ops::{CreateSession, ForwardHeader, SessionInfo, SessionStatus};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// An agent that creates session `ses_1` on `session_create` and answers `true` otherwise.
async fn session_agent(relay: &TestRelay) -> Result<Session> {
    let token = relay.state.add_host("box", relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let mut session =
        client::authenticate(conn, PeerKind::Agent, &CredId::from("box"), &token.secret).await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                if fwd.header.op == Op::SessionCreate {
                    // Like the real agent: the body must arrive before the reply is written.
                    recv.set_max_len(MAX_FRAME_LEN);
                    let body: CreateSession = recv.expect().await?;
                    let info = SessionInfo {
                        id: "ses_1".into(),
                        title: body.title.unwrap_or_default(),
                        created_ms: 1,
                        updated_ms: 1,
                        status: SessionStatus::Idle,
                    };
                    send_frame(&mut send, &Reply::Ok(info), MAX_FRAME_LEN).await?;
                } else {
                    send_frame(&mut send, &Reply::Ok(true), MAX_FRAME_LEN).await?;
                }
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    send_frame(
        &mut session.control_send,
        &proto::message::Control::Heartbeat {
            seq: 1,
            status: Default::default(),
        },
        MAX_FRAME_LEN,
    )
    .await?;
    Ok(session)
}

fn on_session(op: Op) -> StreamHeader {
    let mut h = StreamHeader::new(op, ReqId(1));
    h.host = Some(HostId::from("box"));
    h.workspace = Some("demo".into());
    h.session = Some("ses_1".into());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_owns_others_read_admins_take_over() -> Result<()> {
    let relay = TestRelay::start().await?;
    let _agent = session_agent(&relay).await?;
    let ann = user_with_grant(&relay, "ann", "box", Role::Operator)?;
    let bob = user_with_grant(&relay, "bobby", "box", Role::Operator)?;
    let ada = user_with_grant(&relay, "adaline", "*", Role::Admin)?;
    let ann_op = operator(&relay.addr_str(), &relay.state.pin, &ann).await?;
    watch_until(&ann_op, "box online", |l| host_online(l, "box")).await?;

    let mut create = on_session(Op::SessionCreate);
    create.session = None;
    let body = CreateSession {
        title: Some("mine".into()),
    };
    let created: SessionInfo = client::request(&ann_op.conn, &create, Some(&body)).await?;
    assert_eq!(created.id, "ses_1");
    assert_eq!(created.title, "mine");
    assert_eq!(
        relay
            .state
            .store()?
            .session_owner(&HostId::from("box"), "ses_1")?
            .map(|u| u.0),
        Some("ann".to_owned())
    );

    // The owner drives it.
    let ok: bool = client::request::<(), _>(&ann_op.conn, &on_session(Op::Abort), None).await?;
    assert!(ok);
    // Another operator may read it but not drive it.
    let bob_op = operator(&relay.addr_str(), &relay.state.pin, &bob).await?;
    let read: bool =
        client::request::<(), _>(&bob_op.conn, &on_session(Op::Messages), None).await?;
    assert!(read);
    match client::request::<(), bool>(&bob_op.conn, &on_session(Op::Abort), None).await {
        Err(LinkError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::Forbidden);
            assert_eq!(
                e.message,
                "abort: this session belongs to ann; taking it over needs role admin, you have operator"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Answering a permission in someone else's session is driving it, too; an answer must name
    // its session so the rule can apply.
    match client::request::<(), bool>(&bob_op.conn, &on_session(Op::PermissionReply), None).await {
        Err(LinkError::Refused(e)) => assert_eq!(e.code, ErrorCode::Forbidden),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut no_session = on_session(Op::PermissionReply);
    no_session.session = None;
    match client::request::<(), bool>(&ann_op.conn, &no_session, None).await {
        Err(LinkError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert!(
                e.message.contains("needs the request's session"),
                "{}",
                e.message
            );
        }
        other => panic!("expected bad_request, got {other:?}"),
    }
    // An admin takes over; the audit says so.
    let ada_op = operator(&relay.addr_str(), &relay.state.pin, &ada).await?;
    let ok: bool = client::request::<(), _>(&ada_op.conn, &on_session(Op::Abort), None).await?;
    assert!(ok);
    let rows = relay.state.store()?.audit_tail(1)?;
    assert_eq!(rows[0].event.actor, "adaline");
    assert_eq!(
        rows[0].event.reason.as_deref(),
        Some("take-over of a session owned by ann")
    );

    // Administration is never forwarded to an agent.
    let mut kill = StreamHeader::new(Op::Kill, ReqId(2));
    kill.host = Some(HostId::from("box"));
    match client::request::<(), bool>(&ada_op.conn, &kill, None).await {
        // Answered by the relay itself (a kill needs its target in the body).
        Err(LinkError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::BadRequest);
            assert_eq!(e.message, "kill needs a request body");
        }
        other => panic!("expected the relay's own refusal, got {other:?}"),
    }
    relay.shutdown().await;
    Ok(())
}
