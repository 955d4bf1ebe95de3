//! Request streams from operators: read the header, pass it through the one authorization
//! point, then answer (relay-local operations) or refuse.

use super::Shared;
use super::body::refuse;
use super::error::RequestError;
use super::principal::{Principal, session_ownership};
use crate::audit_event::{Audit, Verdict};
use crate::authz;
use crate::framed::FramedRecv;
use crate::time::now_ms;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::{Op, StreamHeader};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::{Decision, Ownership, Role};
use proto::wire_error::{ErrorCode, WireError};
use std::sync::Arc;

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
            refuse(send, RequestError::BadHeader(e.to_string())).await;
            return;
        }
        Err(_) => {
            refuse(send, RequestError::HeaderTimeout).await;
            return;
        }
    };
    if let Some(field) = bad_name(&header) {
        // Names reach logs, the audit trail and other operators' terminals: only plain
        // names pass (what agents and the relay accept as names anyway).
        shared.audit_unwaited(Audit::MalformedName {
            actor: principal.user.clone(),
            op: header.op,
            field,
        });
        refuse(send, RequestError::BadName { field }).await;
        return;
    }
    let grants = match shared.store.grants(&principal.user).await {
        Ok(g) => g,
        Err(e) => {
            refuse(send, RequestError::Store(e)).await;
            return;
        }
    };
    if matches!(header.op, Op::PermissionReply | Op::QuestionReply) && header.session.is_none() {
        // Answers are authorized against their session's owner, so the session must be named
        // (the agent checks that the request belongs to it).
        refuse(send, RequestError::NeedsSession(header.op)).await;
        return;
    }
    let (ownership, owner) = session_ownership(&shared, &principal.user, &header).await;
    let (role, decision) = authz::decide(&grants, &header, ownership);
    let event = |verdict| Audit::Stream {
        actor: principal.user.clone(),
        role,
        op: header.op,
        host: header.host.clone(),
        target: header.session.clone().or_else(|| header.workspace.clone()),
        verdict,
    };
    if let Decision::Deny(reason) = decision {
        tracing::info!(user = %principal.user, cred = %principal.cred_id, op = header.op.as_str(), %reason, "denied");
        shared
            .audit_kept(event(Verdict::Denied {
                reason: reason.to_string(),
            }))
            .await;
        let unowned = ownership == Ownership::Other && owner.is_none();
        let error = RequestError::Denied {
            op: header.op,
            reason,
            owner: owner.filter(|_| ownership == Ownership::Other),
            unowned,
        };
        refuse(send, error).await;
        return;
    }
    // Design §6: acting on someone else's session is a take-over, and audited as one.
    let mut note = authz::is_take_over(header.op, ownership).then(|| {
        format!(
            "take-over of a session owned by {}",
            owner.as_ref().map_or("nobody on record", |o| o.as_str())
        )
    });
    // A signed header (zero-trust) is audited with its signer and signed body hash; when the
    // stream is sealed end to end its body is opaque here and is not read (metadata only).
    let mut sealed = false;
    if let Some((signed, is_sealed)) = super::trust::signed_header(&header) {
        sealed = is_sealed;
        note = Some(
            note.take()
                .map_or(signed.clone(), |n| format!("{n}; {signed}")),
        );
    }
    if header.op == Op::Prompt && !sealed {
        // Prompts sent are audited with their text's hash (or text); the frame is put back.
        match super::prompt_audit::peek(&shared, &mut recv).await {
            Ok(prompt) => {
                note = Some(match note.take() {
                    Some(r) => format!("{r}; {prompt}"),
                    None => prompt,
                });
            }
            Err(e) => {
                refuse(send, e).await;
                return;
            }
        }
    }
    if header.op == Op::TemplateApply {
        // Only published versions are applied: the relay resolves the name to the stored
        // version and puts the body back with it (see `template_apply`). On an end-to-end
        // channel the operator's laptop sent the template itself, sealed and signed: the relay
        // audits the template its signed header names and forwards the body unread.
        let applied = if sealed {
            super::template_apply::sealed_note(&header)
        } else {
            super::template_apply::resolve(&shared, &mut recv).await
        };
        match applied {
            Ok(applied) => {
                note = Some(match note.take() {
                    Some(r) => format!("{r}; {applied}"),
                    None => applied,
                });
            }
            Err(e) => {
                let reason = e.wire().message;
                shared.audit_kept(event(Verdict::Denied { reason })).await;
                refuse(send, e).await;
                return;
            }
        }
    }
    // A forward names its port in its audit row (the body frame is put back).
    let mut forward_port = None;
    if header.op == Op::PortForward && !sealed {
        match super::forward_audit::peek(&shared, &mut recv).await {
            Ok(port) => {
                forward_port = Some(port);
                let what = format!("forward port {port}");
                note = Some(note.take().map_or(what.clone(), |n| format!("{n}; {what}")));
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
    let allowed = event(Verdict::Allowed { note });
    if authz::is_relay_admin(header.op) {
        drop(allowed);
    } else if proto::rbac::is_read_only(header.op) {
        shared.audit_unwaited(allowed);
    } else if let Err(refusal) = shared.audit_or_refusal(allowed).await {
        refuse(send, refusal).await;
        return;
    }
    match header.op {
        op if super::local::answers(op) => {
            // Answered by the relay itself and never forwarded to an agent.
            let mut cx = super::local::Cx {
                shared: &shared,
                principal: &principal,
                role,
                grants: &grants,
                done: super::local::Done::default(),
            };
            super::local::serve(&mut cx, op, send, recv).await;
        }
        _ => {
            // `decide` allowed it, so there is a role; it travels to the agent.
            let role = role.unwrap_or(Role::Viewer);
            forward(&shared, &principal, header, role, send, recv, forward_port).await;
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
    mut recv: FramedRecv,
    forward_port: Option<u16>,
) {
    let Some(host) = header.host.clone() else {
        refuse(send, RequestError::NeedsHost(header.op)).await;
        return;
    };
    // The agent's connection to this relay, or else the peer relays of the fleet holding one.
    let local = shared.presence.route(&host);
    let holders = match &local {
        Some(_) => Vec::new(),
        None => super::remote_route::holders(shared, &host),
    };
    if local.is_none() && holders.is_empty() {
        offline(shared, principal, &header, host, send, recv).await;
        return;
    }
    // Held until the stream ends: one principal, or all viewers, cannot take every stream the
    // agent allows.
    let slot = match shared
        .stream_quota
        .take(&host, &principal.user, role, super::stream_quota::WAIT)
        .await
    {
        Ok(slot) => slot,
        Err(full) => {
            tracing::info!(user = %principal.user, %host, ?full, "no stream slot");
            refuse(send, RequestError::Quota { full, host }).await;
            return;
        }
    };
    let mut fwd = ForwardHeader {
        header,
        principal: principal.user.clone(),
        role,
        cred_id: principal.cred_id.clone(),
    };
    shared.tamper.forward_header(&mut fwd);
    let creates_session = fwd.header.op == Op::SessionCreate;
    let opened = match &local {
        Some(agent) => super::splice::open(agent, &fwd)
            .await
            .map(|(s, r)| (s, r, 0)),
        // The operator's first bytes may already be on their way to the agent (`sent_ahead`).
        None => match super::remote_route::open(shared, &holders, &fwd, &mut recv).await {
            Some(opened) => opened,
            None => {
                drop(slot);
                offline(shared, principal, &fwd.header, host, send, recv).await;
                return;
            }
        },
    };
    match opened {
        Ok((agent_send, agent_recv, sent_ahead)) => {
            let forwarding = forward_port.map(|port| {
                let user = principal.user.clone();
                super::forward_audit::ForwardStream::start(
                    user,
                    host.clone(),
                    port,
                    &send,
                    &agent_send,
                )
            });
            let audit_to = Arc::clone(shared);
            let tamper = Arc::clone(&shared.tamper);
            // The agent's first reply frame, when small: a refusal by the host's own rules
            // (containment, policy, lock) goes into the audit trail, and a new session gets
            // its owner recorded before the operator learns its id.
            let (shared, host, user) = (Arc::clone(shared), host.clone(), principal.user.clone());
            let header = fwd.header.clone();
            let inspect = move |reply: Vec<u8>| async move {
                if let Some(refusal) = agent_refusal(&reply) {
                    shared.audit_unwaited(Audit::AgentRefused {
                        actor: user.clone(),
                        role,
                        op: header.op,
                        host: host.clone(),
                        target: header.session.clone().or_else(|| header.workspace.clone()),
                        message: refusal.message,
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
            let splice = async move {
                let tap = tamper.is_active().then_some(&*tamper);
                super::splice::splice_tapped(
                    send,
                    recv,
                    agent_send,
                    agent_recv,
                    inspect,
                    inspect_max,
                    tap,
                )
                .await
            };
            // A forward's bulk copy runs as its own task, on any worker, rather than in the
            // connection's task beside its other requests (`inflight`).
            let mut carried = if forwarding.is_some() {
                tokio::spawn(splice).await.unwrap_or_default()
            } else {
                splice.await
            };
            carried.up += sent_ahead;
            if let Some(f) = forwarding {
                f.closed(&audit_to, carried);
            }
        }
        Err(e) => {
            tracing::warn!(%host, error = %e, "forwarding failed");
            let error = match e {
                super::splice::ForwardError::Busy(streams) => {
                    RequestError::AgentBusy { host, streams }
                }
                _ => RequestError::AgentGone(host),
            };
            refuse(send, error).await;
        }
    }
}

/// Answers a stream for a host no relay holds: queued for later (a prompt to a known host),
/// or refused.
async fn offline(
    shared: &Arc<Shared>,
    principal: &Principal,
    header: &StreamHeader,
    host: proto::ids::HostId,
    send: quinn::SendStream,
    recv: FramedRecv,
) {
    let known = shared
        .store
        .read(|s| s.list_hosts())
        .await
        .map(|rows| rows.iter().any(|r| r.id == host && !r.revoked))
        .unwrap_or(true);
    if known && header.op == Op::Prompt {
        // Kept at the relay until the host is back (or the entry expires).
        super::queue::enqueue(shared, principal, header, &host, send, recv).await;
        return;
    }
    let error = if known {
        RequestError::HostOffline(host)
    } else {
        RequestError::UnknownHost(host)
    };
    refuse(send, error).await;
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
