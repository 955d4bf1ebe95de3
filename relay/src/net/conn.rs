//! One connection from handshake to close: read the client hello, authenticate or log in, then
//! serve the agent (heartbeats, presence) or the operator (pings, request streams).

use super::error::HelloError;
use super::principal::{Principal, close};
use super::refusal_log::{Kind, Source, Summary};
use super::{Shared, limiter};
use crate::audit_event::Audit;
use crate::authz;
use crate::framed::{FramedRecv, StreamError, send_frame};
use crate::store::FoundCredential;
use crate::time::{now_ms, random_u64, random32};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{
    self, ClientHello, EXPORTER_LABEL, EXPORTER_LEN, H1, HandshakeError, PeerKind, ServerHello,
};
use proto::ids::{ConnId, HostId, UserId};
use proto::message::{CloseReason, Control};
use proto::text::{printable_id, sanitize_capped};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long to wait for a refused client to read its error before closing the connection.
const ERROR_LINGER: Duration = Duration::from_secs(2);

/// Sends a final error on the hello stream, lets the client read it, then closes.
async fn refuse(
    conn: &quinn::Connection,
    mut send: quinn::SendStream,
    error: HelloError,
    reason: CloseReason,
) {
    let hello = ServerHello::Error(error.wire());
    let _ = send_frame(&mut send, &hello, MAX_HEADER_LEN).await;
    let _ = send.finish();
    // The client closes as soon as it has read the error; bound the wait either way.
    let _ = tokio::time::timeout(ERROR_LINGER, conn.closed()).await;
    close(conn, reason, "refused");
}

/// Handles one incoming connection to the end.
pub(crate) async fn handle(shared: Arc<Shared>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "connection attempt failed");
            return;
        }
    };
    let cancel = shared.cancel.clone();
    tokio::select! {
        biased;
        () = cancel.cancelled() => close(&conn, CloseReason::Restarting, "relay restarting"),
        () = serve(&shared, &conn, remote) => {}
    }
}

async fn serve(shared: &Arc<Shared>, conn: &quinn::Connection, remote: SocketAddr) {
    let timeout = shared.config.handshake_timeout;
    let (send, recv) = match tokio::time::timeout(timeout, conn.accept_bi()).await {
        Ok(Ok(streams)) => streams,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "closed before the handshake");
            return;
        }
        Err(_) => {
            refused_unauthenticated(shared, remote, "handshake timeout").await;
            close(conn, CloseReason::ProtocolError, "handshake timeout");
            return;
        }
    };
    let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
    let hello = match tokio::time::timeout(timeout, recv.expect::<ClientHello>()).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            // The error quotes the peer's bytes (an unknown `type`, say): cut and sanitized.
            let reason = sanitize_capped(&without_quoted_variant(&e.to_string()), MAX_QUOTED_ERROR);
            refused_unauthenticated(shared, remote, &format!("bad client hello: {reason}")).await;
            refuse(
                conn,
                send,
                HelloError::BadFrame(reason),
                CloseReason::ProtocolError,
            )
            .await;
            return;
        }
        Err(_) => {
            refused_unauthenticated(shared, remote, "handshake timeout").await;
            close(conn, CloseReason::ProtocolError, "handshake timeout");
            return;
        }
    };
    let addr_key = limiter::addr_key(remote.ip());
    let blocked = {
        let mut limiter = shared.limiter.lock();
        match hello {
            // A login is costly (argon2): its attempt is counted before the work.
            ClientHello::Login(_) => limiter.try_reserve(addr_key, now_ms()).err(),
            ClientHello::H1(_) | ClientHello::Time => limiter.blocked_for(&addr_key, now_ms()),
        }
    };
    if let Some(wait_ms) = blocked {
        tracing::debug!(%remote, wait_ms, "address is rate-limited after repeated failures");
        let error = match hello {
            ClientHello::Login(_) => HelloError::LoginsLimited { wait_ms },
            ClientHello::H1(_) | ClientHello::Time => HelloError::AuthFailed,
        };
        refuse(conn, send, error, CloseReason::AuthFailed).await;
        return;
    }
    match hello {
        ClientHello::Login(req) => {
            super::login::handle(shared, conn, remote, addr_key, req, send).await;
        }
        ClientHello::Time => {
            let mut send = send;
            let _ = send_frame(
                &mut send,
                &ServerHello::Time { ts_ms: now_ms() },
                MAX_HEADER_LEN,
            )
            .await;
            let _ = send.finish();
            let _ = tokio::time::timeout(ERROR_LINGER, conn.closed()).await;
            close(conn, CloseReason::Normal, "time sent");
        }
        ClientHello::H1(h1) => match authenticate(shared, conn, remote, &h1).await {
            Ok(found) => finish_handshake(shared, conn, remote, &h1, found, send, recv).await,
            // Not an authentication failure: the peer keeps its credential and retries.
            Err(error @ HelloError::StoreUnavailable) => {
                refuse(conn, send, error, CloseReason::Restarting).await;
            }
            Err(error) => refuse(conn, send, error, CloseReason::AuthFailed).await,
        },
    }
}

/// A decoding error with the peer's unknown hello `type` (serde quotes it as
/// ``unknown variant `…`, expected …``) replaced by [`printable_id`]'s placeholder when it is
/// not a plain name.
fn without_quoted_variant(error: &str) -> String {
    const OPEN: &str = "unknown variant `";
    const CLOSE: &str = "`, expected";
    let (Some(start), Some(end)) = (error.find(OPEN), error.rfind(CLOSE)) else {
        return error.to_owned();
    };
    let from = start + OPEN.len();
    match error.get(from..end) {
        Some(variant) if end >= from => format!(
            "{}{}{}",
            &error[..from],
            printable_id(variant),
            &error[end..]
        ),
        _ => error.to_owned(),
    }
}

/// Most characters of a peer-quoting error kept in the audit trail and the reply.
const MAX_QUOTED_ERROR: usize = 200;

/// A refusal before any credential was checked (a malformed hello, a handshake timeout): it
/// counts against the address like a failed login, and is audited (and logged at `warn`) once
/// per address per window, with a count of the rest (see `refusal_log`).
async fn refused_unauthenticated(shared: &Arc<Shared>, remote: SocketAddr, reason: &str) {
    let key = limiter::addr_key(remote.ip());
    let now = now_ms();
    shared.limiter.lock().record_failure(key, now);
    let decision = shared.refusals.lock().note(key, now);
    audit_refusal_summaries(shared, &decision.summaries);
    if decision.write {
        tracing::warn!(%remote, reason, "handshake refused before authentication");
        shared.audit_kept(refusal(remote, "-", reason)).await;
    } else {
        tracing::debug!(%remote, reason, "handshake refused before authentication");
    }
}

/// Writes the counts of refusals that were not audited one by one (without waiting: they
/// acknowledge nothing).
pub(crate) fn audit_refusal_summaries(shared: &Shared, summaries: &[Summary]) {
    for summary in summaries {
        shared.audit_unwaited(Audit::HandshakeRefusals {
            from: match summary.source {
                Source::Addr(ip) => Some(ip),
                Source::Many => None,
            },
            reason: summary.reason(),
        });
    }
}

/// The audit event of a refused handshake (cut to the row bounds when stored).
fn refusal(remote: SocketAddr, who: &str, reason: &str) -> Audit {
    Audit::HandshakeRefused {
        who: who.into(),
        ip: remote.ip(),
        reason: reason.into(),
    }
}

/// Verifies h1. On failure: logs and audits the precise reason, counts the failure for the
/// source address, and returns the one generic error — except while the database is away,
/// when no credential was checked: that is said, and not counted.
async fn authenticate(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    remote: SocketAddr,
    h1: &H1,
) -> Result<FoundCredential, HelloError> {
    match verify(shared, conn, h1).await {
        Ok(found) => Ok(found),
        Err(VerifyFailure::StoreAway(e)) => {
            // Nothing was checked, so nothing is counted against the address; its rows go to
            // the spool, so a flood is written as one row per address per window and a count.
            let cred_id = printable_id(h1.cred_id.as_str());
            let decision = shared.refusals.lock().note_kind(
                limiter::addr_key(remote.ip()),
                Kind::HandshakeStoreAway,
                now_ms(),
            );
            audit_refusal_summaries(shared, &decision.summaries);
            if decision.write {
                tracing::warn!(%remote, %cred_id, error = %e, "handshake refused: the database is away");
                shared
                    .audit_kept(refusal(remote, &cred_id, "the database is away"))
                    .await;
            } else {
                tracing::debug!(%remote, %cred_id, error = %e, "handshake refused: the database is away");
            }
            Err(HelloError::StoreUnavailable)
        }
        Err(reason) => {
            let cred_id = printable_id(h1.cred_id.as_str());
            tracing::warn!(%remote, %cred_id, kind = ?h1.kind, %reason, "handshake refused");
            shared
                .limiter
                .lock()
                .record_failure(limiter::addr_key(remote.ip()), now_ms());
            shared
                .audit_kept(refusal(remote, &cred_id, &reason.to_string()))
                .await;
            Err(HelloError::AuthFailed)
        }
    }
}

/// Why verification failed, for logs; never sent to the peer.
#[derive(Debug, thiserror::Error)]
enum VerifyFailure {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error("credential lookup failed: {0}")]
    Store(String),
    #[error("credential lookup failed, the database is away: {0}")]
    StoreAway(String),
    #[error("TLS exporter unavailable")]
    Exporter,
}

async fn verify(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    h1: &H1,
) -> Result<FoundCredential, VerifyFailure> {
    if h1.cred_id.0.len() > proto::ids::MAX_ID_LEN {
        return Err(HandshakeError::CredentialIdTooLong.into());
    }
    let (kind, cred_id) = (h1.kind, h1.cred_id.clone());
    let found = shared
        .store
        .read(move |s| s.find_credential(kind, &cred_id))
        .await
        .map_err(|e| {
            if e.is_unavailable() {
                VerifyFailure::StoreAway(e.to_string())
            } else {
                VerifyFailure::Store(e.to_string())
            }
        })?;
    let mut exporter = [0u8; EXPORTER_LEN];
    conn.export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .map_err(|_| VerifyFailure::Exporter)?;
    authz::admit_handshake(
        h1,
        found.as_ref(),
        &exporter,
        now_ms(),
        &mut shared.replay.lock(),
    )?;
    // admit_handshake refuses a missing record, so `found` is Some here.
    found.ok_or(VerifyFailure::Handshake(HandshakeError::UnknownCredential))
}

fn new_conn_id() -> ConnId {
    ConnId(format!("k{:016x}", random_u64()))
}

async fn finish_handshake(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    remote: SocketAddr,
    h1: &H1,
    found: FoundCredential,
    mut send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    let nonce = match random32() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "OS random source failed");
            close(conn, CloseReason::ProtocolError, "internal error");
            return;
        }
    };
    let conn_id = new_conn_id();
    if found.record.kind == PeerKind::Operator {
        // Operators open a stream per request; until now only the hello stream was allowed
        // (`tls::HELLO_STREAMS`), and an agent keeps to that one.
        conn.set_max_concurrent_bi_streams(quinn::VarInt::from_u32(
            crate::tls::MAX_CONCURRENT_STREAMS,
        ));
    }
    let h2 = handshake::build_h2(&found.record.key, h1, conn_id.clone(), nonce, now_ms());
    if let Err(e) = send_frame(&mut send, &ServerHello::H2(h2), MAX_HEADER_LEN).await {
        tracing::debug!(%remote, error = %e, "could not send h2");
        return;
    }
    recv.set_max_len(MAX_FRAME_LEN);
    shared.live.lock().insert(
        conn_id.clone(),
        super::sweeper::LiveConn {
            kind: found.record.kind,
            cred_id: h1.cred_id.clone(),
            owner: found.owner.clone(),
            conn: conn.clone(),
            expires_at_ms: found.record.expires_at_ms,
            notify: None,
        },
    );
    let _live = super::sweeper::LiveGuard {
        shared: Arc::clone(shared),
        conn_id: conn_id.clone(),
    };
    match found.record.kind {
        PeerKind::Agent => {
            serve_agent(
                shared,
                conn,
                remote,
                HostId(found.owner),
                conn_id,
                send,
                recv,
            )
            .await;
        }
        PeerKind::Operator => {
            let principal = Principal {
                user: UserId(found.owner),
                cred_id: h1.cred_id.clone(),
                conn_id,
            };
            serve_operator(shared, conn, remote, principal, send, recv).await;
        }
    }
}

/// Removes the host's presence when its connection task ends, on every path.
struct PresenceGuard {
    shared: Arc<Shared>,
    host: HostId,
    conn_id: ConnId,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.shared
            .presence
            .disconnect(&self.host, &self.conn_id, now_ms());
        tracing::info!(host = %self.host, conn = %self.conn_id, "agent offline");
    }
}

async fn serve_agent(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    remote: SocketAddr,
    host: HostId,
    conn_id: ConnId,
    mut send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    if let Some(old) = shared
        .presence
        .connect(&host, conn_id.clone(), conn.clone(), now_ms())
    {
        // New streams come here; the old connection's open ones may finish.
        handover::retire(shared, old);
    }
    let _guard = PresenceGuard {
        shared: Arc::clone(shared),
        host: host.clone(),
        conn_id: conn_id.clone(),
    };
    tracing::info!(%host, conn = %conn_id, %remote, "agent online");
    // The sweeper sends revocation notices for the agent's control stream through this.
    let notices = super::agent_notices::AgentNotices::default();
    if let Some(live) = shared.live.lock().get_mut(&conn_id) {
        live.notify = Some(notices.clone());
    }
    // Revocations made while the agent was away still stop launches bound to them.
    let revoked = super::sweeper::revoked_unexpired(shared).await;
    for n in super::sweeper::notices(&super::sweeper::for_host(&revoked, host.as_str())) {
        if send_frame(&mut send, &n, MAX_FRAME_LEN).await.is_err() {
            return;
        }
    }
    let window = shared.config.heartbeat_timeout;
    // Revocation lists: at once (the first tick), then every REVOCATION_PUSH_EVERY; lists
    // published on this relay come sooner through `notices`.
    let mut revocation_push = tokio::time::interval(super::trust::REVOCATION_PUSH_EVERY);
    revocation_push.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut local_actions = super::local_action::LocalActions::default();
    let mut stale_heartbeats = 0u32;
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            notice = notices.recv() => {
                if send_frame(&mut send, &notice, MAX_FRAME_LEN).await.is_err() {
                    return;
                }
            }
            _ = revocation_push.tick() => {
                let lists = tokio::time::timeout(
                    REVOCATION_READ_TIMEOUT,
                    super::trust::current_revocations(shared),
                )
                .await
                .unwrap_or_default();
                for m in super::trust::revocation_messages(shared, lists) {
                    if send_frame(&mut send, &m, MAX_FRAME_LEN).await.is_err() {
                        return;
                    }
                }
            }
            next = tokio::time::timeout(window, recv.next::<Control>()) => match next {
                Err(_) if handover::replaced(shared, &host, conn) => {
                    // An agent that handed over to a newer connection heartbeats there; this
                    // one finishes its streams (see `handover::retire`).
                    return;
                }
                Err(_) => {
                    tracing::warn!(%host, ?window, "no heartbeat within the window; closing");
                    close(conn, CloseReason::ProtocolError, "heartbeat timeout");
                    return;
                }
                Ok(Ok(Some(Control::Heartbeat { seq, status }))) => {
                    // Bounded on receipt: every operator's host list carries it.
                    if !shared.presence.heartbeat(&host, &conn_id, status.bounded(), now_ms()) {
                        // Still heart-beating here: not a hand-over (one heartbeat may have
                        // been on its way when it began) but two links to one relay.
                        stale_heartbeats += 1;
                        if stale_heartbeats > 1 {
                            close(conn, CloseReason::Replaced, handover::REPLACED);
                            return;
                        }
                    }
                    if send_frame(&mut send, &Control::HeartbeatAck { seq }, MAX_FRAME_LEN).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(Some(Control::SessionParent { session, parent }))) => {
                    inherit_owner(shared, &host, &session, &parent).await;
                }
                Ok(Ok(Some(Control::Attention { attention }))) => {
                    super::notify_ops::attention_soon(shared, &host, attention);
                }
                Ok(Ok(Some(Control::HostKeyClaim { claim }))) => {
                    super::trust::record_host_key_claim(shared, &host, claim).await;
                }
                Ok(Ok(Some(Control::LocalAttach { workspace, at_ms }))) => {
                    super::local_action::attached(shared, &mut local_actions, &host, &workspace, at_ms);
                }
                Ok(Ok(Some(other))) => tracing::debug!(%host, ?other, "ignoring control message"),
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    log_stream_end(&host, &e);
                    return;
                }
            },
        }
    }
}

/// How long a periodic revocation push waits for the store (it is tried again next time).
const REVOCATION_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A sub-agent's session (`session`, started from `parent` on `host`) belongs to the parent's
/// owner. A parent without a recorded owner gives nothing: the child stays unknown, which
/// counts as someone else's session.
async fn inherit_owner(shared: &Arc<Shared>, host: &HostId, session: &str, parent: &str) {
    if !proto::ids::is_valid_name(session) || !proto::ids::is_valid_name(parent) {
        tracing::warn!(%host, "ignoring a session link with a malformed session name");
        return;
    }
    match shared.store.session_owner(host, parent).await {
        Ok(Some(owner)) => {
            if let Err(e) = shared
                .store
                .set_session_owner(host, session, &owner, now_ms())
                .await
            {
                tracing::error!(error = %e, "could not record a sub-agent session's owner");
            }
        }
        Ok(None) => {
            tracing::debug!(%host, session, parent, "sub-agent session of an unowned parent")
        }
        Err(e) => tracing::error!(error = %e, "session owner lookup failed"),
    }
}

fn log_stream_end(who: &dyn std::fmt::Display, e: &StreamError) {
    match e {
        StreamError::Frame(f) => {
            tracing::warn!(peer = %who, error = %f, "protocol error on control stream")
        }
        other => tracing::debug!(peer = %who, error = %other, "control stream ended"),
    }
}

async fn serve_operator(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    remote: SocketAddr,
    principal: Principal,
    mut send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    tracing::info!(user = %principal.user, conn = %principal.conn_id, %remote, "operator connected");
    // Request streams run inside this task (see `inflight`); left-overs go to the tracker.
    let mut requests = crate::inflight::InFlight::new(shared.tracker.clone());
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            never = requests.run() => match never {},
            next = recv.next::<Control>() => match next {
                Ok(Some(Control::Ping { seq })) => {
                    // The requests keep going while the pong waits for room to be written.
                    let pong = Control::Pong { seq };
                    let pong = tokio::select! {
                        sent = send_frame(&mut send, &pong, MAX_FRAME_LEN) => sent,
                        never = requests.run() => match never {},
                    };
                    if pong.is_err() {
                        return;
                    }
                }
                Ok(Some(other)) => tracing::debug!(user = %principal.user, ?other, "ignoring control message"),
                Ok(None) => return,
                Err(e) => {
                    log_stream_end(&principal.user, &e);
                    return;
                }
            },
            stream = conn.accept_bi() => match stream {
                Ok((s, r)) => {
                    // Polled on the next turn of this loop, before anything else is awaited.
                    let (shared2, principal2) = (Arc::clone(shared), principal.clone());
                    requests.push(Box::pin(super::requests::serve(shared2, principal2, s, r)));
                }
                Err(e) => {
                    tracing::info!(user = %principal.user, reason = %e, "operator disconnected");
                    return;
                }
            },
        }
    }
}

mod handover;

#[cfg(test)]
mod tests;
