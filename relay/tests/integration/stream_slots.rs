//! Closed watches give their agent stream back at once, even when the agent has nothing more to
//! send: an operator that opens and closes more idle watches than the agent's stream limit
//! (a TUI switching workspaces) is never told the agent has no free stream.

use crate::forward::header;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client as client;
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::PeerKind;
use proto::header::Op;
use proto::ids::CredId;
use proto::message::Reply;
use proto::ops::ForwardHeader;
use std::sync::Arc;
use tokio::sync::watch;

/// An agent whose every stream answers one frame and then stays idle until the relay stops
/// it; counts the streams still open.
async fn idle_watch_agent(
    relay: &TestRelay,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv, Arc<watch::Sender<usize>>)> {
    let token = relay.state.add_host(name, relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let open = Arc::new(watch::Sender::new(0usize));
    let (conn, counter) = (session.conn.clone(), open.clone());
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            let counter = counter.clone();
            counter.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                if recv.expect::<ForwardHeader>().await.is_ok()
                    && send_frame(&mut send, &Reply::Ok(1u64), MAX_FRAME_LEN)
                        .await
                        .is_ok()
                {
                    // Idle, like a watch on a quiet workspace: only the relay's stop ends it.
                    let _ = send.stopped().await;
                }
                counter.send_modify(|n| *n -= 1);
            });
        }
    });
    heartbeat_forever(session.control_send, Default::default()).await?;
    Ok((session.conn, session.control_recv, open))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_idle_watches_free_their_agent_streams() -> Result<()> {
    let relay = TestRelay::start().await?;
    let (_agent, _control, open) = idle_watch_agent(&relay, "quiet-box").await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    watch_until(&op, "agent online", |l| host_online(l, "quiet-box")).await?;
    let limit = cm_relay::tls::MAX_CONCURRENT_STREAMS as usize;
    for i in 0..limit + 16 {
        let (send, mut recv) =
            client::subscribe(&op.conn, &header(Op::WatchEvents, "quiet-box")).await?;
        let first: Reply<u64> = tokio::time::timeout(WAIT, recv.expect())
            .await
            .with_context(|| format!("watch {i} got no first frame"))??;
        first
            .into_result()
            .with_context(|| format!("watch {i} refused"))?;
        // Closing the watch: the operator stops reading and ends its side.
        drop((send, recv));
    }
    // And the agent saw every one of them end.
    let mut count = open.subscribe();
    let ended = tokio::time::timeout(WAIT, count.wait_for(|n| *n == 0)).await;
    assert!(
        matches!(ended, Ok(Ok(_))),
        "{} agent streams still open",
        *open.borrow()
    );
    relay.shutdown().await;
    Ok(())
}

/// An agent that, like the real one, reads a stream's body to its end before answering; counts
/// the streams it holds.
async fn body_waiting_agent(
    relay: &TestRelay,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv, Arc<watch::Sender<usize>>)> {
    let token = relay.state.add_host(name, relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let open = Arc::new(watch::Sender::new(0usize));
    let (conn, counter) = (session.conn.clone(), open.clone());
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            let counter = counter.clone();
            counter.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                if recv.expect::<ForwardHeader>().await.is_ok() {
                    recv.set_max_len(MAX_FRAME_LEN);
                    while let Ok(Some(_)) = recv.next::<serde_json::Value>().await {}
                    let _ = send_frame(&mut send, &Reply::Ok(1u64), MAX_FRAME_LEN).await;
                    let _ = send.finish();
                }
                counter.send_modify(|n| *n -= 1);
            });
        }
    });
    heartbeat_forever(session.control_send, Default::default()).await?;
    Ok((session.conn, session.control_recv, open))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_holding_header_only_streams_does_not_lock_operators_out_of_a_host() -> Result<()>
{
    use crate::forward::user_with_grant;
    use proto::rbac::Role;
    let relay = TestRelay::start().await?;
    let (_agent, _control, open) = body_waiting_agent(&relay, "box").await?;
    let vera = user_with_grant(&relay, "vera", "box", Role::Viewer)?;
    let opal = user_with_grant(&relay, "opal", "box", Role::Operator)?;
    let viewer = operator(&relay.addr_str(), &relay.state.pin, &vera).await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &opal).await?;
    watch_until(&op, "agent online", |l| host_online(l, "box")).await?;

    // The viewer opens more header-only streams (no body, never finished) than the agent
    // allows, and keeps them open.
    let (refused_tx, mut refused) = tokio::sync::mpsc::unbounded_channel();
    let viewer_conn = viewer.conn.clone();
    let flood = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..cm_relay::tls::MAX_CONCURRENT_STREAMS + 2 {
            let Ok((send, mut recv)) =
                client::subscribe(&viewer_conn, &header(Op::Messages, "box")).await
            else {
                return held;
            };
            let refused_tx = refused_tx.clone();
            held.push(send);
            tokio::spawn(async move {
                if let Ok(Reply::<u64>::Error(e)) = recv.expect().await {
                    let _ = refused_tx.send(e);
                }
            });
        }
        held
    });
    // Once the relay has turned some of the viewer's streams away, it has decided them all.
    let turned_away = tokio::time::timeout(WAIT, refused.recv())
        .await
        .context("the viewer's flood was never refused")?
        .context("no refusal")?;
    assert_eq!(turned_away.code, proto::wire_error::ErrorCode::Unavailable);
    assert!(*open.borrow() < cm_relay::tls::MAX_CONCURRENT_STREAMS as usize);

    // The operator still gets through.
    let answer: u64 =
        client::request::<(), _>(&op.conn, &header(Op::Messages, "box"), None).await?;
    assert_eq!(answer, 1);
    flood.abort();
    relay.shutdown().await;
    Ok(())
}

/// The relay lets a client open only its hello stream until it authenticated (quinn keeps
/// state for every stream a peer may open): an operator then gets the whole stream limit for
/// its requests, an agent keeps to its control stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_get_the_stream_limit_and_agents_their_control_stream() -> Result<()> {
    use futures::FutureExt as _;
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    // The control stream is one of the limit's streams.
    let requests = cm_relay::tls::MAX_CONCURRENT_STREAMS as usize - 1;
    let mut held = Vec::with_capacity(requests);
    for i in 0..requests {
        // Held open, unanswered: each counts against the limit until the end of the test.
        let stream = tokio::time::timeout(WAIT, op.conn.open_bi())
            .await
            .with_context(|| format!("operator stream {i} never opened"))??;
        held.push(stream);
    }

    let token = relay.state.add_host("one-stream-box", relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let mut agent = client::authenticate(
        conn,
        PeerKind::Agent,
        &CredId("one-stream-box".into()),
        &token.secret,
    )
    .await?;
    // A heartbeat's answer: the relay has handled the agent's connection past the handshake.
    let beat = proto::message::Control::Heartbeat {
        seq: 1,
        status: Default::default(),
    };
    send_frame(&mut agent.control_send, &beat, MAX_FRAME_LEN).await?;
    tokio::time::timeout(WAIT, async {
        loop {
            let next = agent
                .control_recv
                .expect::<proto::message::Control>()
                .await?;
            if matches!(next, proto::message::Control::HeartbeatAck { seq: 1 }) {
                return anyhow::Ok(());
            }
        }
    })
    .await
    .context("no heartbeat answer")??;
    assert!(
        agent.conn.open_bi().now_or_never().is_none(),
        "an agent's connection may open a stream besides its control stream"
    );
    drop(held);
    relay.shutdown().await;
    Ok(())
}
