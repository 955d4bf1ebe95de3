//! One link's connection: dial one relay address, authenticate, heartbeat, and serve the
//! operation streams the relay opens until the connection ends. A link on TCP whose
//! background QUIC probe answers hands over: the QUIC session is authenticated first (the relay
//! then routes new streams to it), and the TCP connection's open streams finish (within
//! [`HANDOVER_DRAIN`]) before it closes.

use super::{LinkId, Links};
use crate::ops;
use crate::status;
use crate::workspaces::Workspaces;
use cm_client::framed::send_frame;
use cm_client::transport::{Transport, TransportMode};
use cm_client::{self as client, DialOptions, DialTarget, LinkError, Session};
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

/// After a move from TCP to QUIC, how long the TCP connection's open streams (a streamed
/// answer, a file read, a port forward) may take to finish before it is closed anyway.
pub(super) const HANDOVER_DRAIN: Duration = Duration::from_secs(30);

/// Why a connected session ended.
#[derive(Debug)]
pub(super) enum SessionEnd {
    Cancelled,
    RelayRestarting,
    /// The relay took a newer connection of this host instead (another link on it).
    Replaced,
    /// QUIC answers again: `next` is an authenticated QUIC session of the same relay; the
    /// TCP connection finishes its open streams in the background, then closes.
    MovingToQuic {
        from: Transport,
        next: Box<Session>,
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

/// Dials `target` (QUIC and TCP raced as configured) and authenticates as this host.
pub(super) async fn connect(
    links: &Links,
    target: &DialTarget,
) -> Result<(Session, Transport), LinkError> {
    let config = &links.config;
    let ((_endpoint, conn), transport) =
        client::transport::dial_racing(target.clone(), &config.pin, &dial_options(links)).await?;
    Ok((authenticate(links, conn).await?, transport))
}

async fn authenticate(links: &Links, conn: quinn::Connection) -> Result<Session, LinkError> {
    let config = &links.config;
    client::authenticate(
        conn,
        PeerKind::Agent,
        &CredId(config.host.0.clone()),
        &config.key,
    )
    .await
}

/// An authenticated QUIC session to `relay`, once a connection over `transport` should move
/// back to QUIC: never on QUIC or with a forced transport; on TCP in `auto` mode, once a
/// background QUIC probe answers and the QUIC connection authenticates.
async fn quic_is_back(links: &Links, relay: SocketAddr, transport: Transport) -> Session {
    if !transport.is_tcp() || links.config.transport.mode != TransportMode::Auto {
        return std::future::pending().await;
    }
    let opts = dial_options(links);
    loop {
        client::transport::quic_comes_back(relay, &links.config.pin, &opts).await;
        let session = async {
            let (_endpoint, conn) = client::dial_quic(relay, &links.config.pin, &opts).await?;
            authenticate(links, conn).await
        };
        match session.await {
            Ok(session) => return session,
            Err(e) => {
                tracing::debug!(%relay, error = %e, "QUIC answered a probe but the session failed; staying on TCP")
            }
        }
    }
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
        mut control_send,
        mut control_recv,
        ..
    } = session;
    let stream_cancel = cancel.child_token();
    let streams = Streams {
        tracker: TaskTracker::new(),
        background: stream_cancel.child_token(),
        cancel: stream_cancel,
        workspaces: Arc::clone(workspaces),
    };
    let probe = quic_is_back(links, relay, transport);
    let end = tokio::select! {
        end = serve_connection(links, id, &conn, &mut control_send, &mut control_recv, &streams, cancel) => end,
        next = probe => SessionEnd::MovingToQuic { from: transport, next: Box::new(next) },
    };
    if matches!(end, SessionEnd::MovingToQuic { .. }) {
        // The control stream stays open until the end: the relay keeps this connection
        // until its streams are done, and sends new ones to the QUIC session.
        let old = Moved {
            conn,
            control: (control_send, control_recv),
            streams,
        };
        tokio::spawn(old.finish());
        return end;
    }
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
    /// The connection's own forwarders (sub-agent links, attention): a child of `cancel`,
    /// stopped at once when the connection hands over (the next one runs its own).
    background: CancellationToken,
    workspaces: Arc<Workspaces>,
}

/// A TCP connection left for QUIC: no new streams, no heartbeats; its open streams finish.
struct Moved {
    conn: quinn::Connection,
    control: (quinn::SendStream, cm_client::framed::FramedRecv),
    streams: Streams,
}

impl Moved {
    /// Waits (within [`HANDOVER_DRAIN`]) for the open streams, then closes the connection.
    async fn finish(self) {
        let Self {
            conn,
            control,
            streams,
        } = self;
        streams.background.cancel();
        streams.tracker.close();
        let drained = tokio::time::timeout(HANDOVER_DRAIN, streams.tracker.wait()).await;
        if drained.is_err() {
            tracing::warn!(
                ?HANDOVER_DRAIN,
                "streams of the TCP connection left for QUIC still open; closing it"
            );
            streams.cancel.cancel();
            let _ = tokio::time::timeout(STREAMS_DRAIN, streams.tracker.wait()).await;
        }
        conn.close(CloseReason::Normal.code().into(), MOVING_TO_QUIC);
        drop(control);
    }
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
    control_send: &mut quinn::SendStream,
    control_recv: &mut cm_client::framed::FramedRecv,
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
        && let Err(e) = send_frame(control_send, &claim, MAX_FRAME_LEN).await
    {
        return end_of(conn, e.to_string());
    }
    // Sub-agent sessions: the relay records their parent's owner as theirs.
    let (links_tx, mut parent_links) = tokio::sync::mpsc::channel(256);
    let (workspaces, cancel_links) = (Arc::clone(&streams.workspaces), streams.background.clone());
    let (attention_workspaces, attention_tx) = (Arc::clone(&workspaces), links_tx.clone());
    streams.tracker.spawn(async move {
        tokio::select! {
            () = cancel_links.cancelled() => {}
            () = crate::session_links::forward(workspaces, links_tx) => {}
        }
    });
    // What needs a human (issue #22), told by one link only: see `Transports::tells`.
    let (transports, cancel_attention) =
        (Arc::clone(&links.transports), streams.background.clone());
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
                if let Err(e) = send_frame(control_send, &hb, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            Ok(()) = changes.changed() => {
                seq += 1;
                let hb = Control::Heartbeat { seq, status: status::collect(streams.workspaces.names()) };
                if let Err(e) = send_frame(control_send, &hb, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            Some(link) = parent_links.recv() => {
                if let Err(e) = send_frame(control_send, &link, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            // Local actions (`cm-agent attach`) for the relay's audit trail; kept on failure.
            notice = streams.workspaces.local_notices().next() => {
                if let Err(e) = send_frame(control_send, &notice, MAX_FRAME_LEN).await {
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
