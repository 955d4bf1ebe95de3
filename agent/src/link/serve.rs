//! One link's connection: dial one relay address, authenticate, heartbeat, and serve the
//! operation streams the relay opens until the connection ends.

use super::{LinkId, Links};
use crate::ops;
use crate::status;
use crate::workspaces::Workspaces;
use cm_client::framed::send_frame;
use cm_client::transport::{Transport, TransportMode};
use cm_client::{self as client, DialOptions, LinkError, Session};
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::PeerKind;
use proto::ids::CredId;
use proto::message::{CloseReason, Control};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bound on waiting for in-flight operation streams when a connection ends.
const STREAMS_DRAIN: Duration = Duration::from_secs(2);

/// Why a connected session ended.
#[derive(Debug)]
pub(super) enum SessionEnd {
    Cancelled,
    RelayRestarting,
    /// The relay took a newer connection of this host instead (another link on it).
    Replaced,
    /// QUIC answers again: the TCP connection was closed to dial again over QUIC.
    MovingToQuic {
        from: Transport,
    },
    Lost(String),
}

/// The close reason the relay sees when a link leaves TCP for QUIC.
pub(super) const MOVING_TO_QUIC: &[u8] = b"moving to QUIC";

fn dial_options(links: &Links) -> DialOptions {
    DialOptions {
        idle_timeout: links.config.relay_timeout,
        transport: links.config.transport.clone(),
    }
}

/// Dials `addr` (QUIC and TCP raced as configured) and authenticates as this host.
pub(super) async fn connect(
    links: &Links,
    addr: SocketAddr,
) -> Result<(Session, Transport), LinkError> {
    let config = &links.config;
    let ((_endpoint, conn), transport) =
        client::transport::dial_racing(addr, &config.pin, &dial_options(links)).await?;
    let session = client::authenticate(
        conn,
        PeerKind::Agent,
        &CredId(config.host.0.clone()),
        &config.key,
    )
    .await?;
    Ok((session, transport))
}

/// Resolves when a connection over `transport` should move back to QUIC: never on QUIC or with
/// a forced transport; on TCP in `auto` mode, once a background QUIC probe answers.
async fn quic_is_back(links: &Links, relay: SocketAddr, transport: Transport) {
    if !transport.is_tcp() || links.config.transport.mode != TransportMode::Auto {
        return std::future::pending().await;
    }
    client::transport::quic_comes_back(relay, &links.config.pin, &dial_options(links)).await;
}

fn end_of(conn: &quinn::Connection, fallback: String) -> SessionEnd {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if CloseReason::from_code(c.error_code.into_inner()) == CloseReason::Restarting =>
        {
            SessionEnd::RelayRestarting
        }
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if CloseReason::from_code(c.error_code.into_inner()) == CloseReason::Replaced =>
        {
            SessionEnd::Replaced
        }
        Some(e) => SessionEnd::Lost(e.to_string()),
        None => SessionEnd::Lost(fallback),
    }
}

/// Serves one authenticated connection of link `id` until it ends.
pub(super) async fn serve(
    links: &Links,
    id: LinkId,
    session: Session,
    relay: SocketAddr,
    transport: Transport,
    cancel: &CancellationToken,
) -> SessionEnd {
    let workspaces = &links.workspaces;
    let Session {
        conn,
        control_send,
        control_recv,
        ..
    } = session;
    let streams = Streams {
        tracker: TaskTracker::new(),
        cancel: cancel.child_token(),
        workspaces: Arc::clone(workspaces),
    };
    let probe = quic_is_back(links, relay, transport);
    let end = tokio::select! {
        end = serve_connection(links, id, &conn, control_send, control_recv, &streams, cancel) => end,
        () = probe => {
            conn.close(CloseReason::Normal.code().into(), MOVING_TO_QUIC);
            SessionEnd::MovingToQuic { from: transport }
        }
    };
    if let Some(quinn::ConnectionError::ApplicationClosed(c)) = conn.close_reason()
        && CloseReason::from_code(c.error_code.into_inner()) == CloseReason::Revoked
    {
        // The kill switch for this host: nothing leased may keep running. Each relay's link may
        // be closed so; the first one acts.
        if links.host_killed.first() {
            tracing::warn!(
                link = id,
                "the relay revoked this host; stopping every OpenCode"
            );
            workspaces.on_host_killed().await;
        }
    }
    // The connection is over: in-flight operations have nobody to answer to.
    streams.cancel.cancel();
    streams.tracker.close();
    if tokio::time::timeout(STREAMS_DRAIN, streams.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("operation streams did not end in time");
    }
    end
}

/// The operation streams of one connection: tracked, cancelled together.
struct Streams {
    tracker: TaskTracker,
    cancel: CancellationToken,
    workspaces: Arc<Workspaces>,
}

/// Spawns the handler of one operation stream the relay opened.
fn spawn_stream(streams: &Streams, send: quinn::SendStream, recv: quinn::RecvStream) {
    let workspaces = Arc::clone(&streams.workspaces);
    let cancel = streams.cancel.clone();
    streams.tracker.spawn(async move {
        // Resolves when the operator stops reading (STOP_SENDING), ending a watch.
        let stopped = send.stopped();
        let peer_gone = async move {
            let _ = stopped.await;
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => {}
            () = ops::serve_stream(&workspaces, recv, send, peer_gone) => {}
        }
    });
}

async fn serve_connection(
    links: &Links,
    id: LinkId,
    conn: &quinn::Connection,
    mut control_send: quinn::SendStream,
    mut control_recv: cm_client::framed::FramedRecv,
    streams: &Streams,
    cancel: &CancellationToken,
) -> SessionEnd {
    let config = &links.config;
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ack = Instant::now();
    let mut seq: u64 = 0;
    // Workspaces added or removed: a heartbeat at once, so the host list shows the names.
    let mut changes = streams.workspaces.changes();
    // A zero-trust host claims its end-to-end key on every connection (relays forget).
    if let Some(claim) = super::trust::key_claim(streams.workspaces.trust().map(Arc::as_ref))
        && let Err(e) = send_frame(&mut control_send, &claim, MAX_FRAME_LEN).await
    {
        return end_of(conn, e.to_string());
    }
    // Sub-agent sessions: the relay records their parent's owner as theirs.
    let (links_tx, mut parent_links) = tokio::sync::mpsc::channel(256);
    let (workspaces, cancel_links) = (Arc::clone(&streams.workspaces), streams.cancel.clone());
    let (attention_workspaces, attention_tx) = (Arc::clone(&workspaces), links_tx.clone());
    streams.tracker.spawn(async move {
        tokio::select! {
            () = cancel_links.cancelled() => {}
            () = crate::session_links::forward(workspaces, links_tx) => {}
        }
    });
    // What needs a human (issue #22), told by one link only: see `Transports::tells`.
    let (transports, cancel_attention) = (Arc::clone(&links.transports), streams.cancel.clone());
    let tells: crate::attention::Teller = Arc::new(move || transports.tells(id));
    streams.tracker.spawn(async move {
        tokio::select! {
            () = cancel_attention.cancelled() => {}
            () = crate::attention::forward(attention_workspaces, attention_tx, tells) => {}
        }
    });
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                conn.close(CloseReason::Normal.code().into(), b"agent stopping");
                return SessionEnd::Cancelled;
            }
            _ = tick.tick() => {
                if last_ack.elapsed() > config.relay_timeout {
                    conn.close(CloseReason::ProtocolError.code().into(), b"no heartbeat ack");
                    return SessionEnd::Lost(format!("no answer from the relay for {:?}", config.relay_timeout));
                }
                seq += 1;
                let hb = Control::Heartbeat { seq, status: status::collect(streams.workspaces.names()) };
                if let Err(e) = send_frame(&mut control_send, &hb, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            Ok(()) = changes.changed() => {
                seq += 1;
                let hb = Control::Heartbeat { seq, status: status::collect(streams.workspaces.names()) };
                if let Err(e) = send_frame(&mut control_send, &hb, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            Some(link) = parent_links.recv() => {
                if let Err(e) = send_frame(&mut control_send, &link, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            // Local actions (`cm-agent attach`) for the relay's audit trail; kept on failure.
            notice = streams.workspaces.local_notices().next() => {
                if let Err(e) = send_frame(&mut control_send, &notice, MAX_FRAME_LEN).await {
                    streams.workspaces.local_notices().put_back(notice);
                    return end_of(conn, e.to_string());
                }
            }
            msg = control_recv.next::<Control>() => match msg {
                Ok(Some(Control::HeartbeatAck { .. })) => last_ack = Instant::now(),
                // Launch leases: the supervisors stop OpenCode started by a revoked credential.
                Ok(Some(Control::CredsRevoked { cred_ids })) => links.revocations.add(cred_ids),
                // Owner-signed revocation lists (zero-trust hosts): checked, held, kept on disk.
                Ok(Some(Control::Revocations { lists, rotations })) => {
                    let trust = streams.workspaces.trust().cloned();
                    let state_dir = config.state_dir.clone();
                    super::trust::take_revocations(trust, rotations, lists, state_dir).await;
                }
                Ok(Some(other)) => tracing::debug!(?other, "ignoring control message"),
                Ok(None) => return end_of(conn, "relay closed the control stream".into()),
                Err(e) => return end_of(conn, e.to_string()),
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => spawn_stream(streams, send, recv),
                Err(e) => return end_of(conn, e.to_string()),
            },
        }
    }
}
