//! `template_apply` and `mcp_list`: a template — resolved by the relay for a relay-trusted
//! host, or sent by the operator's laptop inside the signed and sealed body for a zero-trust
//! host (the gate checked the signature over it, and it must be the template the signed header
//! names) — is checked against the host's policy, recorded as what the workspace runs, and its
//! OpenCode restarted to take it;
//! `mcp_list` reports OpenCode's MCP servers with the template that defined them.

use super::error::OpError;
use super::frames::write_frame;
use super::handler::{Cx, Handler, StreamHandler};
use crate::template::HostLimits;
use proto::frame::MAX_FRAME_LEN;
use proto::message::Reply;
use proto::op;
use proto::template::{
    McpServerInfo, Template, TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateRef,
};
use std::future::Future;
use tokio::io::AsyncWrite;

impl StreamHandler for op::TemplateApply {
    async fn serve<W, G>(cx: &Cx<'_>, q: TemplateApply, send: &mut W, _peer_gone: G)
    where
        W: AsyncWrite + Unpin + Send,
        G: Future<Output = ()> + Send,
    {
        // Once accepted, the apply runs to its end even if the operator leaves.
        let _one_at_a_time = match cx.rt() {
            Ok(rt) => {
                cx.workspaces
                    .templates()
                    .apply_lock(&rt.workspace.name)
                    .await
            }
            Err(e) => {
                super::write_reply(send, Err(e)).await;
                return;
            }
        };
        let accepted = accept(cx, q);
        let (template, rt) = match accepted {
            Ok(a) => a,
            Err(e) => {
                super::write_reply(send, Err(e)).await;
                return;
            }
        };
        let restart = crate::lease::is_running(&rt.supervisor.info());
        let first = TemplateApplied {
            template: template.id.clone(),
            restart,
        };
        let _ = write_frame(send, &Reply::Ok(first), MAX_FRAME_LEN).await;
        tracing::info!(
            target: "cm_agent::audit",
            workspace = %rt.workspace.name,
            template = %template.id.name,
            version = template.id.version,
            hash = %template.id.hash,
            principal = %cx.fwd.principal,
            restart,
            "template applied"
        );
        let last = if restart {
            let _ = write_frame(send, &TemplateApplyEvent::Stopping, MAX_FRAME_LEN).await;
            rt.supervisor.stop().await;
            let _ = write_frame(send, &TemplateApplyEvent::Starting, MAX_FRAME_LEN).await;
            match rt.supervisor.ensure_ready().await {
                Ok(_) => TemplateApplyEvent::Done,
                Err(e) => TemplateApplyEvent::Failed {
                    message: format!(
                        "the template is recorded but OpenCode did not come back: {e}"
                    ),
                },
            }
        } else {
            TemplateApplyEvent::Done
        };
        let _ = write_frame(send, &last, MAX_FRAME_LEN).await;
    }
}

/// The checks before anything changes: a template that is the one the operator signed for (on
/// a zero-trust host) and passes the host's policy, recorded as what the workspace runs.
fn accept<'a>(
    cx: &'a Cx<'_>,
    q: TemplateApply,
) -> Result<(Template, &'a crate::workspaces::WorkspaceRuntime), OpError> {
    let rt = cx.rt()?;
    let Some(template) = q.resolved else {
        return Err(OpError::BadRequest(
            "the request carries no template (the relay fills it in for a relay-trusted host, cm-tui for a zero-trust one); upgrade them".into(),
        ));
    };
    if let Some(signed) = signed_template(cx)
        && signed.as_ref() != Some(&template.id)
    {
        return Err(OpError::BadRequest(format!(
            "the template in the body ({} v{}) is not the one the signed header names; update cm-tui",
            template.id.name, template.id.version
        )));
    }
    if template.id.name != q.name || q.version.is_some_and(|v| v != template.id.version) {
        return Err(OpError::BadRequest(format!(
            "the relay resolved template {} v{} for a request of {}; upgrade the relay",
            template.id.name, template.id.version, q.name
        )));
    }
    let store = cx.workspaces.templates();
    let limits = HostLimits {
        policy: store.policy(),
        allowed_models: &cx.workspaces.opencode_config().allowed_models,
        permissions: &rt.workspace.permissions,
    };
    if let Err(e) = crate::template::check(&template, &limits) {
        tracing::warn!(
            target: "cm_agent::audit",
            rule = "template_policy",
            op = cx.fwd.header.op.as_str(),
            principal = %cx.fwd.principal,
            cred = %cx.fwd.cred_id,
            workspace = %rt.workspace.name,
            error = %e,
            "template refused"
        );
        return Err(OpError::Contained {
            rule: "template_policy",
            message: e.to_string(),
        });
    }
    store.save(&rt.workspace.name, &template).map_err(|e| {
        tracing::error!(workspace = %rt.workspace.name, error = %e, "cannot record the applied template");
        OpError::Unavailable(
            "the host cannot record the template in its state folder; see the agent's log".into(),
        )
    })?;
    Ok((template, rt))
}

/// On a zero-trust host (a signed header, verified by the gate): the template the operator
/// named in it. `None` on a relay-trusted host.
fn signed_template(cx: &Cx<'_>) -> Option<Option<TemplateRef>> {
    let auth = cx.fwd.header.auth.as_ref()?;
    Some(auth.open().ok().and_then(|fields| fields.template))
}

impl Handler for op::McpList {
    /// A read: never starts OpenCode.
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Vec<McpServerInfo>, OpError> {
        let rt = cx.rt()?;
        let template = cx.workspaces.templates().get(&rt.workspace.name);
        let status = match rt.supervisor.client_if_ready() {
            Some(client) => Some(client.mcp_status().await?),
            None => None,
        };
        Ok(crate::template::mcp_servers(
            status.as_ref(),
            template.as_ref(),
        ))
    }
}
