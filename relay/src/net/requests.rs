//! Request streams from operators: read the header, pass it through the one authorization
//! point, then answer (relay-local operations) or refuse.

use super::Shared;
use super::conn::Principal;
use crate::authz;
use crate::framed::{FramedRecv, send_frame};
use crate::store::AuditEvent;
use crate::time::now_ms;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::{Op, StreamHeader};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::{Decision, DenyReason, Ownership, Role};
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;
use std::sync::Arc;

pub(super) async fn reply<T: Serialize>(send: &mut quinn::SendStream, r: &Reply<T>) -> bool {
    send_frame(send, r, MAX_FRAME_LEN).await.is_ok()
}

async fn refuse(mut send: quinn::SendStream, error: WireError) {
    let _ = reply::<()>(&mut send, &Reply::Error(error)).await;
    let _ = send.finish();
}

fn deny_error(
    reason: &DenyReason,
    op: Op,
    owner: Option<&proto::ids::UserId>,
    unowned: bool,
) -> WireError {
    match (reason, owner) {
        (DenyReason::UnknownOp, _) => WireError::new(
            ErrorCode::UnknownOp,
            "this relay does not know that operation; upgrade the relay or use an older cm-tui",
        ),
        (DenyReason::NoGrant, _) if authz::is_relay_admin(op) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: administering the relay needs an admin grant on every host (*); ask an owner",
                op.as_str()
            ),
        ),
        (DenyReason::NoGrant, _) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: you have no grant on this host; ask an admin",
                op.as_str()
            ),
        ),
        // Someone else's session: say so, or "you have operator" reads as a role problem.
        (DenyReason::RoleTooLow { needed, have }, Some(owner)) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: this session belongs to {}; taking it over needs role {needed}, you have {have}",
                op.as_str(),
                owner.as_str()
            ),
        ),
        (DenyReason::RoleTooLow { needed, have }, None) if unowned => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: this session has no recorded owner (it was not created through CodeMantle); \
                 taking it over needs role {needed}, you have {have}",
                op.as_str()
            ),
        ),
        (DenyReason::RoleTooLow { needed, have }, None) => WireError::new(
            ErrorCode::Forbidden,
            format!("{}: needs role {needed}, you have {have}", op.as_str()),
        ),
    }
}

/// The first target in `header` that is not a plain name (see [`proto::ids::is_valid_name`]).
fn bad_name(header: &StreamHeader) -> Option<&'static str> {
    let names = [
        ("host", header.host.as_ref().map(|h| h.as_str())),
        ("workspace", header.workspace.as_deref()),
        ("session", header.session.as_deref()),
    ];
    names
        .into_iter()
        .find(|(_, name)| name.is_some_and(|n| !proto::ids::is_valid_name(n)))
        .map(|(field, _)| field)
}

/// Serves one request stream to completion.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    principal: Principal,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
    // Bodies after the header may be larger than a header; the relay forwards them unparsed.
    let header = match tokio::time::timeout(
        shared.config.handshake_timeout,
        recv.expect::<StreamHeader>(),
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::warn!(user = %principal.user, error = %e, "bad stream header");
            refuse(
                send,
                WireError::new(ErrorCode::BadRequest, format!("bad stream header: {e}")),
            )
            .await;
            return;
        }
        Err(_) => {
            refuse(
                send,
                WireError::new(ErrorCode::BadRequest, "no stream header in time"),
            )
            .await;
            return;
        }
    };
    if let Some(field) = bad_name(&header) {
        // Names reach logs, the audit trail and other operators' terminals: only plain
        // names pass (what agents and the relay accept as names anyway).
        shared.audit_unwaited(AuditEvent {
            actor: principal.user.0.clone(),
            op: header.op.as_str().to_owned(),
            decision: "deny".into(),
            reason: Some(format!("malformed {field} name in the stream header")),
            ..AuditEvent::default()
        });
        refuse(
            send,
            WireError::new(
                ErrorCode::BadRequest,
                format!(
                    "the {field} name is not valid: letters, digits, '-', '_' and '.', at most {} bytes",
                    proto::ids::MAX_ID_LEN
                ),
            ),
        )
        .await;
        return;
    }
    let grants = match shared.store.grants(&principal.user).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "grant lookup failed");
            refuse(
                send,
                WireError::new(ErrorCode::Internal, "relay store failure; see its log"),
            )
            .await;
            return;
        }
    };
    if matches!(header.op, Op::PermissionReply | Op::QuestionReply) && header.session.is_none() {
        // Answers are authorized against their session's owner, so the session must be named
        // (the agent checks that the request belongs to it).
        refuse(
            send,
            WireError::new(
                ErrorCode::BadRequest,
                format!(
                    "{} needs the request's session in the header",
                    header.op.as_str()
                ),
            ),
        )
        .await;
        return;
    }
    let (ownership, owner) = session_ownership(&shared, &principal.user, &header).await;
    let (role, decision) = authz::decide(&grants, &header, ownership);
    let mut event = AuditEvent {
        actor: principal.user.0.clone(),
        role: role.map(|r| r.as_str().to_owned()),
        host: header.host.as_ref().map(|h| h.0.clone()),
        op: header.op.as_str().to_owned(),
        target: header.session.clone().or_else(|| header.workspace.clone()),
        ..AuditEvent::default()
    };
    if let Decision::Deny(reason) = decision {
        tracing::info!(user = %principal.user, cred = %principal.cred_id, op = header.op.as_str(), %reason, "denied");
        event.decision = "deny".into();
        event.reason = Some(reason.to_string());
        shared.audit(event).await;
        let other_owner = owner.as_ref().filter(|_| ownership == Ownership::Other);
        let unowned = ownership == Ownership::Other && owner.is_none();
        refuse(send, deny_error(&reason, header.op, other_owner, unowned)).await;
        return;
    }
    event.decision = "allow".into();
    if ownership == Ownership::Other && authz_drives(header.op) {
        // Design §6: acting on someone else's session is a take-over, and audited as one.
        event.reason = Some(format!(
            "take-over of a session owned by {}",
            owner.as_ref().map_or("nobody on record", |o| o.as_str())
        ));
    }
    if header.op == Op::Prompt {
        // Prompts sent are audited with their text's hash (or text); the frame is put back.
        match super::prompt_audit::peek(&shared, &mut recv).await {
            Ok(note) => {
                event.reason = Some(match event.reason.take() {
                    Some(r) => format!("{r}; {note}"),
                    None => note,
                });
            }
            Err(e) => {
                refuse(send, e).await;
                return;
            }
        }
    }
    // A read is recorded without waiting (group-committed within milliseconds); anything that
    // changes something is acted on only once its audit row is durable. Administration of the
    // relay is audited by its handler instead, as one row naming what was done and to what
    // (a host list is not a `host_rotate`; a change is not recorded twice).
    let audited_by_handler = authz::is_relay_admin(header.op);
    if audited_by_handler {
        drop(event);
    } else if proto::rbac::is_read_only(header.op) {
        shared.audit_unwaited(event);
    } else if !shared.audit(event).await {
        refuse(
            send,
            WireError::new(
                ErrorCode::Internal,
                "audit trail unavailable; see the relay log",
            ),
        )
        .await;
        return;
    }
    match header.op {
        Op::HostList => super::hosts::host_list_once(&shared, &grants, send).await,
        Op::WatchHosts => super::hosts::watch_hosts(&shared, &grants, send).await,
        Op::Logout => logout(&shared, &principal, send).await,
        Op::QueueList => super::queue::list(&shared, &principal, send).await,
        Op::QueueCancel => super::queue::cancel(&shared, &principal, send, recv).await,
        op if op.is_relay_local() => {
            // Administration, answered by the relay itself and never forwarded to an agent.
            super::admin::serve(&shared, &principal, role, op, send, recv).await;
        }
        _ => {
            // `decide` allowed it, so there is a role; it travels to the agent.
            let role = role.unwrap_or(Role::Viewer);
            forward(&shared, &principal, header, role, send, recv).await;
        }
    }
}

/// Whether `op` drives a session (as opposed to reading it); only those are take-overs.
fn authz_drives(op: Op) -> bool {
    proto::rbac::required_role(op, Ownership::Other)
        != proto::rbac::required_role(op, Ownership::Own)
}

/// How `user` relates to the header's session: sessions CodeMantle saw created (and their
/// sub-agent sessions) have an owner; an unknown session (created outside CodeMantle, or
/// never seen) counts as someone else's, so driving it is a take-over (design §6).
pub(super) async fn session_ownership(
    shared: &Arc<Shared>,
    user: &proto::ids::UserId,
    header: &StreamHeader,
) -> (Ownership, Option<proto::ids::UserId>) {
    let (Some(host), Some(session)) = (header.host.clone(), header.session.clone()) else {
        return (Ownership::None, None);
    };
    match shared.store.session_owner(&host, &session).await {
        Ok(Some(owner)) if owner == *user => (Ownership::Own, Some(owner)),
        Ok(Some(owner)) => (Ownership::Other, Some(owner)),
        Ok(None) => (Ownership::Other, None),
        Err(e) => {
            // Fail closed: treat it as someone else's session.
            tracing::error!(error = %e, "session owner lookup failed");
            (Ownership::Other, None)
        }
    }
}

/// Forwards an authorized stream to the target host's agent.
async fn forward(
    shared: &Arc<Shared>,
    principal: &Principal,
    header: StreamHeader,
    role: Role,
    send: quinn::SendStream,
    recv: FramedRecv,
) {
    let Some(host) = header.host.clone() else {
        refuse(
            send,
            WireError::new(
                ErrorCode::BadRequest,
                format!("{} needs a target host", header.op.as_str()),
            ),
        )
        .await;
        return;
    };
    let Some(agent) = shared.presence.route(&host) else {
        let known = shared
            .store
            .read(|s| s.list_hosts())
            .await
            .map(|rows| rows.iter().any(|r| r.id == host && !r.revoked))
            .unwrap_or(true);
        if known && header.op == Op::Prompt {
            // Kept at the relay until the host is back (or the entry expires).
            super::queue::enqueue(shared, principal, &header, &host, send, recv).await;
            return;
        }
        let error = if known {
            WireError::new(
                ErrorCode::HostOffline,
                format!("host {host} is offline; its agent is not connected"),
            )
        } else {
            WireError::new(
                ErrorCode::UnknownHost,
                format!("no host named {host}; see `cm-tui hosts`"),
            )
        };
        refuse(send, error).await;
        return;
    };
    // Held until the stream ends: one principal, or all viewers, cannot take every stream the
    // agent allows.
    let _slot = match shared
        .stream_quota
        .take(&host, &principal.user, role, super::stream_quota::WAIT)
        .await
    {
        Ok(slot) => slot,
        Err(full) => {
            tracing::info!(user = %principal.user, %host, ?full, "no stream slot");
            refuse(send, quota_error(full, &host)).await;
            return;
        }
    };
    let fwd = ForwardHeader {
        header,
        principal: principal.user.clone(),
        role,
        cred_id: principal.cred_id.clone(),
    };
    let creates_session = fwd.header.op == Op::SessionCreate;
    match super::splice::open(&agent, &fwd).await {
        Ok((agent_send, agent_recv)) => {
            // The agent's first reply frame, when small: a refusal by the host's own rules
            // (containment, policy, lock) goes into the audit trail, and a new session gets
            // its owner recorded before the operator learns its id.
            let (shared, host, user) = (Arc::clone(shared), host.clone(), principal.user.clone());
            let header = fwd.header.clone();
            let inspect = move |reply: Vec<u8>| async move {
                if let Some(refusal) = agent_refusal(&reply) {
                    shared.audit_unwaited(AuditEvent {
                        actor: user.0.clone(),
                        role: Some(role.as_str().to_owned()),
                        host: Some(host.0.clone()),
                        op: header.op.as_str().to_owned(),
                        target: header.session.clone().or_else(|| header.workspace.clone()),
                        decision: "deny".into(),
                        reason: Some(format!("refused by the agent: {}", refusal.message)),
                    });
                    return;
                }
                if !creates_session {
                    return;
                }
                let id = serde_json::from_slice::<serde_json::Value>(&reply)
                    .ok()
                    .and_then(|v| v["ok"]["id"].as_str().map(str::to_owned));
                if let Some(id) = id {
                    let now = now_ms();
                    if let Err(e) = shared.store.set_session_owner(&host, &id, &user, now).await {
                        tracing::error!(error = %e, "could not record the session owner");
                    }
                }
            };
            // A new session's answer is always read (its title can be long): its owner must
            // be recorded; other first frames only when small.
            let inspect_max = if creates_session {
                MAX_FRAME_LEN
            } else {
                super::splice::INSPECT_MAX
            };
            super::splice::splice_inspecting(
                send,
                recv,
                agent_send,
                agent_recv,
                inspect,
                inspect_max,
            )
            .await;
        }
        Err(e) => {
            tracing::warn!(%host, error = %e, "forwarding failed");
            let error = match e {
                super::splice::ForwardError::Busy(n) => WireError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "host {host} has all {n} streams in use (open watches); close some and retry"
                    ),
                ),
                _ => WireError::new(
                    ErrorCode::HostOffline,
                    format!("host {host} went away; retry when it is back"),
                ),
            };
            refuse(send, error).await;
        }
    }
}

/// What an operator is told when the stream quota refused them.
fn quota_error(full: super::stream_quota::Full, host: &proto::ids::HostId) -> WireError {
    use super::stream_quota::{Full, PER_PRINCIPAL};
    let message = match full {
        Full::Principal => format!(
            "you have {PER_PRINCIPAL} streams open to host {host}, the most one user may; close some (watches) and retry"
        ),
        Full::ViewerShare => format!(
            "viewers hold every stream of host {host} they may (the rest is kept for operators); retry later"
        ),
    };
    WireError::new(ErrorCode::Unavailable, message)
}

/// The agent's refusal in a first reply frame: `forbidden` (its containment rules, its
/// `[policy]`, its local lock), as opposed to ordinary failures such as a missing session.
fn agent_refusal(reply: &[u8]) -> Option<WireError> {
    if !reply.starts_with(br#"{"error""#) {
        return None;
    }
    match serde_json::from_slice::<Reply<serde::de::IgnoredAny>>(reply) {
        Ok(Reply::Error(e)) if e.code == ErrorCode::Forbidden => Some(e),
        _ => None,
    }
}

/// Revokes the caller's own credential; the sweeper then closes this connection.
async fn logout(shared: &Arc<Shared>, principal: &Principal, mut send: quinn::SendStream) {
    let cred = principal.cred_id.clone();
    let r = match shared.store.call(move |s| s.kill_credential(&cred)).await {
        Ok(_) => Reply::Ok(true),
        Err(e) => {
            tracing::error!(error = %e, "logout failed");
            Reply::Error(WireError::new(
                ErrorCode::Internal,
                "logout failed inside the relay; see its log",
            ))
        }
    };
    let _ = reply(&mut send, &r).await;
    let _ = send.finish();
}
