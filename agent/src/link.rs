//! The agent's link to the relay: dial, authenticate, heartbeat, serve the operation streams
//! the relay opens, and reconnect forever with capped, jittered backoff. Only cancellation ends
//! it.

use crate::ops;
use crate::status;
use crate::workspaces::Workspaces;
use cm_client::backoff::{Backoff, Policy, RESTART_SPREAD, jitter};
use cm_client::framed::send_frame;
use cm_client::time::random_u64;
use cm_client::{self as client, DialOptions, LinkError, Session};
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::{Key, PeerKind};
use proto::ids::{CredId, HostId};
use proto::message::{CloseReason, Control};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bound on waiting for in-flight operation streams when a connection ends.
const STREAMS_DRAIN: Duration = Duration::from_secs(2);

/// What the link needs.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Relay address.
    pub relay: String,
    /// Relay key pin.
    pub pin: String,
    /// This host's id.
    pub host: HostId,
    /// The host secret.
    pub key: Key,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Relay silence before reconnecting.
    pub relay_timeout: Duration,
}

/// Why a connected session ended.
#[derive(Debug)]
enum SessionEnd {
    Cancelled,
    RelayRestarting,
    Lost(String),
}

/// Runs the link until `cancel` fires; operation streams are served from `workspaces`.
pub async fn run(config: LinkConfig, workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    let mut backoff = Backoff::new(Policy::AGENT);
    loop {
        if cancel.is_cancelled() {
            return;
        }
        let attempt = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = connect(&config) => r,
        };
        let delay = match attempt {
            Ok(session) => {
                let since = Instant::now();
                tracing::info!(host = %config.host, relay = %config.relay, conn = %session.conn_id, "connected to relay");
                let end = serve(&config, session, &workspaces, &cancel).await;
                backoff.connection_lasted(since.elapsed());
                match end {
                    SessionEnd::Cancelled => return,
                    SessionEnd::RelayRestarting => {
                        backoff.reset();
                        let d = jitter(RESTART_SPREAD, random_u64());
                        tracing::info!(delay = ?d, "relay is restarting; reconnecting");
                        // Consume the "immediate" first attempt: the spread replaces it.
                        let _ = backoff.next_delay(0);
                        d
                    }
                    SessionEnd::Lost(reason) => {
                        let d = backoff.next_delay(random_u64());
                        tracing::warn!(%reason, delay = ?d, "relay connection lost; reconnecting");
                        d
                    }
                }
            }
            Err(e) => {
                let d = backoff.next_delay(random_u64());
                if e.is_fatal() {
                    tracing::error!(error = %e, delay = ?d, attempt = backoff.attempt(), "relay refused this host; re-enroll it (cm-relay host add, then cm-agent enroll) if this persists");
                } else {
                    tracing::warn!(error = %e, delay = ?d, attempt = backoff.attempt(), "cannot reach relay; retrying");
                }
                d
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

async fn connect(config: &LinkConfig) -> Result<Session, LinkError> {
    let opts = DialOptions {
        idle_timeout: config.relay_timeout,
    };
    let conn = client::dial(&config.relay, &config.pin, &opts).await?;
    client::authenticate(
        conn,
        PeerKind::Agent,
        &CredId(config.host.0.clone()),
        &config.key,
    )
    .await
}

fn end_of(conn: &quinn::Connection, fallback: String) -> SessionEnd {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if CloseReason::from_code(c.error_code.into_inner()) == CloseReason::Restarting =>
        {
            SessionEnd::RelayRestarting
        }
        Some(e) => SessionEnd::Lost(e.to_string()),
        None => SessionEnd::Lost(fallback),
    }
}

async fn serve(
    config: &LinkConfig,
    session: Session,
    workspaces: &Arc<Workspaces>,
    cancel: &CancellationToken,
) -> SessionEnd {
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
    let end = serve_connection(config, &conn, control_send, control_recv, &streams, cancel).await;
    if let Some(quinn::ConnectionError::ApplicationClosed(c)) = conn.close_reason()
        && CloseReason::from_code(c.error_code.into_inner()) == CloseReason::Revoked
    {
        // The kill switch for this host: nothing leased may keep running.
        tracing::warn!("the relay revoked this host; stopping every OpenCode");
        workspaces.on_host_killed().await;
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
    config: &LinkConfig,
    conn: &quinn::Connection,
    mut control_send: quinn::SendStream,
    mut control_recv: cm_client::framed::FramedRecv,
    streams: &Streams,
    cancel: &CancellationToken,
) -> SessionEnd {
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ack = Instant::now();
    let mut seq: u64 = 0;
    // Workspaces added or removed: a heartbeat at once, so the host list shows the names.
    let mut changes = streams.workspaces.changes();
    // Revocation notices are merged into one pending set that one worker hands to the
    // supervisors (no task per notice, and a flood of notices cannot queue without bound:
    // the set holds each credential once).
    let revocations = Arc::new(Revocations::default());
    let (workspaces, cancel_revocations, pending) = (
        Arc::clone(&streams.workspaces),
        streams.cancel.clone(),
        Arc::clone(&revocations),
    );
    streams.tracker.spawn(async move {
        tokio::select! {
            () = cancel_revocations.cancelled() => {}
            () = pending.serve(&workspaces) => {}
        }
    });
    // Sub-agent sessions: the relay records their parent's owner as theirs.
    let (links_tx, mut links) = tokio::sync::mpsc::channel(256);
    let (workspaces, cancel_links) = (Arc::clone(&streams.workspaces), streams.cancel.clone());
    streams.tracker.spawn(async move {
        tokio::select! {
            () = cancel_links.cancelled() => {}
            () = crate::session_links::forward(workspaces, links_tx) => {}
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
            Some(link) = links.recv() => {
                if let Err(e) = send_frame(&mut control_send, &link, MAX_FRAME_LEN).await {
                    return end_of(conn, e.to_string());
                }
            }
            msg = control_recv.next::<Control>() => match msg {
                Ok(Some(Control::HeartbeatAck { .. })) => last_ack = Instant::now(),
                // Launch leases: the supervisors stop OpenCode started by a revoked credential.
                Ok(Some(Control::CredsRevoked { cred_ids })) => revocations.add(cred_ids),
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

/// Revoked credentials the relay reported and the supervisors have not been told about yet.
#[derive(Debug, Default)]
struct Revocations {
    pending: std::sync::Mutex<std::collections::HashSet<CredId>>,
    added: tokio::sync::Notify,
}

impl Revocations {
    fn add(&self, creds: Vec<CredId>) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(creds);
        self.added.notify_one();
    }

    /// Hands pending revocations to the workspaces' supervisors, one batch at a time.
    async fn serve(&self, workspaces: &Workspaces) {
        loop {
            self.added.notified().await;
            let creds = std::mem::take(
                &mut *self
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if !creds.is_empty() {
                workspaces.on_revoked(&creds).await;
            }
        }
    }
}
