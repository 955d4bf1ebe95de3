//! The handlers of the workspace, OpenCode and session operations: each turns a typed request
//! into OpenCode client calls and answers with its operation's reply type.

use super::admit::{reader_client, root_ok};
use super::error::OpError;
use super::handler::{Cx, Handler, json};
use crate::idempotency::{MAX_KEY_LEN, Recorded};
use crate::opencode::client::{ClientError, OpencodeClient, PromptChoice};
use crate::opencode::ids::new_message_id;
use crate::workspaces::{WorkspaceRuntime, Workspaces};
use proto::op;
use proto::ops::{
    Aborted, CreateSession, DiffQuery, FileDiff, Message, MessagesQuery, OpencodeInfo,
    PermissionAnswer, Prompt, PromptAccepted, RenameSession, SessionInfo, SessionStatus,
    WorkspaceInfo,
};
use proto::queue::PromptOutcome;

/// Room left in a frame for the `Reply` envelope around a list.
const ENVELOPE: usize = 64;

/// A 404 from OpenCode, said in the operator's terms.
pub(super) fn missing(what: impl FnOnce() -> String) -> impl FnOnce(ClientError) -> OpError {
    move |e| match e {
        ClientError::NotFound { .. } => OpError::NotFound(what()),
        other => OpError::Client(other),
    }
}

/// "no session S in workspace W".
fn no_session(session: &str, rt: &WorkspaceRuntime) -> impl FnOnce(ClientError) -> OpError {
    let text = format!("no session {session} in workspace {}", rt.workspace.name);
    missing(move || text)
}

impl Handler for op::WorkspaceList {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Vec<WorkspaceInfo>, OpError> {
        Ok(workspace_list(cx.workspaces))
    }
}

impl Handler for op::OpencodeStatus {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<OpencodeInfo, OpError> {
        Ok(cx.rt()?.supervisor.info())
    }
}

impl Handler for op::OpencodeStart {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<OpencodeInfo, OpError> {
        let rt = cx.rt()?;
        rt.supervisor.ensure_ready().await?;
        Ok(rt.supervisor.info())
    }
}

impl Handler for op::OpencodeStop {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<OpencodeInfo, OpError> {
        Ok(cx.rt()?.supervisor.stop().await)
    }
}

impl Handler for op::SessionList {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Vec<SessionInfo>, OpError> {
        session_list(&reader_client(cx).await?).await
    }
}

impl Handler for op::SessionCreate {
    async fn handle(cx: &Cx<'_>, req: CreateSession) -> Result<SessionInfo, OpError> {
        let client = cx.rt()?.supervisor.ensure_ready().await?;
        Ok(client.create_session(req.title.as_deref()).await?)
    }
}

impl Handler for op::SessionDelete {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<bool, OpError> {
        let (rt, session) = (cx.rt()?, cx.session()?);
        let client = rt.supervisor.ensure_ready().await?;
        client
            .delete_session(session)
            .await
            .map_err(no_session(session, rt))
    }
}

impl Handler for op::SessionRename {
    async fn handle(cx: &Cx<'_>, req: RenameSession) -> Result<SessionInfo, OpError> {
        let (rt, session) = (cx.rt()?, cx.session()?);
        let client = rt.supervisor.ensure_ready().await?;
        client
            .rename_session(session, &req.title)
            .await
            .map_err(no_session(session, rt))
    }
}

impl Handler for op::Prompt {
    async fn handle(cx: &Cx<'_>, req: Prompt) -> Result<PromptOutcome, OpError> {
        let (rt, session) = (cx.rt()?, cx.session()?);
        Ok(PromptOutcome::Accepted(
            prompt(cx.workspaces, rt, session, req).await?,
        ))
    }
}

impl Handler for op::Abort {
    async fn handle(cx: &Cx<'_>, (): ()) -> Result<Aborted, OpError> {
        abort(cx.rt()?, cx.session()?).await
    }
}

impl Handler for op::Messages {
    async fn handle(cx: &Cx<'_>, q: MessagesQuery) -> Result<Vec<Message>, OpError> {
        let (rt, session) = (cx.rt()?, cx.session()?);
        let client = reader_client(cx).await?;
        let msgs = client
            .messages(session, q.limit)
            .await
            .map_err(no_session(session, rt))?;
        fit_messages(msgs)
    }
}

impl Handler for op::Diff {
    async fn handle(cx: &Cx<'_>, q: DiffQuery) -> Result<Vec<FileDiff>, OpError> {
        let client = reader_client(cx).await?;
        diff(&client, cx, q).await
    }
}

fn workspace_list(workspaces: &Workspaces) -> Vec<WorkspaceInfo> {
    workspaces
        .iter()
        .iter()
        .map(|rt| workspace_info(workspaces, rt))
        .collect()
}

/// One workspace as `workspace_list` shows it.
pub(super) fn workspace_info(workspaces: &Workspaces, rt: &WorkspaceRuntime) -> WorkspaceInfo {
    WorkspaceInfo {
        name: rt.workspace.name.clone(),
        available: root_ok(rt).is_ok(),
        opencode: rt.supervisor.info(),
        sandbox: Some(crate::sandbox::report::info_for(
            &rt.workspace.name,
            &rt.workspace.sandbox,
        )),
        template: workspaces.templates().reference(&rt.workspace.name),
    }
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
    let cfg = workspaces.opencode_config();
    // The host's restriction needs no OpenCode: refuse before starting it.
    if let Some(model) = req.model.as_deref() {
        crate::opencode::models::check_host_allows(&cfg.allowed_models, model)
            .map_err(super::models::refused)?;
    }
    provider_reachable(cfg, req.model.as_deref()).await?;
    let client = rt.supervisor.ensure_ready().await?;
    // Under a host restriction every prompt is checked and names an allowed model, so neither
    // an agent's own model nor the workspace's OpenCode config can pick another.
    let mut model = req.model.clone();
    if req.model.is_some() || req.agent.is_some() || !cfg.allowed_models.is_empty() {
        let catalog = super::models::catalog(&client, cfg).await?;
        crate::opencode::models::check_choice(&catalog, req.model.as_deref(), req.agent.as_deref())
            .map_err(super::models::refused)?;
        model = crate::opencode::models::effective_model(&catalog, req.model.as_deref())
            .map_err(super::models::refused)?;
    }
    let choice = PromptChoice {
        model: model.as_deref().and_then(crate::opencode::models::split),
        agent: req.agent.as_deref(),
    };
    let message_id = new_message_id();
    client
        .prompt_async(session, &req.text, &message_id, &choice)
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

/// Fails fast when the model's provider (the prompt's `picked` one, else the configured one)
/// cannot be reached: OpenCode would retry it for about 70 s and then fail without naming the
/// cause. The URL and OS error go to the log; the operator hears the provider and the fix.
async fn provider_reachable(
    cfg: &crate::config::OpencodeConfig,
    picked: Option<&str>,
) -> Result<(), OpError> {
    use crate::opencode::provider;
    let with_pick;
    let cfg = match picked {
        Some(model) => {
            with_pick = crate::config::OpencodeConfig {
                model: Some(model.to_owned()),
                ..cfg.clone()
            };
            &with_pick
        }
        None => cfg,
    };
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
fn fit_messages(mut msgs: Vec<Message>) -> Result<Vec<Message>, OpError> {
    let limit = proto::frame::MAX_FRAME_LEN - ENVELOPE;
    loop {
        let len = serde_json::to_vec(&json(&msgs)?).map_or(0, |b| b.len());
        if len <= limit {
            return Ok(msgs);
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
    cx: &Cx<'_>,
    q: DiffQuery,
) -> Result<Vec<FileDiff>, OpError> {
    match q {
        DiffQuery::Worktree => Ok(client.worktree_diff().await?),
        DiffQuery::Session { message_id } => {
            let session = cx.session()?;
            let ws = &cx.rt()?.workspace.name;
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
