//! The offline prompt queue at the relay: a `prompt` for an enrolled host that is offline is
//! stored and answered with [`PromptOutcome::Queued`]; a background task delivers waiting
//! entries when their host is back (re-checking the author's role first, through the one
//! authorization point) and expires the ones whose time is up. `queue_list` and
//! `queue_cancel` are answered here.
//!
//! Delivery is once: an entry is claimed with a conditional update (`queued → delivering`,
//! recording which relay claimed it and when) before it is forwarded, and forwarded with the
//! prompt's own idempotency key, so even a repeat after a relay crash mid-delivery is answered
//! by the agent's idempotency record rather than reaching OpenCode twice.
//!
//! Claims left behind are re-queued by [`recover`], at start and every [`RECOVER_EVERY`]
//! (between deliveries, so none of this relay's is in flight): this relay's own, those of
//! relays of the fleet that are dead or retired, and those older than [`STALE_CLAIM`]; never a
//! live peer's delivery in flight.

use super::Shared;
use super::body::{self, answer, refuse};
use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use super::principal::{Principal, session_ownership};
use crate::audit_event::{Audit, QueueEvent};
use crate::authz::{self, QueueRefusal};
use crate::framed::FramedRecv;
use crate::store::{QueueRow, StoreError};
use crate::time::{now_ms, random_u64};
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::PeerKind;
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId, UserId};
use proto::message::Reply;
use proto::op;
use proto::operation::Operation;
use proto::ops::{ForwardHeader, PromptAccepted};
use proto::queue::{PromptOutcome, QueueCancel, QueueEntry, QueueList, QueueState, Queued};
use proto::trust::HeaderAuth;
use std::sync::Arc;
use std::time::Duration;

/// How often waiting entries are checked even without a presence change (expiry).
const TICK: Duration = Duration::from_secs(1);
/// Finished entries are kept this long after their expiry, for `queue_list`.
const KEEP_FINISHED: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often finished entries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Shortest time between two passes over the queue.
const MIN_PASS: Duration = Duration::from_millis(200);
/// Entries `queue_list` returns.
const LIST_LIMIT: usize = 200;
/// Bound on one delivery (open, send, the agent's answer).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A claim older than this is no delivery in flight (one is bounded by [`DELIVERY_TIMEOUT`];
/// the margin covers the store calls around it): it is re-queued whoever made it.
const STALE_CLAIM: Duration = Duration::from_secs(90);
/// How often claims left behind (by relays that died) are looked for.
const RECOVER_EVERY: Duration = Duration::from_secs(10);
/// The claimer id of the single relay (`[fleet]` absent); fleet ids cannot contain `(`.
const SINGLE_RELAY: &str = "(single)";

/// Who this relay is, as a claimer of queued prompts.
fn claimer(shared: &Shared) -> String {
    shared
        .config
        .fleet
        .as_ref()
        .map_or_else(|| SINGLE_RELAY.to_owned(), |f| f.id.0.clone())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn audit_event(row: &QueueRow, event: QueueEvent) -> Audit {
    Audit::Queue {
        user: row.user.clone(),
        host: row.host.clone(),
        id: row.id.clone(),
        event,
    }
}

/// Queues an authorized `prompt` for the offline `host` and answers `queued`.
pub(crate) async fn enqueue(
    shared: &Arc<Shared>,
    principal: &Principal,
    header: &StreamHeader,
    host: &HostId,
    send: quinn::SendStream,
    mut recv: FramedRecv,
) {
    let (Some(workspace), Some(session)) = (header.workspace.clone(), header.session.clone())
    else {
        // Without a session there is nothing to queue into (a new session needs the host).
        refuse(send, RequestError::HostOfflineNotQueueable(host.clone())).await;
        return;
    };
    recv.set_max_len(MAX_FRAME_LEN);
    let timeout = shared.config.handshake_timeout;
    let (body, idempotency_key) = match queued_body(&mut recv, header, timeout).await {
        Ok(b) => b,
        Err(e) => {
            refuse(send, e).await;
            return;
        }
    };
    let auth = match header.auth.as_ref().map(serde_json::to_string).transpose() {
        Ok(auth) => auth,
        Err(e) => {
            refuse(send, RequestError::Internal(e.to_string())).await;
            return;
        }
    };
    let now = now_ms();
    let expiry = u64::try_from(shared.config.queue_expiry.as_millis()).unwrap_or(u64::MAX);
    let row = QueueRow {
        id: format!("q_{:016x}", random_u64()),
        host: host.0.clone(),
        workspace,
        session,
        user: principal.user.0.clone(),
        cred_id: principal.cred_id.0.clone(),
        body,
        idempotency_key,
        created_ms: now,
        expires_ms: now.saturating_add(expiry),
        state: QueueState::Queued,
        detail: None,
        auth,
    };
    // A retry of a prompt already queued (same author, host and key) gets the first entry;
    // the lookup and the insert are one transaction.
    let stored = row.clone();
    match shared.store.call(move |s| s.queue_add_once(&stored)).await {
        Ok(None) => {}
        Ok(Some(first)) => {
            answer(send, Ok(queued(&first))).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "could not queue a prompt");
            refuse(send, RequestError::Store(e)).await;
            return;
        }
    }
    // The entry exists only once its audit row is durable; a failed write cancels it.
    if !shared.audit(audit_event(&row, QueueEvent::Queued)).await {
        let id = row.id.clone();
        let _ = shared
            .store
            .call(move |s| {
                s.queue_transition(
                    &id,
                    QueueState::Queued,
                    QueueState::Refused,
                    Some("audit trail unavailable"),
                )
            })
            .await;
        refuse(send, RequestError::AuditUnavailable).await;
        return;
    }
    tracing::info!(host = %row.host, id = %row.id, user = %row.user, "prompt queued for an offline host");
    answer(send, Ok(queued(&row))).await;
}

/// The prompt body to queue, exactly as the operator sent it, and its idempotency key: a plain
/// prompt's own key, or for a prompt encrypted to its host (`{"sealed": …}`, which the relay
/// cannot read) one derived from the body hash its author signed, so a retry of the same
/// prompt (re-sealed, re-signed) is still queued once.
///
/// # Errors
/// No body in time; a body that is neither a prompt nor a sealed one; a sealed one without a
/// signed header (nobody could tell its author).
async fn queued_body(
    recv: &mut FramedRecv,
    header: &StreamHeader,
    timeout: Duration,
) -> Result<(String, String), RequestError> {
    let bad = |detail: String| RequestError::BadBody {
        op: Op::Prompt,
        detail,
    };
    let raw = body::read_raw(recv, Op::Prompt, timeout)
        .await?
        .ok_or(RequestError::NoBody(Op::Prompt))?;
    let text = String::from_utf8(raw.to_vec()).map_err(|e| bad(e.to_string()))?;
    if crate::store::is_sealed_body(&text) {
        let signed = header.auth.as_ref().and_then(super::trust::signed_fields);
        let Some(fields) = signed else {
            return Err(bad(
                "a sealed prompt needs a signed header (cm-tui signs it with your device key); \
                 log in again with `cm-tui login` if your device key is missing"
                    .into(),
            ));
        };
        let hash = fields
            .body
            .unwrap_or_else(|| proto::trust::header::body_hash(text.as_bytes()));
        return Ok((text, format!("sealed:{hash}")));
    }
    let prompt: <op::Prompt as Operation>::Body =
        proto::frame::parse_json(&raw).map_err(|e| bad(e.to_string()))?;
    Ok((text, prompt.idempotency_key))
}

/// The answer to a queued `prompt`.
fn queued(row: &QueueRow) -> <op::Prompt as Operation>::Reply {
    PromptOutcome::Queued {
        queued: Queued {
            id: row.id.clone(),
            expires_ms: row.expires_ms,
        },
    }
}

/// `queue_list`: the caller's entries.
impl LocalHandler for op::QueueList {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<QueueList, RequestError> {
        let user = cx.principal.user.clone();
        let u = user.0.clone();
        let rows = cx
            .shared
            .store
            .read(move |s| s.queue_of_user(&u, LIST_LIMIT))
            .await?;
        Ok(QueueList {
            entries: rows
                .iter()
                .filter(|row| authz::may_touch_queued(&user, row))
                .map(QueueRow::entry)
                .collect(),
        })
    }
}

/// `queue_cancel`: drops one of the caller's waiting entries.
impl LocalHandler for op::QueueCancel {
    async fn handle(cx: &mut Cx<'_>, body: QueueCancel) -> Result<QueueEntry, RequestError> {
        let (id, user) = (body.id, cx.principal.user.clone());
        let row = cx
            .shared
            .store
            .call(
                move |s| -> Result<Result<QueueRow, RequestError>, StoreError> {
                    let Some(row) = s
                        .queue_get(&id)?
                        .filter(|r| authz::may_touch_queued(&user, r))
                    else {
                        return Ok(Err(RequestError::NotQueued(id)));
                    };
                    if !s.queue_transition(&id, QueueState::Queued, QueueState::Cancelled, None)? {
                        return Ok(Err(RequestError::NoLongerWaiting {
                            id,
                            state: row.state.as_str(),
                        }));
                    }
                    Ok(Ok(s.queue_get(&id)?.unwrap_or(row)))
                },
            )
            .await??;
        cx.shared
            .audit(audit_event(&row, QueueEvent::Cancelled))
            .await;
        Ok(row.entry())
    }
}

/// Re-queues claims nobody is delivering: this relay's own (called only between its
/// deliveries), those of dead or retired relays, and stale ones.
async fn recover(shared: &Arc<Shared>) {
    let relay = claimer(shared);
    let (stale, alive) = (millis(STALE_CLAIM), millis(shared.config.heartbeat_timeout));
    match shared
        .store
        .call(move |s| s.queue_recover(&relay, now_ms(), stale, alive))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            entries = n,
            "queued prompts were left mid-delivery (by a stop of this relay, a relay that died, or a delivery that never finished); delivering them again (the agent answers repeats from its idempotency record)"
        ),
        Err(e) => tracing::error!(error = %e, "cannot recover the prompt queue"),
    }
}

/// The delivery and expiry loop; runs until the relay shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    recover(&shared).await;
    let mut last_recover = tokio::time::Instant::now();
    let mut last_purge: Option<tokio::time::Instant> = None;
    let mut changes = shared.presence.changes();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            _ = changes.changed() => {}
            _ = tick.tick() => {}
        }
        // Presence changes with every heartbeat of a large fleet: at most one pass per
        // MIN_PASS, so the queue costs a bounded number of (cheap, indexed) reads.
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(MIN_PASS) => {}
        }
        expire(&shared).await;
        // Deliveries are awaited one by one in this loop: none of this relay's is in flight.
        if last_recover.elapsed() >= RECOVER_EVERY {
            last_recover = tokio::time::Instant::now();
            recover(&shared).await;
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            let keep = u64::try_from(KEEP_FINISHED.as_millis()).unwrap_or(u64::MAX);
            let before = now_ms().saturating_sub(keep);
            match shared.store.call(move |s| s.queue_purge(before)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "forgot finished queued prompts"),
                Err(e) => tracing::error!(error = %e, "cannot purge the prompt queue"),
            }
        }
        let hosts = match shared.store.read(|s| s.queue_hosts()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the prompt queue");
                continue;
            }
        };
        for host in hosts {
            let host = HostId(host);
            if shared.presence.route(&host).is_some() {
                deliver_host(&shared, &host).await;
            }
        }
    }
}

async fn expire(shared: &Arc<Shared>) {
    match shared.store.call(move |s| s.queue_expire(now_ms())).await {
        Ok(rows) => {
            for row in rows {
                tracing::info!(host = %row.host, id = %row.id, "queued prompt expired; not delivered");
                shared
                    .audit_kept(audit_event(&row, QueueEvent::Expired))
                    .await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot expire queued prompts"),
    }
}

async fn deliver_host(shared: &Arc<Shared>, host: &HostId) {
    let h = host.0.clone();
    let rows = match shared.store.read(move |s| s.queue_waiting(&h)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the prompt queue");
            return;
        }
    };
    for row in rows {
        if row.expires_ms <= now_ms() {
            continue; // the next expiry pass takes it
        }
        if !deliver(shared, host, row).await {
            // The host went away again: keep the rest for its return.
            return;
        }
    }
}

/// Sets an entry's final state (from `delivering`, while it is still this relay's claim).
async fn finish(shared: &Arc<Shared>, id: &str, to: QueueState, detail: Option<String>) {
    let (id, relay) = (id.to_owned(), claimer(shared));
    let shown = id.clone();
    match shared
        .store
        .call(move |s| s.queue_finish(&id, &relay, to, detail.as_deref()))
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            id = %shown,
            state = to.as_str(),
            "a queued prompt's claim was recovered before its delivery finished; its state is left to the relay that has it now"
        ),
        Err(e) => tracing::error!(error = %e, "cannot update a queued prompt"),
    }
}

/// Refuses a claimed entry at delivery: audited, then `refused` with the reason.
async fn refuse_delivery(shared: &Arc<Shared>, row: &QueueRow, reason: String) {
    tracing::info!(host = %row.host, id = %row.id, user = %row.user, %reason, "queued prompt refused at delivery");
    let why = format!("not delivered: {reason}");
    shared
        .audit(audit_event(row, QueueEvent::DeliveryRefused { reason }))
        .await;
    finish(shared, &row.id, QueueState::Refused, Some(why)).await;
}

/// Delivers one entry; false when the host is unreachable (the entry is queued again).
async fn deliver(shared: &Arc<Shared>, host: &HostId, row: QueueRow) -> bool {
    // The operator's signed header goes to the agent verbatim, with the request id it signed.
    let auth = match row.auth.as_deref().map(serde_json::from_str::<HeaderAuth>) {
        None => None,
        Some(Ok(auth)) => Some(auth),
        Some(Err(e)) => {
            tracing::error!(id = %row.id, error = %e, "a queued prompt's signed header is unreadable");
            let (id, why) = (
                row.id.clone(),
                "not delivered: its signed header is unreadable",
            );
            let _ = shared
                .store
                .call(move |s| {
                    s.queue_transition(&id, QueueState::Queued, QueueState::Refused, Some(why))
                })
                .await;
            return true;
        }
    };
    let req_id = auth
        .as_ref()
        .and_then(super::trust::signed_fields)
        .map_or_else(|| ReqId(random_u64()), |f| f.req_id);
    let header = StreamHeader {
        op: Op::Prompt,
        req_id,
        host: Some(host.clone()),
        workspace: Some(row.workspace.clone()),
        session: Some(row.session.clone()),
        auth,
        mac: None,
    };
    // The role is checked again now: a user whose grant was removed meanwhile is refused.
    let user = UserId(row.user.clone());
    let grants = match shared.store.grants(&user).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "grant lookup failed; queued prompt kept");
            return true;
        }
    };
    let (ownership, _) = session_ownership(shared, &user, &header).await;
    let (id, relay) = (row.id.clone(), claimer(shared));
    let claimed = shared
        .store
        .call(move |s| s.queue_claim(&id, &relay, now_ms()))
        .await;
    if !matches!(claimed, Ok(true)) {
        return true; // cancelled or expired meanwhile
    }
    // The author's credential must still be good now (read after the claim, so a revocation
    // either refuses the waiting entry in the store or is seen here).
    let cred = CredId(row.cred_id.clone());
    let found = match shared
        .store
        .read(move |s| s.find_credential(PeerKind::Operator, &cred))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "credential lookup failed; queued prompt kept");
            finish(shared, &row.id, QueueState::Queued, None).await;
            return true;
        }
    };
    let now = now_ms();
    let role = match authz::deliver_queued(&row, found.as_ref(), &grants, &header, ownership, now) {
        Ok(role) => role,
        Err(QueueRefusal::NoRole) => {
            finish(shared, &row.id, QueueState::Refused, Some("no role".into())).await;
            return true;
        }
        Err(refusal) => {
            refuse_delivery(shared, &row, refusal.to_string()).await;
            return true;
        }
    };
    if !shared
        .audit(audit_event(&row, QueueEvent::Delivered { role }))
        .await
    {
        finish(shared, &row.id, QueueState::Queued, None).await;
        return false;
    }
    let mut fwd = ForwardHeader {
        header,
        principal: UserId(row.user.clone()),
        role,
        cred_id: CredId(row.cred_id.clone()),
    };
    shared.tamper.forward_header(&mut fwd);
    let Some(agent) = shared.presence.route(host) else {
        finish(shared, &row.id, QueueState::Queued, None).await;
        return false;
    };
    let attempt = async {
        let (mut agent_send, agent_recv) = super::splice::open(&agent, &fwd)
            .await
            .map_err(|e| e.to_string())?;
        // The body as it was queued, byte for byte (a body the agent cannot read is refused
        // by it, and the entry with it).
        let mut frame = bytes::BytesMut::new();
        proto::frame::encode_raw(row.body.as_bytes(), MAX_FRAME_LEN, &mut frame)
            .map_err(|e| e.to_string())?;
        crate::framed::write_within(&mut agent_send, &frame, crate::framed::WRITE_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let _ = agent_send.finish();
        let mut recv = FramedRecv::new(agent_recv, MAX_FRAME_LEN);
        recv.expect::<Reply<PromptAccepted>>()
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(DELIVERY_TIMEOUT, attempt).await {
        Ok(Ok(Reply::Ok(accepted))) => {
            tracing::info!(host = %row.host, id = %row.id, message = %accepted.message_id, duplicate = accepted.duplicate, "queued prompt delivered");
            finish(
                shared,
                &row.id,
                QueueState::Delivered,
                Some(accepted.message_id),
            )
            .await;
            true
        }
        Ok(Ok(Reply::Error(e))) => {
            tracing::info!(host = %row.host, id = %row.id, error = %e, "the agent refused a queued prompt");
            finish(shared, &row.id, QueueState::Refused, Some(e.message)).await;
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(host = %row.host, id = %row.id, error = %e, "delivery failed; the prompt stays queued");
            finish(shared, &row.id, QueueState::Queued, None).await;
            false
        }
        Err(_) => {
            tracing::warn!(host = %row.host, id = %row.id, "delivery timed out; the prompt stays queued");
            finish(shared, &row.id, QueueState::Queued, None).await;
            false
        }
    }
}
