//! The relay connection task: connect, watch the host list, ping the control stream for RTT,
//! make the agent calls and workspace watches the app asks for (each on its own stream and
//! task, all cancelled with the connection), and reconnect forever with capped, jittered
//! backoff until the credential is refused. It only reports [`NetEvent`]s; what to show is the
//! app's business.

mod admin_after;
mod admin_seal;
mod calls;
mod forwards;
mod handover;
mod open_streams;
mod streams;
mod watches;

use watches::{WatchJob, watch_task};

use crate::call::{
    Call, CallError, ForwardNews, ForwardRequest, Request, Scope, StreamRequest, WatchKey,
};
use crate::connect;
use crate::e2e_channels::{self, HostStreams};
use crate::event::NetEvent;
use crate::profile::Profile;
use cm_client::backoff::{Backoff, Policy};
use cm_client::framed::send_frame;
use cm_client::time::random_u64;
use cm_client::{self as client, LinkError, Session};
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::Key;
use proto::header::{Op, StreamHeader};
use proto::ids::ReqId;
use proto::message::{CloseReason, Control};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the control stream is pinged (RTT in the status bar; also notices a dead relay).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// A ping unanswered for this long means the connection is dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the task to close the connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long a call may go unanswered before the app is told it failed (the agent or OpenCode
/// is stuck); a prompt is then resent with the same idempotency key, so nothing runs twice.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Request ids of watch streams start here, apart from the app's request ids (logs only).
const WATCH_REQ_BASE: u64 = 1 << 40;
/// What a call made while there is no connection answers.
const NOT_CONNECTED: &str = "not connected to the relay";

/// Commands to the connection task.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    /// Drop the connection (or the backoff wait) and connect now.
    Reconnect,
    /// Make an agent call.
    Request(Request),
    /// Open a streaming call.
    Stream(StreamRequest),
    /// Close a stream (or stop a forward) before its end.
    CloseStream(u64),
    /// Start a port forward.
    Forward(ForwardRequest),
    /// Open (or reopen) a workspace watch.
    Watch {
        watch: WatchKey,
        after_seq: Option<u64>,
    },
}

/// Handle to the running connection task.
#[derive(Debug)]
pub struct Net {
    commands: mpsc::UnboundedSender<Command>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Net {
    /// Starts the task; it reports on `events` until cancelled or refused.
    pub fn spawn(profile: Profile, key: Key, events: mpsc::Sender<NetEvent>) -> Self {
        // Unbounded: commands come from key presses and screen changes, a handful at a time,
        // and the app must never block on them.
        let (commands, command_rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(profile, key, events, command_rx, cancel.clone()));
        Self {
            commands,
            cancel,
            task,
        }
    }

    /// Asks for an immediate reconnect (ignored if the task ended).
    pub fn reconnect(&self) {
        let _ = self.commands.send(Command::Reconnect);
    }

    /// Makes an agent call; the answer comes back as [`NetEvent::Reply`].
    pub fn request(&self, request: Request) {
        let _ = self.commands.send(Command::Request(request));
    }

    /// Opens a streaming call; its frames come back as [`NetEvent::StreamItem`]s.
    pub fn stream(&self, request: StreamRequest) {
        let _ = self.commands.send(Command::Stream(request));
    }

    /// Closes a stream before its end (the host stops what it runs).
    pub fn close_stream(&self, id: u64) {
        let _ = self.commands.send(Command::CloseStream(id));
    }

    /// Starts a port forward; its news comes back as [`NetEvent::Forward`]s.
    pub fn forward(&self, request: ForwardRequest) {
        let _ = self.commands.send(Command::Forward(request));
    }

    /// Opens a workspace watch; its events come back as [`NetEvent::WatchFrame`]s.
    pub fn watch(&self, watch: WatchKey, after_seq: Option<u64>) {
        let _ = self.commands.send(Command::Watch { watch, after_seq });
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
    /// Refused for good (`revoked`: the relay said the login was revoked).
    Fatal { message: String, revoked: bool },
    /// QUIC answers again: new work goes to this authenticated QUIC session; the TCP
    /// connection's open calls, streams and forwards finish first (see [`handover`]).
    MovingToQuic(Box<Session>),
}

/// Answers a command that arrived while there is no connection: calls fail (the app asks
/// again once connected), watches end.
async fn refuse(command: Command, events: &mpsc::Sender<NetEvent>) {
    let event = match command {
        Command::Reconnect | Command::CloseStream(_) => return,
        Command::Stream(request) => NetEvent::StreamEnded {
            id: request.id,
            error: Some(CallError::transport(NOT_CONNECTED)),
        },
        Command::Request(request) => NetEvent::Reply {
            request,
            result: Err(CallError::transport(NOT_CONNECTED)),
        },
        Command::Forward(request) => NetEvent::Forward {
            id: request.id,
            news: ForwardNews::Ended(CallError::transport(NOT_CONNECTED)),
        },
        Command::Watch { watch, .. } => NetEvent::WatchEnded {
            watch,
            reason: NOT_CONNECTED.into(),
        },
    };
    let _ = events.send(event).await;
}

async fn run(
    profile: Profile,
    key: Key,
    events: mpsc::Sender<NetEvent>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(Policy::OPERATOR);
    // Where the next dial starts in the profile's relay list: after a lost connection, the
    // address after the one that was lost, so the reconnect goes to another relay first.
    let mut start = 0;
    // A QUIC session the TCP connection handed over to (its index and address stay).
    let mut handed_over: Option<connect::Connected> = None;
    // Outlives each connection: streams left on a connection handed over to QUIC stay closable.
    let mut open_streams = open_streams::OpenStreams::default();
    loop {
        let moving = handed_over.is_some();
        let connected = match handed_over.take() {
            Some(next) => Ok(next),
            None => tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                r = connect::connect_from(&profile, &key, start) => r,
            },
        };
        let end = match connected {
            Ok(connect::Connected {
                index,
                addr,
                session,
                transport,
            }) => {
                tracing::info!(relay = %addr, %transport, "connected to the relay");
                start = index + 1;
                // A reconnect asked for while connecting is satisfied by this connection; calls
                // queued meanwhile were meant for the old one (the app re-asks once connected).
                // After a hand-over nothing was lost: they go to the new connection.
                while !moving && let Ok(command) = commands.try_recv() {
                    refuse(command, &events).await;
                }
                let up_since = Instant::now();
                let conn_id = session.conn_id.clone();
                let end = if events.send(NetEvent::Connected { conn_id }).await.is_err()
                    || events.send(NetEvent::Transport(transport)).await.is_err()
                {
                    End::Cancelled
                } else {
                    let quic_back = connect::quic_is_back(&profile, &key, addr, transport);
                    serve(
                        session,
                        &profile,
                        &events,
                        &mut commands,
                        &mut open_streams,
                        &cancel,
                        quic_back,
                    )
                    .await
                };
                let end = match end {
                    End::MovingToQuic(session) => {
                        // Back on QUIC: the same relay, already authenticated (watches resume).
                        tracing::info!(relay = %addr, from = %transport, to = "QUIC", "QUIC answers again; moving the connection from TCP to QUIC (open streams finish on TCP)");
                        handed_over = Some(connect::Connected {
                            index,
                            addr,
                            session: *session,
                            transport: cm_client::transport::Transport::Quic,
                        });
                        End::Requested
                    }
                    other => other,
                };
                backoff.connection_lasted(up_since.elapsed());
                end
            }
            Err(e) if e.is_fatal() => End::Fatal {
                message: fatal_message(&e),
                revoked: false,
            },
            Err(e) => End::Lost(e.to_string()),
        };
        let reason = match end {
            End::Cancelled => return,
            End::Fatal { message, revoked } => {
                tracing::error!(%message, "giving up on the relay");
                let _ = events.send(NetEvent::Fatal { message, revoked }).await;
                return;
            }
            End::Requested | End::MovingToQuic(_) => {
                backoff.reset();
                continue;
            }
            End::Lost(reason) => reason,
        };
        let retry_in = backoff.next_delay(random_u64());
        tracing::warn!(%reason, ?retry_in, "relay connection lost; reconnecting");
        let event = NetEvent::Disconnected { reason, retry_in };
        if events.send(event).await.is_err() {
            return;
        }
        let wait = tokio::time::sleep(retry_in);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                cmd = commands.recv() => match cmd {
                    Some(Command::Reconnect) => {
                        backoff.reset();
                        break;
                    }
                    Some(other) => refuse(other, &events).await,
                    None => return,
                },
                () = &mut wait => break,
            }
        }
    }
}

/// What to tell the user when the relay refuses the credential (kept under 78 columns so it
/// fits the banner of an 80-column terminal on one line).
pub const REFUSED: &str =
    "the relay refused this login (expired or revoked); run `cm-tui login` again";

/// What to tell the user when the relay revokes the login of a live connection.
pub const REVOKED: &str = "the relay revoked this login; run `cm-tui login` to get a new one";

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
                CloseReason::Revoked | CloseReason::AuthFailed => End::Fatal {
                    message: REVOKED.into(),
                    revoked: true,
                },
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
    profile: &Profile,
    events: &mpsc::Sender<NetEvent>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    open_streams: &mut open_streams::OpenStreams,
    cancel: &CancellationToken,
    quic_back: impl std::future::Future<Output = Session>,
) -> End {
    let conn = session.conn.clone();
    let news = events.clone();
    let on_mode = move |host: &proto::ids::HostId, mode| {
        // Never block a stream on the app: with its queue full the marker waits for the
        // next connection.
        let _ = news.try_send(NetEvent::HostMode {
            host: host.clone(),
            mode,
        });
    };
    let hosts = match e2e_channels::for_profile(session.conn.clone(), profile).await {
        Ok(hosts) => Arc::new(hosts.with_on_mode(Box::new(on_mode))),
        Err(e) => {
            let message = e.to_string();
            return End::Fatal {
                message,
                revoked: false,
            };
        }
    };
    // Calls, watches and the keeper of this connection end with it, also when this future is
    // dropped; after a hand-over to QUIC, once the open calls, streams and forwards are done.
    let streams = cancel.child_token();
    let end_with_the_connection = streams.clone().drop_guard();
    tokio::spawn(crate::revocation_keeper::keep_fresh(
        Arc::clone(&hosts),
        profile.clone(),
        streams.clone(),
    ));
    let work = handover::Work::new(streams.clone());
    let cx = Cx {
        hosts,
        profile: profile.clone(),
        events: events.clone(),
    };
    let end = serve_streams(
        session,
        &cx,
        commands,
        open_streams,
        cancel,
        &work,
        quic_back,
    )
    .await;
    if matches!(end, End::MovingToQuic(_)) {
        tokio::spawn(work.finish(conn, end_with_the_connection.disarm()));
    } else {
        streams.cancel();
    }
    end
}

async fn serve_streams(
    session: Session,
    cx: &Cx,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    open_streams: &mut open_streams::OpenStreams,
    cancel: &CancellationToken,
    work: &handover::Work,
    quic_back: impl std::future::Future<Output = Session>,
) -> End {
    let Cx { hosts, events, .. } = cx;
    let streams = &work.cancel;
    tokio::pin!(quic_back);
    let Session {
        conn,
        mut control_send,
        mut control_recv,
        ..
    } = session;
    let mut watch = match client::HostWatch::open(&conn, ReqId(1)).await {
        Ok(watch) => watch,
        Err(e) => return end_of(&conn, e.to_string()),
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    // The ping in flight: its seq and when it was sent. One at a time keeps RTT honest.
    let mut in_flight: Option<(u64, Instant)> = None;
    let mut watches: HashMap<WatchKey, CancellationToken> = HashMap::new();
    let mut watch_req = WATCH_REQ_BASE;
    let end = loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break End::Cancelled,
            next = &mut quic_back => {
                // Watches reopen on the new connection from their last seq; the rest finishes.
                for token in watches.values() {
                    token.cancel();
                }
                break End::MovingToQuic(Box::new(next));
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Reconnect) => break End::Requested,
                Some(Command::Request(request)) => {
                    work.spawn(perform(cx.clone(), request, streams.clone()));
                }
                Some(Command::Stream(request)) => {
                    let token = open_streams.open(request.id, streams);
                    work.spawn(streams::run(hosts.clone(), request, events.clone(), token));
                }
                Some(Command::Forward(request)) => {
                    let token = open_streams.open(request.id, streams);
                    work.spawn(forwards::run(hosts.clone(), request, events.clone(), token));
                }
                Some(Command::CloseStream(id)) => {
                    if !open_streams.close(id) {
                        tracing::debug!(id, "closing a stream that already ended");
                    }
                }
                Some(Command::Watch { watch, after_seq }) => {
                    // A newer watch of the same workspace replaces the older one.
                    let token = streams.child_token();
                    if let Some(old) = watches.insert(watch.clone(), token.clone()) {
                        old.cancel();
                    }
                    watch_req += 1;
                    let job = WatchJob { watch, after_seq, req_id: ReqId(watch_req) };
                    tokio::spawn(watch_task(hosts.clone(), job, events.clone(), token));
                }
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
                    break End::Fatal { message: REVOKED.into(), revoked: true };
                }
                Ok(Some(other)) => tracing::debug!(?other, "ignoring control message"),
                Ok(None) => break end_of(&conn, "the relay closed the control stream".into()),
                Err(e) => break end_of(&conn, e.to_string()),
            },
            update = watch.next() => match update {
                Ok(Some(list)) => {
                    for (host, role) in &list.roles {
                        if events.send(NetEvent::Role { host: host.clone(), role: *role }).await.is_err() {
                            break;
                        }
                    }
                    if events.send(NetEvent::Hosts(list)).await.is_err() {
                        break End::Cancelled;
                    }
                }
                Err(LinkError::Refused(e)) => break End::Lost(format!("the relay refused the host list: {e}")),
                Ok(None) => break end_of(&conn, "the relay ended the host watch".into()),
                Err(e) => break end_of(&conn, e.to_string()),
            },
        }
    };
    let reason: &[u8] = match end {
        // Closed by `handover::Work::finish` once its open streams are done.
        End::MovingToQuic(_) => return end,
        End::Requested => b"reconnecting",
        _ => b"bye",
    };
    conn.close(CloseReason::Normal.code().into(), reason);
    end
}

/// The stream header for a call to `scope`.
fn header(op: Op, req_id: ReqId, scope: &Scope) -> StreamHeader {
    let mut h = StreamHeader::new(op, req_id);
    h.host = Some(scope.host.clone());
    h.workspace.clone_from(&scope.workspace);
    h.session.clone_from(&scope.session);
    h
}

/// One connection's context for its calls.
#[derive(Clone)]
struct Cx {
    hosts: Arc<HostStreams>,
    profile: Profile,
    events: mpsc::Sender<NetEvent>,
}

/// Performs one call and reports its answer (or that the connection ended first).
async fn perform(cx: Cx, request: Request, cancel: CancellationToken) {
    let Cx {
        hosts,
        profile,
        events,
    } = cx;
    let result = tokio::select! {
        () = cancel.cancelled() => Err(CallError::transport("the relay connection was lost")),
        r = tokio::time::timeout(CALL_TIMEOUT, calls::perform_call(&hosts, &request)) => r.unwrap_or_else(|_| {
            Err(CallError::transport(format!(
                "no answer from the host within {}s",
                CALL_TIMEOUT.as_secs()
            )))
        }),
    };
    let result = match (result, &request.call) {
        (Ok(response), Call::Admin(admin)) => {
            match admin_after::seal_admin(&hosts, profile.clone(), admin.clone(), response).await {
                Ok(response) => {
                    Ok(admin_after::revoke_after(hosts, profile, admin, response).await)
                }
                Err(e) => Err(e),
            }
        }
        (result, _) => result,
    };
    let _ = events.send(NetEvent::Reply { request, result }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_tell_what_to_run() {
        let e = LinkError::Refused(proto::wire_error::WireError::auth_failed());
        assert!(e.is_fatal());
        assert!(fatal_message(&e).contains("cm-tui login"));
    }
}
