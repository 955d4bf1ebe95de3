//! The checks every operation passes first, and who may have OpenCode started by a read.

use super::error::OpError;
use super::handler::Cx;
use crate::opencode::client::OpencodeClient;
use crate::workspaces::{WorkspaceRuntime, Workspaces};
use proto::header::Op;
use proto::ops::{ForwardHeader, OpencodeState};
use proto::rbac::{Decision, Ownership, Role, authorize};
use std::sync::Arc;

/// The checks, in order: role, then (for workspace operations) the workspace and its root.
/// Returns the workspace, or `None` for host-wide operations.
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
    // Host-wide operations: every workspace, every root's candidates; the port ones take a
    // workspace only to narrow what they show.
    let host_wide = matches!(op, Op::PortList | Op::PortForward | Op::WorkspaceCandidates);
    // `e2e_open` is host-wide too (a relay-trusted host answers that it has no end-to-end key).
    if matches!(op, Op::WorkspaceList | Op::E2eOpen)
        || (host_wide && fwd.header.workspace.is_none())
    {
        return Ok(None);
    }
    if !super::handler::serves(op) {
        return Err(OpError::UnknownOp(op));
    }
    let name = fwd.header.workspace.as_deref().ok_or_else(|| {
        OpError::BadRequest(format!("{} needs a workspace in the header", op.as_str()))
    })?;
    let rt = workspaces.get(name).ok_or_else(|| OpError::NoWorkspace {
        name: name.to_owned(),
        known: workspaces.names(),
    })?;
    if op == Op::WorkspaceRemove {
        // Forgetting a workspace needs no folder: one that vanished can be removed too.
        return Ok(Some(rt));
    }
    root_ok(&rt)?;
    rt.supervisor.touch();
    let running = crate::lease::is_running(&rt.supervisor.info());
    workspaces
        .leases()
        .on_op(name, &fwd.cred_id, fwd.role, running);
    Ok(Some(rt))
}

/// The workspace root must still be a readable folder.
pub(super) fn root_ok(rt: &WorkspaceRuntime) -> Result<(), OpError> {
    rt.root_problem().map_or(Ok(()), |reason| {
        Err(OpError::RootUnavailable {
            name: rt.workspace.name.clone(),
            path: rt.workspace.root.display().to_string(),
            reason,
        })
    })
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
pub(super) async fn reader_client(cx: &Cx<'_>) -> Result<OpencodeClient, OpError> {
    let rt = cx.rt()?;
    if may_start_opencode(cx.workspaces, cx.fwd.role) {
        return Ok(rt.supervisor.ensure_ready().await?);
    }
    rt.supervisor.client_if_ready().ok_or_else(|| {
        not_started(
            &rt.workspace.name,
            cx.fwd.header.host.as_ref().map(|h| h.as_str()),
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
