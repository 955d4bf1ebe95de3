//! The checks every operation passes first, and one handler per operation: each turns a
//! request into typed OpenCode client calls and maps the result into `proto::ops` types.

use super::error::OpError;
use super::frames::{FrameIoError, FrameReader};
use super::idempotency::{MAX_KEY_LEN, Recorded};
use crate::grants::GrantError;
use crate::opencode::client::{ClientError, OpencodeClient};
use crate::opencode::ids::new_message_id;
use crate::workspaces::{WorkspaceRuntime, Workspaces};
use proto::grant::{GrantRevoke, StandingGrant};
use proto::header::Op;
use proto::ops::{
    Aborted, CreateSession, DiffQuery, FileDiff, ForwardHeader, Message, MessagesQuery,
    OpencodeState, Pending, PermissionAnswer, PermissionReply, PermissionRequest, Prompt,
    PromptAccepted, QuestionReply, RenameSession, SessionInfo, SessionStatus, WorkspaceInfo,
};
use proto::rbac::{Decision, Ownership, Role, authorize};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::AsyncRead;

/// Room left in a frame for the `Reply` envelope around a list.
const ENVELOPE: usize = 64;

/// The checks, in order: role, then (for workspace operations) the workspace and its root.
/// Returns the workspace, or `None` for `workspace_list`.
pub(super) fn admit(
    workspaces: &Workspaces,
    fwd: &ForwardHeader,
) -> Result<Option<Arc<WorkspaceRuntime>>, OpError> {
    let op = fwd.header.op;
    if let Decision::Deny(reason) = authorize(Some(fwd.role), op, Ownership::None) {
        return Err(OpError::Denied(reason));
    }
    // The host owner's own limits (lock, disabled operations, raised roles), whatever the
    // relay allowed.
    workspaces.policy().check(op, fwd.role).inspect_err(|e| {
        tracing::warn!(
            target: "cm_agent::audit",
            op = op.as_str(),
            principal = %fwd.principal,
            role = %fwd.role,
            cred = %fwd.cred_id,
            reason = %e,
            "policy refusal"
        );
    })?;
    if op == Op::WorkspaceList {
        return Ok(None);
    }
    if !is_served(op) && !super::fs_git::serves(op) {
        return Err(OpError::UnknownOp(op));
    }
    let name = fwd.header.workspace.as_deref().ok_or_else(|| {
        OpError::BadRequest(format!("{} needs a workspace in the header", op.as_str()))
    })?;
    let rt = workspaces.get(name).ok_or_else(|| OpError::NoWorkspace {
        name: name.to_owned(),
        known: workspaces.names(),
    })?;
    root_ok(rt)?;
    rt.supervisor.touch();
    let running = crate::lease::is_running(rt);
    workspaces
        .leases()
        .on_op(name, &fwd.cred_id, fwd.role, running);
    Ok(Some(Arc::clone(rt)))
}

/// Workspace operations this agent serves (relay and administration operations are not).
fn is_served(op: Op) -> bool {
    matches!(
        op,
        Op::SessionList
            | Op::SessionCreate
            | Op::SessionDelete
            | Op::SessionRename
            | Op::Prompt
            | Op::Abort
            | Op::Messages
            | Op::Diff
            | Op::PermissionList
            | Op::PermissionReply
            | Op::PermissionGrants
            | Op::PermissionRevoke
            | Op::QuestionReply
            | Op::WatchEvents
            | Op::OpencodeStart
            | Op::OpencodeStop
            | Op::OpencodeStatus
    )
}

/// The workspace root must still be a readable folder.
fn root_ok(rt: &WorkspaceRuntime) -> Result<(), OpError> {
    let root = &rt.workspace.root;
    let fail = |reason: String| OpError::RootUnavailable {
        name: rt.workspace.name.clone(),
        path: root.display().to_string(),
        reason,
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => std::fs::read_dir(root)
            .map(drop)
            .map_err(|e| fail(e.to_string())),
        Ok(_) => Err(fail("not a directory".into())),
        Err(e) => Err(fail(e.to_string())),
    }
}

fn body_error(op: Op, e: &FrameIoError) -> OpError {
    OpError::BadRequest(format!("malformed body for {}: {e}", op.as_str()))
}

/// How long a stream's body may take to arrive after its header: a stream left without one
/// would otherwise hold one of the agent's streams for as long as its sender likes.
pub(super) const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The next body frame (`None` at the end of the stream), within `within`.
async fn next_body<T: DeserializeOwned, R: AsyncRead + Unpin>(
    op: Op,
    body: &mut FrameReader<R>,
    within: std::time::Duration,
) -> Result<Option<T>, OpError> {
    match tokio::time::timeout(within, body.next()).await {
        Ok(read) => read.map_err(|e| body_error(op, &e)),
        Err(_) => Err(OpError::BadRequest(format!(
            "no complete body for {} within {within:?}; send it right after the header",
            op.as_str()
        ))),
    }
}

/// Exactly one body frame.
pub(super) async fn required<T: DeserializeOwned, R: AsyncRead + Unpin>(
    op: Op,
    body: &mut FrameReader<R>,
) -> Result<T, OpError> {
    next_body(op, body, BODY_TIMEOUT)
        .await?
        .ok_or_else(|| OpError::BadRequest(format!("{} needs a request body", op.as_str())))
}

/// One body frame, or the default when the stream ends without one.
pub(super) async fn optional<T: DeserializeOwned + Default, R: AsyncRead + Unpin>(
    op: Op,
    body: &mut FrameReader<R>,
) -> Result<T, OpError> {
    Ok(next_body(op, body, BODY_TIMEOUT).await?.unwrap_or_default())
}

pub(super) fn session_of(fwd: &ForwardHeader) -> Result<&str, OpError> {
    fwd.header.session.as_deref().ok_or_else(|| {
        OpError::BadRequest(format!(
            "{} needs a session in the header",
            fwd.header.op.as_str()
        ))
    })
}

pub(super) fn json<T: Serialize>(v: &T) -> Result<Value, OpError> {
    serde_json::to_value(v).map_err(|e| {
        OpError::Client(ClientError::Decode {
            what: "encoding the answer".into(),
            reason: e.to_string(),
        })
    })
}

/// A 404 from OpenCode, said in the operator's terms.
fn missing(what: impl FnOnce() -> String) -> impl FnOnce(ClientError) -> OpError {
    move |e| match e {
        ClientError::NotFound { .. } => OpError::NotFound(what()),
        other => OpError::Client(other),
    }
}

/// Runs the operation; the caller writes the reply.
pub(super) async fn dispatch<R: AsyncRead + Unpin>(
    workspaces: &Workspaces,
    fwd: &ForwardHeader,
    body: &mut FrameReader<R>,
) -> Result<Value, OpError> {
    let op = fwd.header.op;
    let Some(rt) = admit(workspaces, fwd)? else {
        return json(&workspace_list(workspaces));
    };
    let ws = &rt.workspace.name;
    match op {
        Op::OpencodeStatus => json(&workspaces.leases().info(&rt)),
        Op::OpencodeStart => {
            rt.supervisor.ensure_ready().await?;
            json(&rt.supervisor.info())
        }
        Op::OpencodeStop => json(&rt.supervisor.stop().await),
        Op::SessionList => json(&session_list(&reader_client(workspaces, &rt, fwd).await?).await?),
        Op::SessionCreate => {
            let req: CreateSession = optional(op, body).await?;
            let client = rt.supervisor.ensure_ready().await?;
            json(&client.create_session(req.title.as_deref()).await?)
        }
        Op::SessionDelete => {
            let session = session_of(fwd)?;
            let client = rt.supervisor.ensure_ready().await?;
            let deleted = client.delete_session(session).await.map_err(missing(|| {
                format!("no session {session} in workspace {ws}")
            }))?;
            json(&deleted)
        }
        Op::SessionRename => {
            let session = session_of(fwd)?;
            let req: RenameSession = required(op, body).await?;
            let client = rt.supervisor.ensure_ready().await?;
            let renamed = client
                .rename_session(session, &req.title)
                .await
                .map_err(missing(|| {
                    format!("no session {session} in workspace {ws}")
                }))?;
            json(&renamed)
        }
        Op::Prompt => {
            let session = session_of(fwd)?;
            let req: Prompt = required(op, body).await?;
            json(&prompt(workspaces, &rt, session, req).await?)
        }
        Op::Abort => {
            let session = session_of(fwd)?;
            json(&abort(&rt, session).await?)
        }
        Op::Messages => {
            let session = session_of(fwd)?;
            let q: MessagesQuery = optional(op, body).await?;
            let client = reader_client(workspaces, &rt, fwd).await?;
            let msgs = client
                .messages(session, q.limit)
                .await
                .map_err(missing(|| {
                    format!("no session {session} in workspace {ws}")
                }))?;
            fit_messages(msgs)
        }
        Op::Diff => {
            let q: DiffQuery = required(op, body).await?;
            let client = reader_client(workspaces, &rt, fwd).await?;
            json(&diff(&client, fwd, ws, q).await?)
        }
        Op::PermissionList => json(&permission_list(&rt).await?),
        Op::PermissionReply => {
            let req: PermissionReply = required(op, body).await?;
            json(&permission_reply(&rt, req, fwd).await?)
        }
        // Reading the book never starts OpenCode.
        Op::PermissionGrants => json(&rt.grants.list()),
        Op::PermissionRevoke => {
            let req: GrantRevoke = required(op, body).await?;
            json(&revoke_grant(&rt, &req, fwd)?)
        }
        Op::QuestionReply => {
            let req: QuestionReply = required(op, body).await?;
            json(&question_reply(&rt, req, fwd.header.session.as_deref()).await?)
        }
        op if super::fs_git::serves(op) => super::fs_git::serve(&rt, fwd, body).await,
        // Admitted above only for served operations; watch_events has its own path.
        _ => Err(OpError::UnknownOp(op)),
    }
}

/// Whether `role` may start OpenCode here (as `opencode_start`: operator and above, and the
/// host's policy agrees).
fn may_start_opencode(workspaces: &Workspaces, role: Role) -> bool {
    matches!(
        authorize(Some(role), Op::OpencodeStart, Ownership::None),
        Decision::Allow
    ) && workspaces.policy().check(Op::OpencodeStart, role).is_ok()
}

/// The client for a read-only operation (`session_list`, `messages`, `diff`). A read starts a
/// stopped OpenCode only for a caller who may start it; anyone else (a viewer) is told it is
/// not running and who can start it.
async fn reader_client(
    workspaces: &Workspaces,
    rt: &WorkspaceRuntime,
    fwd: &ForwardHeader,
) -> Result<OpencodeClient, OpError> {
    if may_start_opencode(workspaces, fwd.role) {
        return Ok(rt.supervisor.ensure_ready().await?);
    }
    rt.supervisor.client_if_ready().ok_or_else(|| {
        not_started(
            &rt.workspace.name,
            fwd.header.host.as_ref().map(|h| h.as_str()),
            rt.supervisor.info().state,
        )
    })
}

/// What a caller who may not start OpenCode hears when it is not ready.
fn not_started(workspace: &str, host: Option<&str>, state: OpencodeState) -> OpError {
    let state = match state {
        OpencodeState::Starting | OpencodeState::Backoff => {
            return OpError::Unavailable(format!(
                "OpenCode is starting in workspace {workspace}; try again in a moment"
            ));
        }
        OpencodeState::Stopping | OpencodeState::Stopped | OpencodeState::Ready => "stopped",
        OpencodeState::Failed => "stopped after repeated failures",
    };
    OpError::Unavailable(format!(
        "OpenCode is {state} in workspace {workspace}; an operator can start it with \
         `cm-tui opencode start {} {workspace}`",
        host.unwrap_or("HOST")
    ))
}

fn workspace_list(workspaces: &Workspaces) -> Vec<WorkspaceInfo> {
    workspaces
        .iter()
        .map(|rt| WorkspaceInfo {
            name: rt.workspace.name.clone(),
            available: root_ok(rt).is_ok(),
            opencode: workspaces.leases().info(rt),
            sandbox: Some(crate::sandbox::report::info_for(
                &rt.workspace.name,
                &rt.workspace.sandbox,
            )),
        })
        .collect()
}

async fn session_list(client: &OpencodeClient) -> Result<Vec<SessionInfo>, OpError> {
    let mut sessions = client.list_sessions().await?;
    let statuses = client.session_status().await?;
    for s in &mut sessions {
        s.status = statuses.get(&s.id).cloned().unwrap_or(SessionStatus::Idle);
    }
    Ok(sessions)
}

async fn prompt(
    workspaces: &Workspaces,
    rt: &WorkspaceRuntime,
    session: &str,
    req: Prompt,
) -> Result<PromptAccepted, OpError> {
    if req.idempotency_key.is_empty() || req.idempotency_key.len() > MAX_KEY_LEN {
        return Err(OpError::BadRequest(format!(
            "idempotency_key must be 1 to {MAX_KEY_LEN} bytes"
        )));
    }
    if req.text.trim().is_empty() {
        return Err(OpError::BadRequest("the prompt is empty".into()));
    }
    // Held across the send: a concurrent retry waits and then finds the record.
    let mut record = rt.prompts.lock().await;
    match record.check(&req.idempotency_key, session) {
        Recorded::Duplicate(first) => {
            tracing::info!(key = %req.idempotency_key, "prompt retry answered from the idempotency record");
            return Ok(first);
        }
        Recorded::OtherSession { session: first } => {
            return Err(OpError::Conflict(format!(
                "idempotency key {} was already used for session {first}; use a new key per prompt",
                req.idempotency_key
            )));
        }
        Recorded::New => {}
    }
    provider_reachable(workspaces.opencode_config()).await?;
    let client = rt.supervisor.ensure_ready().await?;
    let message_id = new_message_id();
    client
        .prompt_async(session, &req.text, &message_id)
        .await
        .map_err(missing(|| {
            format!("no session {session} in workspace {}", rt.workspace.name)
        }))?;
    let accepted = PromptAccepted {
        session: session.to_owned(),
        message_id,
        duplicate: false,
    };
    record.record(&req.idempotency_key, &accepted);
    Ok(accepted)
}

/// Fails fast when the configured model's provider cannot be reached: OpenCode would retry it
/// for about 70 s and then fail without naming the cause. The URL and OS error go to the log;
/// the operator hears the provider and the fix.
async fn provider_reachable(cfg: &crate::config::OpencodeConfig) -> Result<(), OpError> {
    use crate::opencode::provider;
    let env = |k: &str| std::env::var(k).ok();
    // Without a model or a base URL there is nothing to check here (`cm-agent doctor` says so).
    let Ok(target) = provider::target(cfg, env) else {
        return Ok(());
    };
    let Some(url) = target.base_url.as_deref() else {
        return Ok(());
    };
    if provider::proxy_configured(env) {
        return Ok(());
    }
    provider::probe(url, provider::PROBE_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %target.provider, model = %target.model, %url, error = %e, "model provider unreachable; prompt refused");
            OpError::Unavailable(format!(
                "the model provider {p} (model {p}/{m}) cannot be reached from this host, so the prompt was not sent; \
                 the host owner should start it or fix options.baseURL in [opencode.provider.{p}] of the agent's config (`cm-agent doctor` checks it)",
                p = target.provider,
                m = target.model
            ))
        })
}

async fn abort(rt: &WorkspaceRuntime, session: &str) -> Result<Aborted, OpError> {
    let client = rt.supervisor.ensure_ready().await?;
    client.abort(session).await.map_err(missing(|| {
        format!("no session {session} in workspace {}", rt.workspace.name)
    }))?;
    // OpenCode leaves a pending permission request listed after an abort; reject it so the
    // operator's attention list clears (and questions likewise).
    let mut rejected = Vec::new();
    for p in client.permissions().await? {
        if p.session != session {
            continue;
        }
        match client
            .reply_permission(
                &p.id,
                PermissionAnswer::Reject,
                Some("the turn was aborted"),
            )
            .await
        {
            Ok(_) => {
                rt.mark_answered(&p.id);
                rejected.push(p.id);
            }
            Err(e) => tracing::debug!(request = %p.id, error = %e, "could not reject after abort"),
        }
    }
    for q in client.questions().await? {
        if q.session == session && client.reject_question(&q.id).await.is_ok() {
            rt.mark_answered(&q.id);
        }
    }
    Ok(Aborted {
        rejected_permissions: rejected,
    })
}

/// Newest messages that fit in one frame (oldest dropped first).
fn fit_messages(mut msgs: Vec<Message>) -> Result<Value, OpError> {
    let limit = proto::frame::MAX_FRAME_LEN - ENVELOPE;
    loop {
        let v = json(&msgs)?;
        let len = serde_json::to_vec(&v).map_or(0, |b| b.len());
        if len <= limit {
            return Ok(v);
        }
        if msgs.len() <= 1 {
            return Err(OpError::TooLarge { len, max: limit });
        }
        let drop = (msgs.len() / 4).max(1);
        tracing::info!(
            dropped = drop,
            len,
            "message history too large for one frame; sending the newest"
        );
        msgs.drain(..drop);
    }
}

async fn diff(
    client: &OpencodeClient,
    fwd: &ForwardHeader,
    ws: &str,
    q: DiffQuery,
) -> Result<Vec<FileDiff>, OpError> {
    match q {
        DiffQuery::Worktree => Ok(client.worktree_diff().await?),
        DiffQuery::Session { message_id } => {
            let session = session_of(fwd)?;
            let not_found = || format!("no session {session} in workspace {ws}");
            match message_id {
                Some(mid) => client
                    .session_diff(session, &mid)
                    .await
                    .map_err(missing(|| format!("no message {mid} in session {session}"))),
                None => {
                    // OpenCode answers [] without a message id, so gather per user turn.
                    let msgs = client
                        .messages(session, None)
                        .await
                        .map_err(missing(not_found))?;
                    let mut out = Vec::new();
                    for m in msgs.iter().filter(|m| m.role == "user") {
                        out.extend(client.session_diff(session, &m.id).await?);
                    }
                    Ok(out)
                }
            }
        }
    }
}

async fn permission_list(rt: &WorkspaceRuntime) -> Result<Pending, OpError> {
    // Not running means nothing is pending; listing must not start OpenCode.
    let Some(client) = rt.supervisor.client_if_ready() else {
        return Ok(Pending::default());
    };
    Ok(Pending {
        permissions: client.permissions().await?,
        questions: client.questions().await?,
    })
}

/// A 404 on an answer: a conflict if this agent answered it before, else unknown.
fn answer_error(rt: &WorkspaceRuntime, kind: &str, id: &str, e: ClientError) -> OpError {
    match e {
        ClientError::NotFound { .. } if rt.was_answered(id) => {
            OpError::Conflict(format!("{kind} {id} was already answered"))
        }
        ClientError::NotFound { .. } => OpError::NotFound(format!(
            "no pending {kind} {id} in workspace {}; it may have been answered or its turn aborted",
            rt.workspace.name
        )),
        other => OpError::Client(other),
    }
}

async fn permission_reply(
    rt: &WorkspaceRuntime,
    req: PermissionReply,
    fwd: &ForwardHeader,
) -> Result<bool, OpError> {
    let failed = |e| answer_error(rt, "permission request", &req.request_id, e);
    let Some(client) = rt.supervisor.client_if_ready() else {
        return Err(failed(not_running()));
    };
    let always = req.answer == PermissionAnswer::Always;
    if always && req.always_patterns.is_none() {
        return Err(OpError::BadRequest(GrantError::NoPatterns.to_string()));
    }
    let session = fwd.header.session.as_deref();
    let mut pending = Vec::new();
    if session.is_some() || always {
        pending = client.permissions().await.map_err(failed)?;
    }
    let request = pending.iter().find(|p| p.id == req.request_id);
    if let Some(session) = session {
        same_session(
            "permission request",
            &req.request_id,
            request.map(|p| p.session.as_str()),
            session,
        )?;
    }
    // "always" becomes a grant the agent keeps; OpenCode only ever hears "once".
    let grant = match (&req.always_patterns, request) {
        (Some(patterns), Some(request)) if always => {
            let now = cm_client::time::now_ms();
            let grant = rt
                .grants
                .grant(request, patterns, &fwd.principal, now)
                .map_err(|e| OpError::BadRequest(e.to_string()))?;
            Some(grant)
        }
        _ if always => return Err(failed(not_pending())),
        _ => None,
    };
    let answer = if always {
        PermissionAnswer::Once
    } else {
        req.answer
    };
    let ok = match client
        .reply_permission(&req.request_id, answer, req.message.as_deref())
        .await
    {
        Ok(ok) => ok,
        Err(e) => {
            if let Some(g) = &grant {
                rt.grants.revoke(&g.id);
            }
            return Err(failed(e));
        }
    };
    rt.mark_answered(&req.request_id);
    if let Some(grant) = grant {
        tracing::info!(
            target: "cm_agent::audit",
            workspace = %rt.workspace.name,
            grant = %grant.id,
            session = %grant.session,
            permission = %grant.permission,
            patterns = ?grant.patterns,
            principal = %fwd.principal,
            cred = %fwd.cred_id,
            "standing permission grant made: {}",
            grant.describe()
        );
        allow_covered(rt, &client, &pending, &req.request_id).await;
    }
    Ok(ok)
}

/// After a new grant: the other pending requests it covers are answered "once" too (as
/// OpenCode does for its own "always").
async fn allow_covered(
    rt: &WorkspaceRuntime,
    client: &OpencodeClient,
    pending: &[PermissionRequest],
    answered: &str,
) {
    for p in pending.iter().filter(|p| p.id != answered) {
        let Some(grant) = rt.grants.allow(p) else {
            continue;
        };
        match client
            .reply_permission(&p.id, PermissionAnswer::Once, None)
            .await
        {
            Ok(_) => {
                rt.mark_answered(&p.id);
                tracing::info!(
                    target: "cm_agent::audit",
                    request = %p.id,
                    session = %p.session,
                    grant = %grant.id,
                    granted_by = %grant.granted_by,
                    "permission allowed once by a standing grant"
                );
            }
            Err(e) => {
                tracing::debug!(request = %p.id, error = %e, "could not answer by the new grant")
            }
        }
    }
}

/// `permission_revoke`: ends a standing grant (audited).
fn revoke_grant(
    rt: &WorkspaceRuntime,
    req: &GrantRevoke,
    fwd: &ForwardHeader,
) -> Result<StandingGrant, OpError> {
    let grant = rt.grants.revoke(&req.id).ok_or_else(|| {
        OpError::NotFound(format!(
            "no standing grant {} in workspace {}; they end when OpenCode restarts (list them with `cm-tui permissions HOST WORKSPACE --always`)",
            req.id, rt.workspace.name
        ))
    })?;
    tracing::info!(
        target: "cm_agent::audit",
        workspace = %rt.workspace.name,
        grant = %grant.id,
        session = %grant.session,
        principal = %fwd.principal,
        cred = %fwd.cred_id,
        "standing permission grant revoked"
    );
    Ok(grant)
}

async fn question_reply(
    rt: &WorkspaceRuntime,
    req: QuestionReply,
    session: Option<&str>,
) -> Result<bool, OpError> {
    let Some(client) = rt.supervisor.client_if_ready() else {
        return Err(answer_error(rt, "question", &req.request_id, not_running()));
    };
    if let Some(session) = session {
        let pending = client
            .questions()
            .await
            .map_err(|e| answer_error(rt, "question", &req.request_id, e))?;
        let owner = pending.iter().find(|q| q.id == req.request_id);
        same_session(
            "question",
            &req.request_id,
            owner.map(|q| q.session.as_str()),
            session,
        )?;
    }
    let result = match &req.answers {
        Some(answers) => client.reply_question(&req.request_id, answers).await,
        None => client.reject_question(&req.request_id).await,
    };
    let ok = result.map_err(|e| answer_error(rt, "question", &req.request_id, e))?;
    rt.mark_answered(&req.request_id);
    Ok(ok)
}

/// The relay authorized the operator for the header's `session`; a pending request must belong
/// to it, or an operator could answer for sessions they may not drive. Fails closed: the
/// pending list is read with `?` by the callers. An id that is not pending is left to OpenCode
/// (it answers "not found").
fn same_session(what: &str, id: &str, owner: Option<&str>, session: &str) -> Result<(), OpError> {
    match owner {
        Some(owner) if owner != session => Err(OpError::BadRequest(format!(
            "{what} {id} belongs to another session than {session}"
        ))),
        _ => Ok(()),
    }
}

/// An "always" for a request that is not pending cannot be checked against what it offered.
fn not_pending() -> ClientError {
    ClientError::NotFound {
        what: "the request is not pending".into(),
        body: String::new(),
    }
}

/// With OpenCode stopped nothing is pending: answering behaves like an unknown request.
fn not_running() -> ClientError {
    ClientError::NotFound {
        what: "OpenCode is not running".into(),
        body: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_that_never_comes_ends_the_stream() {
        // The sender keeps its side open and sends nothing (a header-only stream).
        let (quiet, _held_open) = tokio::io::duplex(64);
        let mut body = FrameReader::new(quiet, 1024);
        let e = next_body::<Value, _>(
            Op::Messages,
            &mut body,
            std::time::Duration::from_millis(20),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("no complete body for messages"),
            "{e}"
        );
    }

    #[test]
    fn an_answer_must_name_the_session_its_request_belongs_to() {
        assert!(same_session("question", "que_1", Some("ses_a"), "ses_a").is_ok());
        let e = same_session("question", "que_1", Some("ses_b"), "ses_a").unwrap_err();
        assert!(
            e.to_string()
                .contains("que_1 belongs to another session than ses_a"),
            "{e}"
        );
        assert!(
            same_session("permission request", "per_1", None, "ses_a").is_ok(),
            "an unknown id is left to OpenCode"
        );
    }
}
