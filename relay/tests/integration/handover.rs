//! A host's newer connection takes over routing at once, but the older one is not cut: the
//! agent moving from TCP back to QUIC (issue #21) authenticates its QUIC connection first,
//! stops heart-beating on the TCP one and lets its open streams finish. An older connection
//! that keeps heart-beating (two links of one agent on one relay) is closed as `replaced`.

use crate::forward::header;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::tunnel::dial_tcp_direct;
use cm_client::{self as client, Session};
use cm_relay::framed::{FramedRecv, send_frame};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::PeerKind;
use proto::header::Op;
use proto::ids::CredId;
use proto::message::{CloseReason, Control, Reply};
use proto::ops::{ForwardHeader, Prompt};
use proto::token::EnrollmentToken;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// One connection of host `box`: answers each forwarded prompt with `"{label}: {text}"`, the
/// first one only once `hold` lets it; `started` hears of each prompt as it arrives.
struct AgentConn {
    conn: quinn::Connection,
    /// Kept: dropping it would end the session.
    control_recv: FramedRecv,
    beats: JoinHandle<()>,
    started: mpsc::UnboundedReceiver<String>,
}

async fn agent_conn(
    conn: quinn::Connection,
    token: &EnrollmentToken,
    label: &'static str,
    hold: Option<oneshot::Receiver<()>>,
) -> Result<AgentConn> {
    let Session {
        conn,
        control_send,
        control_recv,
        ..
    } = client::authenticate(conn, PeerKind::Agent, &CredId("box".into()), &token.secret).await?;
    let (tell, started) = mpsc::unbounded_channel();
    let serving = conn.clone();
    tokio::spawn(async move {
        let mut hold = hold;
        while let Ok((mut send, recv)) = serving.accept_bi().await {
            let (tell, hold) = (tell.clone(), hold.take());
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let _: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                let body: Option<Prompt> = recv.next().await?;
                let text = body.map(|b| b.text).unwrap_or_default();
                let _ = tell.send(text.clone());
                if let Some(hold) = hold {
                    let _ = hold.await;
                }
                send_frame(
                    &mut send,
                    &Reply::Ok(format!("{label}: {text}")),
                    MAX_FRAME_LEN,
                )
                .await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    Ok(AgentConn {
        conn,
        control_recv,
        beats: heartbeats(control_send),
        started,
    })
}

/// Heart-beats on `control` every 200 ms (the test relay's window is 1 s) until aborted.
fn heartbeats(mut control: quinn::SendStream) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for seq in 1.. {
            tick.tick().await;
            let beat = Control::Heartbeat {
                seq,
                status: Default::default(),
            };
            if send_frame(&mut control, &beat, MAX_FRAME_LEN)
                .await
                .is_err()
            {
                return;
            }
        }
    })
}

fn prompt(text: &str) -> Prompt {
    Prompt {
        text: text.into(),
        idempotency_key: text.into(),
        model: None,
        agent: None,
    }
}

/// The relay's TCP listener.
fn tcp_addr(relay: &TestRelay) -> Result<std::net::SocketAddr> {
    relay
        .relay
        .as_ref()
        .and_then(cm_relay::server::Relay::tcp_local_addr)
        .context("the test relay has no TCP listener")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_flight_on_tcp_finishes_after_the_agent_hands_over_to_quic() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let cred = relay.login_owner().await?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;

    // The agent on TCP; a slow answer is in flight on it.
    let (release, hold) = oneshot::channel();
    let (_tcp_endpoint, conn) =
        dial_tcp_direct(tcp_addr(&relay)?, &relay.state.pin, &quick_dial()).await?;
    let mut old = agent_conn(conn, &token, "tcp", Some(hold)).await?;
    watch_until(&op, "box online", |l| host_online(l, "box")).await?;
    let slow_conn = op.conn.clone();
    let slow = tokio::spawn(async move {
        client::request::<_, String>(
            &slow_conn,
            &header(Op::Prompt, "box"),
            Some(&prompt("slow")),
        )
        .await
    });
    assert_eq!(old.started.recv().await.as_deref(), Some("slow"));

    // QUIC answers: the new connection authenticates first, then the old one goes quiet.
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let new = agent_conn(conn, &token, "quic", None).await?;
    old.beats.abort();
    // New work goes to the QUIC connection.
    let answer: String =
        client::request(&op.conn, &header(Op::Prompt, "box"), Some(&prompt("next"))).await?;
    assert_eq!(answer, "quic: next");
    // The relay stops serving the old connection's control stream once its heartbeat window
    // (1 s) passes without a beat, but does not cut the connection.
    let control_end = tokio::time::timeout(WAIT, async {
        loop {
            match old.control_recv.next::<Control>().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .context("the relay kept the old control stream open")?;
    assert!(control_end.is_ok(), "{control_end:?}");
    assert!(
        old.conn.close_reason().is_none(),
        "the relay cut the old connection: {:?}",
        old.conn.close_reason()
    );

    // The stream in flight on TCP finishes there.
    let _ = release.send(());
    let answer = slow.await??;
    assert_eq!(answer, "tcp: slow");
    old.conn
        .close(CloseReason::Normal.code().into(), b"moving to QUIC");
    assert!(new.conn.close_reason().is_none());
    watch_until(&op, "box still online", |l| host_online(l, "box")).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_connection_that_keeps_heart_beating_is_closed_as_replaced() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.state.add_host("box", relay.addr)?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let old = agent_conn(conn, &token, "first", None).await?;
    let conn = client::dial(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let new = agent_conn(conn, &token, "second", None).await?;
    let (reason, text) = closed_reason(&old.conn).await?;
    assert_eq!(reason, CloseReason::Replaced, "{text}");
    assert!(new.conn.close_reason().is_none());
    relay.shutdown().await;
    Ok(())
}
