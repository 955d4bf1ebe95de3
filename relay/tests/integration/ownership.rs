//! Session ownership (design §6): the creator owns a session; another operator may read it
//! but not drive it; an admin may take it over, and that is audited as a take-over.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::Result;
use cm_client::{self as client, LinkError, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::PeerKind;
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId};
use proto::message::{Control, Reply};
use proto::ops::{CreateSession, ForwardHeader, SessionInfo, SessionStatus};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// What a test's agent says on its control stream, and a signal once the relay has handled it.
pub(crate) type ControlTx = tokio::sync::mpsc::UnboundedSender<(Control, Done)>;
pub(crate) type Done = tokio::sync::oneshot::Sender<()>;

/// An agent that creates session `ses_1` on `session_create` and answers `true` otherwise. It
/// heart-beats until dropped, and sends what the test gives it on its control stream.
pub(crate) async fn session_agent(relay: &TestRelay) -> Result<(quinn::Connection, ControlTx)> {
    let token = relay.state.add_host("box", relay.addr)?;
    scripted_agent(&relay.addr_str(), &relay.state.pin, &token.secret).await
}

/// [`session_agent`] for host `box` (whose secret is `secret`) at the relay at `addr`.
pub(crate) async fn scripted_agent(
    addr: &str,
    pin: &str,
    secret: &proto::handshake::Key,
) -> Result<(quinn::Connection, ControlTx)> {
    let conn = client::dial(addr, pin, &quick_dial()).await?;
    let session = client::authenticate(conn, PeerKind::Agent, &CredId::from("box"), secret).await?;
    let streams = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = streams.accept_bi().await {
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
                        parent: None,
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
    let Session {
        conn,
        mut control_send,
        mut control_recv,
        ..
    } = session;
    let beat = |seq| Control::Heartbeat {
        seq,
        status: Default::default(),
    };
    send_frame(&mut control_send, &beat(1), MAX_FRAME_LEN).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Control, Done)>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        for seq in 2.. {
            tokio::select! {
                _ = tick.tick() => {
                    if send_frame(&mut control_send, &beat(seq), MAX_FRAME_LEN).await.is_err() {
                        return;
                    }
                }
                next = rx.recv() => {
                    let Some((msg, done)) = next else { return };
                    // The relay handles control messages in order: once the heartbeat sent
                    // after `msg` is acknowledged, `msg` has been handled.
                    if send_frame(&mut control_send, &msg, MAX_FRAME_LEN).await.is_err()
                        || send_frame(&mut control_send, &beat(seq), MAX_FRAME_LEN).await.is_err()
                    {
                        return;
                    }
                    loop {
                        match control_recv.next::<Control>().await {
                            Ok(Some(Control::HeartbeatAck { seq: acked })) if acked == seq => break,
                            Ok(Some(_)) => {}
                            _ => return,
                        }
                    }
                    let _ = done.send(());
                }
            }
        }
    });
    Ok((conn, tx))
}

/// Has the agent send `msg` and waits until the relay has handled it.
pub(crate) async fn tell_relay(agent: &ControlTx, msg: Control) -> Result<()> {
    let (done, handled) = tokio::sync::oneshot::channel();
    agent
        .send((msg, done))
        .map_err(|_| anyhow::anyhow!("the agent's control task ended"))?;
    tokio::time::timeout(WAIT, handled).await??;
    Ok(())
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

fn on(op: Op, session: &str) -> StreamHeader {
    let mut h = on_session(op);
    h.session = Some(session.into());
    h
}

/// The refusal `header` gets from `op`'s connection.
async fn refused(op: &Session, header: &StreamHeader) -> proto::wire_error::WireError {
    match client::request::<(), bool>(&op.conn, header, None).await {
        Err(LinkError::Refused(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_agent_sessions_belong_to_the_parents_owner_and_unknown_sessions_to_nobody_but_admins()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let (_agent, control) = session_agent(&relay).await?;
    let ann = user_with_grant(&relay, "ann", "box", Role::Operator)?;
    let bob = user_with_grant(&relay, "bobby", "box", Role::Operator)?;
    let ada = user_with_grant(&relay, "adaline", "*", Role::Admin)?;
    let ann_op = operator(&relay.addr_str(), &relay.state.pin, &ann).await?;
    let bob_op = operator(&relay.addr_str(), &relay.state.pin, &bob).await?;
    watch_until(&ann_op, "box online", |l| host_online(l, "box")).await?;
    let mut create = on_session(Op::SessionCreate);
    create.session = None;
    let created: SessionInfo =
        client::request(&ann_op.conn, &create, Some(&CreateSession::default())).await?;
    assert_eq!(created.id, "ses_1");

    // ann's session starts a sub-agent (OpenCode's `task` tool); the agent says so.
    tell_relay(
        &control,
        Control::SessionParent {
            session: "ses_child".into(),
            parent: "ses_1".into(),
        },
    )
    .await?;
    // A grandchild follows its parent, too.
    tell_relay(
        &control,
        Control::SessionParent {
            session: "ses_grandchild".into(),
            parent: "ses_child".into(),
        },
    )
    .await?;
    for child in ["ses_child", "ses_grandchild"] {
        // bob may not approve a permission or prompt in ann's sub-agent session ...
        for op in [Op::PermissionReply, Op::Prompt, Op::Abort] {
            let e = refused(&bob_op, &on(op, child)).await;
            assert_eq!(e.code, ErrorCode::Forbidden);
            assert!(e.message.contains("belongs to ann"), "{}", e.message);
        }
        // ... ann may.
        let ok: bool =
            client::request::<(), _>(&ann_op.conn, &on(Op::PermissionReply, child), None).await?;
        assert!(ok);
    }

    // A session nobody recorded (created outside CodeMantle, or a child of one) is no one's to
    // drive without admin: not even its "parent"'s operators.
    tell_relay(
        &control,
        Control::SessionParent {
            session: "ses_orphan".into(),
            parent: "ses_outside".into(),
        },
    )
    .await?;
    for session in ["ses_outside", "ses_orphan"] {
        let e = refused(&ann_op, &on(Op::PermissionReply, session)).await;
        assert_eq!(e.code, ErrorCode::Forbidden);
        assert!(e.message.contains("no recorded owner"), "{}", e.message);
        // Reading it is still fine.
        let read: bool =
            client::request::<(), _>(&ann_op.conn, &on(Op::Messages, session), None).await?;
        assert!(read);
    }
    let ada_op = operator(&relay.addr_str(), &relay.state.pin, &ada).await?;
    let ok: bool =
        client::request::<(), _>(&ada_op.conn, &on(Op::Abort, "ses_outside"), None).await?;
    assert!(ok);
    let rows = relay.state.store()?.audit_tail(1)?;
    assert_eq!(rows[0].event.actor, "adaline");
    assert_eq!(
        rows[0].event.reason.as_deref(),
        Some("take-over of a session owned by nobody on record")
    );
    relay.shutdown().await;
    Ok(())
}
