//! `workspace_candidates`, `workspace_add` and `workspace_remove`: workspaces made from the
//! immediate subfolders of roots the host opened for it (`subworkspaces = true`).

use super::error::OpError;
use super::handler::{Cx, Handler};
use crate::workspaces::added::AddError;
use proto::op;
use proto::ops::WorkspaceInfo;
use proto::workspace::{WorkspaceAdd, WorkspaceCandidates, WorkspaceRemoved};

impl From<AddError> for OpError {
    fn from(e: AddError) -> Self {
        let contained = |rule: &'static str, e: &AddError| Self::Contained {
            rule,
            message: e.to_string(),
        };
        match &e {
            AddError::NotAllowed { .. } => contained("subworkspaces_off", &e),
            AddError::FolderName { .. } => contained("folder_name", &e),
            AddError::NotAFolder { rule, .. } => contained(rule, &e),
            AddError::Configured { .. } => contained("configured_workspace", &e),
            AddError::BadName { .. } => Self::BadRequest(e.to_string()),
            AddError::Taken(_) | AddError::TooMany => Self::Conflict(e.to_string()),
            AddError::Persist(_) => Self::Unavailable(e.to_string()),
        }
    }
}

impl Handler for op::WorkspaceCandidates {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<WorkspaceCandidates, OpError> {
        Ok(cx
            .workspaces
            .candidates(cx.fwd.header.workspace.as_deref())?)
    }
}

impl Handler for op::WorkspaceAdd {
    async fn handle(cx: &Cx<'_>, q: WorkspaceAdd) -> Result<WorkspaceInfo, OpError> {
        let root = cx.rt()?.workspace.name.clone();
        let rt = cx
            .workspaces
            .add(&root, &q.folder, q.name.as_deref())
            .await?;
        tracing::info!(
            target: "cm_agent::audit",
            principal = %cx.fwd.principal,
            workspace = %rt.workspace.name,
            root = %root,
            "workspace added"
        );
        Ok(super::handlers::workspace_info(cx.workspaces, &rt))
    }
}

impl Handler for op::WorkspaceRemove {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<WorkspaceRemoved, OpError> {
        let name = cx.rt()?.workspace.name.clone();
        let r = cx.workspaces.remove(&name).await?;
        tracing::info!(
            target: "cm_agent::audit",
            principal = %cx.fwd.principal,
            workspace = %name,
            "workspace removed"
        );
        Ok(WorkspaceRemoved {
            name: r.name,
            root: r.parent,
            folder: r.folder,
        })
    }
}
