//! The relay connection task: connect, watch the host list, ping the control stream for RTT,
//! and reconnect forever with capped, jittered backoff until the credential is refused. It only
//! reports [`NetEvent`]s; what to show is the app's business.

use crate::connect;
use crate::event::NetEvent;
use crate::profile::Profile;
use cm_relay::client::{self, LinkError, Session};
use cm_relay::framed::send_frame;
use cm_relay::time::random_u64;
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::Key;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::message::{CloseReason, Control, HostList, Reply};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First backoff step; attempt `n` waits up to `BACKOFF_BASE * 2^n`.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Cap on a single wait (design §7: capped backoff, forever).
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A connection that stayed up this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often the control stream is pinged (RTT in the status bar; also notices a dead relay).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// A ping unanswered for this long means the connection is dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the task to close the connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Queue depth for commands to the task (only "reconnect" exists; a few are plenty).
const COMMAND_QUEUE: usize = 4;

/// The wait before reconnect attempt `attempt` (0-based): exponential from [`BACKOFF_BASE`],
/// capped at [`BACKOFF_CAP`], with "equal jitter" (a uniform draw in the upper half), so the
/// wait is never zero yet a fleet of operators does not retry in lockstep. `random` is a
/// uniform u64.
pub fn backoff_delay(attempt: u32, random: u64) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_CAP);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let half = ceiling_ms / 2;
    Duration::from_millis(half + random % (ceiling_ms - half + 1))
}

/// Commands to the connection task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Drop the connection (or the backoff wait) and connect now.
    Reconnect,
}

/// Handle to the running connection task.
#[derive(Debug)]
pub struct Net {
    commands: mpsc::Sender<Command>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Net {
    /// Starts the task; it reports on `events` until cancelled or refused.
    pub fn spawn(profile: Profile, key: Key, events: mpsc::Sender<NetEvent>) -> Self {
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(profile, key, events, command_rx, cancel.clone()));
        Self {
            commands,
            cancel,
            task,
        }
    }

    /// Asks for an immediate reconnect (ignored if one is already queued or the task ended).
    pub fn reconnect(&self) {
        let _ = self.commands.try_send(Command::Reconnect);
    }

    /// Closes the connection and waits briefly for the task to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// How one connection ended.
#[derive(Debug)]
enum End {
    /// Shut down, or the app went away.
    Cancelled,
    /// The user asked for a fresh connection.
    Requested,
    /// Lost; retry after backoff.
    Lost(String),
    /// Refused for good.
    Fatal(String),
}

async fn run(
    profile: Profile,
    key: Key,
    events: mpsc::Sender<NetEvent>,
    mut commands: mpsc::Receiver<Command>,
    cancel: CancellationToken,
) {
    let mut attempt: u32 = 0;
    loop {
        let connected = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            r = connect::connect(&profile, &key) => r,
        };
        let end = match connected {
            Ok(session) => {
                // A reconnect asked for while connecting is satisfied by this connection.
                while commands.try_recv().is_ok() {}
                let up_since = Instant::now();
                let conn_id = session.conn_id.clone();
                let end = if events.send(NetEvent::Connected { conn_id }).await.is_err() {
                    End::Cancelled
                } else {
                    serve(session, &events, &mut commands, &cancel).await
                };
                if up_since.elapsed() >= STABLE_AFTER {
                    attempt = 0;
                }
                end
            }
            Err(e) if e.is_fatal() => End::Fatal(fatal_message(&e)),
            Err(e) => End::Lost(e.to_string()),
        };
        let reason = match end {
            End::Cancelled => return,
            End::Fatal(message) => {
                tracing::error!(%message, "giving up on the relay");
                let _ = events.send(NetEvent::Fatal { message }).await;
                return;
            }
            End::Requested => {
                attempt = 0;
                continue;
            }
            End::Lost(reason) => reason,
        };
        let retry_in = backoff_delay(attempt, random_u64());
        attempt = attempt.saturating_add(1);
        tracing::warn!(%reason, ?retry_in, "relay connection lost; reconnecting");
        let event = NetEvent::Disconnected { reason, retry_in };
        if events.send(event).await.is_err() {
            return;
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            cmd = commands.recv() => match cmd {
                Some(Command::Reconnect) => attempt = 0,
                None => return,
            },
            () = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// What to tell the user when the relay refuses the credential (kept under 78 columns so it
/// fits the banner of an 80-column terminal on one line).
pub const REFUSED: &str =
    "the relay refused this login (expired or revoked); run `cm-tui login` again";

/// The message for a refusal that retrying cannot fix.
fn fatal_message(e: &LinkError) -> String {
    match e {
        LinkError::Refused(_) => REFUSED.into(),
        other => format!("{other}; then run `cm-tui login` again"),
    }
}

/// Why the connection ended, from its close code when the relay gave one.
fn end_of(conn: &quinn::Connection, fallback: String) -> End {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(c)) => {
            match CloseReason::from_code(c.error_code.into_inner()) {
                CloseReason::Revoked | CloseReason::AuthFailed => End::Fatal(
                    "the relay revoked this login; run `cm-tui login` to get a new one".into(),
                ),
                CloseReason::Restarting => End::Lost("the relay is restarting".into()),
                _ => End::Lost(format!("relay connection closed: {c}")),
            }
        }
        Some(e) => End::Lost(format!("relay connection lost: {e}")),
        None => End::Lost(fallback),
    }
}

/// Serves one authenticated connection until it ends.
async fn serve(
    session: Session,
    events: &mpsc::Sender<NetEvent>,
    commands: &mut mpsc::Receiver<Command>,
    cancel: &CancellationToken,
) -> End {
    let Session {
        conn,
        mut control_send,
        mut control_recv,
        ..
    } = session;
    let header = StreamHeader::new(Op::WatchHosts, ReqId(1));
    // The send half stays open for the life of the watch; dropping it would end the request.
    let (_watch_send, mut watch) = match client::subscribe(&conn, &header).await {
        Ok(pair) => pair,
        Err(e) => return end_of(&conn, e.to_string()),
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    // The ping in flight: its seq and when it was sent. One at a time keeps RTT honest.
    let mut in_flight: Option<(u64, Instant)> = None;
    let end = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break End::Cancelled,
            cmd = commands.recv() => match cmd {
                Some(Command::Reconnect) => break End::Requested,
                None => break End::Cancelled,
            },
            _ = ping.tick() => {
                if let Some((_, sent)) = in_flight {
                    if sent.elapsed() >= PING_TIMEOUT {
                        break End::Lost(format!("the relay did not answer pings for {}s", PING_TIMEOUT.as_secs()));
                    }
                    continue;
                }
                seq += 1;
                if let Err(e) = send_frame(&mut control_send, &Control::Ping { seq }, MAX_FRAME_LEN).await {
                    break end_of(&conn, e.to_string());
                }
                in_flight = Some((seq, Instant::now()));
            }
            msg = control_recv.next::<Control>() => match msg {
                Ok(Some(Control::Pong { seq: answered })) => {
                    // A late pong for an older ping (after a timeout) would give a wrong RTT.
                    if let Some((_, sent)) = in_flight.filter(|(s, _)| *s == answered) {
                        in_flight = None;
                        if events.send(NetEvent::Pong { rtt: sent.elapsed() }).await.is_err() {
                            break End::Cancelled;
                        }
                    }
                }
                Ok(Some(Control::Closing { reason: CloseReason::Revoked | CloseReason::AuthFailed })) => {
                    break End::Fatal("the relay revoked this login; run `cm-tui login` to get a new one".into());
                }
                Ok(Some(other)) => tracing::debug!(?other, "ignoring control message"),
                Ok(None) => break end_of(&conn, "the relay closed the control stream".into()),
                Err(e) => break end_of(&conn, e.to_string()),
            },
            frame = watch.next::<Reply<HostList>>() => match frame {
                Ok(Some(Reply::Ok(list))) => {
                    if events.send(NetEvent::Hosts(list)).await.is_err() {
                        break End::Cancelled;
                    }
                }
                Ok(Some(Reply::Error(e))) => break End::Lost(format!("the relay refused the host list: {e}")),
                Ok(None) => break end_of(&conn, "the relay ended the host watch".into()),
                Err(e) => break end_of(&conn, e.to_string()),
            },
        }
    };
    let reason: &[u8] = match end {
        End::Requested => b"reconnecting",
        _ => b"bye",
    };
    conn.close(CloseReason::Normal.code().into(), reason);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_never_reaches_zero() {
        let max: Vec<u128> = (0..10)
            .map(|n| backoff_delay(n, u64::MAX).as_millis())
            .collect();
        assert!(max.windows(2).all(|w| w[0] <= w[1]), "{max:?}");
        assert_eq!(backoff_delay(0, 0), Duration::from_millis(500));
        assert_eq!(backoff_delay(3, 0), Duration::from_secs(4));
        for n in [5, 6, 20, u32::MAX] {
            for r in [0, 1, 12_345, u64::MAX] {
                let d = backoff_delay(n, r);
                assert!(d <= BACKOFF_CAP, "{n} {r} {d:?}");
                assert!(d >= BACKOFF_CAP / 2, "{n} {r} {d:?}");
            }
        }
    }

    #[test]
    fn jitter_spreads_within_the_upper_half() {
        let a = backoff_delay(2, 0);
        let b = backoff_delay(2, 1_999);
        let c = backoff_delay(2, 2_000);
        assert_eq!(a, Duration::from_millis(2_000));
        assert_eq!(b, Duration::from_millis(3_999));
        assert_eq!(c, Duration::from_millis(4_000));
    }

    #[test]
    fn refusals_tell_what_to_run() {
        let e = LinkError::Refused(proto::wire_error::WireError::auth_failed());
        assert!(e.is_fatal());
        assert!(fatal_message(&e).contains("cm-tui login"));
    }
}
