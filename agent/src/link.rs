//! The agent's link to the relay: dial, authenticate, heartbeat, and reconnect forever with
//! capped, jittered backoff. Only cancellation ends it.

use crate::backoff::{Backoff, RESTART_SPREAD, STABLE_AFTER, jitter};
use crate::status;
use cm_relay::client::{self, DialOptions, LinkError, Session};
use cm_relay::framed::send_frame;
use cm_relay::time::random_u64;
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::{Key, PeerKind};
use proto::ids::{CredId, HostId};
use proto::message::{CloseReason, Control};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
    /// Workspace names, reported in heartbeats.
    pub workspaces: Vec<String>,
}

/// Why a connected session ended.
#[derive(Debug)]
enum SessionEnd {
    Cancelled,
    RelayRestarting,
    Lost(String),
}

/// Runs the link until `cancel` fires.
pub async fn run(config: LinkConfig, cancel: CancellationToken) {
    let mut backoff = Backoff::new();
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
                let end = serve(&config, session, &cancel).await;
                if since.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
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

async fn serve(config: &LinkConfig, session: Session, cancel: &CancellationToken) -> SessionEnd {
    let Session {
        conn,
        mut control_send,
        mut control_recv,
        ..
    } = session;
    let mut tick = tokio::time::interval(config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ack = Instant::now();
    let mut seq: u64 = 0;
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
                let hb = Control::Heartbeat { seq, status: status::collect(config.workspaces.clone()) };
                if let Err(e) = send_frame(&mut control_send, &hb, MAX_FRAME_LEN).await {
                    return end_of(&conn, e.to_string());
                }
            }
            msg = control_recv.next::<Control>() => match msg {
                Ok(Some(Control::HeartbeatAck { .. })) => last_ack = Instant::now(),
                Ok(Some(other)) => tracing::debug!(?other, "ignoring control message"),
                Ok(None) => return end_of(&conn, "relay closed the control stream".into()),
                Err(e) => return end_of(&conn, e.to_string()),
            },
        }
    }
}
