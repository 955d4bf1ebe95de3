//! `model_list` and the check of a prompt's model and agent: what the workspace's OpenCode
//! offers (`config/providers`, `agent`), narrowed by the host's `[opencode] allowed_models`.

use super::admit::reader_client;
use super::error::OpError;
use super::handler::{Cx, Handler};
use crate::config::OpencodeConfig;
use crate::opencode::client::OpencodeClient;
use crate::opencode::models::{self, ChoiceError};
use proto::op;
use proto::ops::ModelCatalog;

impl Handler for op::ModelList {
    /// A read: it starts a stopped OpenCode only for a caller who may start it.
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<ModelCatalog, OpError> {
        let client = reader_client(cx).await?;
        catalog(&client, cx.workspaces.opencode_config()).await
    }
}

/// What `client`'s OpenCode offers, as the host allows it.
pub(super) async fn catalog(
    client: &OpencodeClient,
    cfg: &OpencodeConfig,
) -> Result<ModelCatalog, OpError> {
    let providers = client.providers().await?;
    let agents = client.agents().await?;
    Ok(models::catalog(
        &providers,
        &agents,
        &cfg.allowed_models,
        cfg.model.as_deref(),
    ))
}

/// The operator-facing refusal of a choice: the host's restriction is a policy refusal
/// (`forbidden`), anything else a bad request; both name what may be picked.
pub(super) fn refused(e: ChoiceError) -> OpError {
    match e {
        ChoiceError::NotAllowed { .. } => OpError::Contained {
            rule: "allowed_models",
            message: e.to_string(),
        },
        other => OpError::BadRequest(other.to_string()),
    }
}
