//! The handlers of the permission and question operations: pending requests, answers, and
//! the standing grants an "always" answer makes (kept by the agent, see `proto::grant`).

use super::error::OpError;
use super::handler::{Cx, Handler};
use crate::grants::GrantError;
use crate::opencode::client::{ClientError, OpencodeClient};
use crate::workspaces::WorkspaceRuntime;
use proto::grant::{GrantRevoke, StandingGrant};
use proto::op;
use proto::ops::{
    ForwardHeader, Pending, PermissionAnswer, PermissionReply, PermissionRequest, QuestionReply,
};

impl Handler for op::PermissionList {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Pending, OpError> {
        permission_list(cx.rt()?).await
    }
}

impl Handler for op::PermissionReply {
    async fn handle(cx: &Cx<'_>, req: PermissionReply) -> Result<bool, OpError> {
        permission_reply(cx.rt()?, req, cx.fwd).await
    }
}

// Reading the book never starts OpenCode.
impl Handler for op::PermissionGrants {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Vec<StandingGrant>, OpError> {
        Ok(cx.rt()?.grants.list())
    }
}

impl Handler for op::PermissionRevoke {
    async fn handle(cx: &Cx<'_>, req: GrantRevoke) -> Result<StandingGrant, OpError> {
        revoke_grant(cx.rt()?, &req, cx.fwd)
    }
}

impl Handler for op::QuestionReply {
    async fn handle(cx: &Cx<'_>, req: QuestionReply) -> Result<bool, OpError> {
        question_reply(cx.rt()?, req, cx.fwd.header.session.as_deref()).await
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
