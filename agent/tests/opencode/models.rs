//! The model and agent of a prompt: `model_list` lists what the host's OpenCode offers as the
//! host allows it; a prompt with `model` reaches the model it names (the test model sees the
//! name); a model or agent outside that list is refused naming the allowed ones, and nothing
//! reaches OpenCode's session.

use crate::harness::{EVENT_WAIT, Env};
use anyhow::{Context as _, Result, bail, ensure};
use proto::event::Event;
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{Message, ModelCatalog, OpencodeInfo, PromptAccepted, SessionInfo};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;
use serde_json::{Value, json};

const WS: &str = "models";

/// Two models of the test model's provider (`mock`), and a second provider (`paid`) OpenCode
/// offers but the host's `allowed_models` does not.
async fn env() -> Result<Env> {
    Env::start_with(&[WS], None, |cfg| {
        let Some(providers) = cfg.provider.as_mut() else {
            return;
        };
        let Some(mock) = providers.get("mock").cloned() else {
            return;
        };
        let mut with_other = mock.clone();
        with_other["models"]["mock-other"] = json!({ "name": "Mock Other", "tool_call": true });
        providers.insert("mock".into(), with_other);
        let mut paid = mock;
        paid["name"] = json!("Paid LLM");
        paid["models"] = json!({ "big": { "name": "Big" } });
        providers.insert("paid".into(), paid);
        cfg.enabled_providers = Some(vec!["mock".into(), "paid".into()]);
        cfg.allowed_models = vec!["mock/*".into()];
    })
    .await
}

async fn refused(env: &Env, session: &str, body: Value) -> Result<proto::wire_error::WireError> {
    match env
        .call::<PromptAccepted>(Op::Prompt, Some(WS), Some(session), Some(body.clone()))
        .await?
    {
        Reply::Error(e) => Ok(e),
        Reply::Ok(a) => bail!("{body} was accepted: {a:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_pick_only_models_and_agents_the_host_offers_and_allows() -> Result<()> {
    let env = env().await?;

    // A viewer's model_list does not start a stopped OpenCode (as every read).
    match env
        .call_as::<ModelCatalog>(Role::Viewer, Op::ModelList, Some(WS), None, None)
        .await?
    {
        Reply::Error(e) => ensure!(
            e.code == ErrorCode::Unavailable && e.message.contains("stopped"),
            "{e}"
        ),
        Reply::Ok(c) => bail!("a viewer's model_list started OpenCode: {c:?}"),
    }
    let _: OpencodeInfo = env.ok(Op::OpencodeStart, WS, None, None).await?;

    // model_list (a viewer may ask): the allowed models, the default marked, the agents.
    let catalog = match env
        .call_as::<ModelCatalog>(Role::Viewer, Op::ModelList, Some(WS), None, None)
        .await?
    {
        Reply::Ok(c) => c,
        Reply::Error(e) => bail!("model_list failed: {e}"),
    };
    let refs: Vec<String> = catalog.models.iter().map(|m| m.reference()).collect();
    ensure!(
        refs == ["mock/mock-model", "mock/mock-other"],
        "paid/big is offered but not allowed: {catalog:?}"
    );
    ensure!(
        catalog.default.as_deref() == Some("mock/mock-model") && catalog.models[0].default,
        "{catalog:?}"
    );
    let agents: Vec<&str> = catalog.agents.iter().map(|a| a.name.as_str()).collect();
    ensure!(
        agents.contains(&"build") && agents.contains(&"plan"),
        "{agents:?}"
    );

    // Refusals: nothing reaches the session.
    let ses: SessionInfo = env
        .ok(
            Op::SessionCreate,
            WS,
            None,
            Some(json!({"title": "refused"})),
        )
        .await?;
    let e = refused(
        &env,
        &ses.id,
        json!({"text": "hi", "idempotency_key": "k1", "model": "paid/big"}),
    )
    .await?;
    ensure!(e.code == ErrorCode::Forbidden, "{e}");
    ensure!(
        e.message.contains("paid/big is not allowed on this host") && e.message.contains("mock/*"),
        "{e}"
    );
    let e = refused(
        &env,
        &ses.id,
        json!({"text": "hi", "idempotency_key": "k2", "model": "mock/nope"}),
    )
    .await?;
    ensure!(e.code == ErrorCode::BadRequest, "{e}");
    ensure!(
        e.message
            .contains("mock/nope is not offered by this host's OpenCode; pick one of: mock/mock-model, mock/mock-other"),
        "{e}"
    );
    let e = refused(
        &env,
        &ses.id,
        json!({"text": "hi", "idempotency_key": "k3", "agent": "no-such-agent"}),
    )
    .await?;
    ensure!(e.code == ErrorCode::BadRequest, "{e}");
    ensure!(
        e.message.contains("agent \"no-such-agent\" is not offered") && e.message.contains("plan"),
        "{e}"
    );
    let history: Vec<Message> = env.ok(Op::Messages, WS, Some(&ses.id), None).await?;
    ensure!(
        history.is_empty(),
        "a refused prompt reached OpenCode: {history:?}"
    );
    ensure!(
        env.model.requests().is_empty(),
        "{:?}",
        env.model.requests()
    );

    // A prompt with a model and an agent: the test model is asked for that model.
    let mut watch = env.watch(WS, None).await?;
    let ses: SessionInfo = env
        .ok(
            Op::SessionCreate,
            WS,
            None,
            Some(json!({"title": "picked"})),
        )
        .await?;
    let accepted: PromptAccepted = env
        .ok(
            Op::Prompt,
            WS,
            Some(&ses.id),
            Some(json!({"text": "Say hello", "idempotency_key": "k4", "model": "mock/mock-other", "agent": "plan"})),
        )
        .await?;
    ensure!(!accepted.duplicate, "{accepted:?}");
    watch
        .until(
            "the turn's end",
            |e| matches!(e, Event::SessionIdle { session } if *session == ses.id),
        )
        .await?;
    let bodies = tokio::time::timeout(EVENT_WAIT, env.model.wait_for_requests(1))
        .await
        .context("the test model got no request")?;
    let asked: Vec<&str> = bodies.iter().filter_map(|b| b["model"].as_str()).collect();
    ensure!(
        !asked.is_empty() && asked.iter().all(|m| *m == "mock-other"),
        "the test model was asked for {asked:?}"
    );
    let history: Vec<Message> = env.ok(Op::Messages, WS, Some(&ses.id), None).await?;
    ensure!(history.len() >= 2, "{history:?}");

    // Without a model, under the host's restriction, every prompt names the host's (allowed)
    // default explicitly — in the session that last used another model too — so neither an
    // agent's own model nor a workspace's OpenCode config can run a model the host does not
    // allow ...
    let mut asked = Vec::new();
    for (session, key) in [(ses.id.clone(), "k5"), (String::new(), "k6")] {
        let session = if session.is_empty() {
            // ... and a new session starts on it.
            let s: SessionInfo = env
                .ok(
                    Op::SessionCreate,
                    WS,
                    None,
                    Some(json!({"title": "default"})),
                )
                .await?;
            s.id
        } else {
            session
        };
        let _: PromptAccepted = env
            .ok(
                Op::Prompt,
                WS,
                Some(&session),
                Some(json!({"text": "Say hello again", "idempotency_key": key})),
            )
            .await?;
        watch
            .until(
                "the turn's end",
                |e| matches!(e, Event::SessionIdle { session: s } if *s == session),
            )
            .await?;
        let bodies = env.model.requests();
        asked.push(
            bodies
                .last()
                .and_then(|b| b["model"].as_str())
                .map(str::to_owned),
        );
    }
    ensure!(
        asked == [Some("mock-model".to_owned()), Some("mock-model".to_owned())],
        "asked for {asked:?}"
    );
    env.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picked_model_whose_provider_is_unreachable_fails_at_once_naming_it() -> Result<()> {
    // A port that was just closed: connections to it are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let env = Env::start_with(&[WS], None, |cfg| {
        let Some(providers) = cfg.provider.as_mut() else {
            return;
        };
        let Some(mut paid) = providers.get("mock").cloned() else {
            return;
        };
        paid["options"]["baseURL"] = json!(format!("http://{closed}/v1"));
        paid["models"] = json!({ "big": { "name": "Big" } });
        providers.insert("paid".into(), paid);
        cfg.enabled_providers = Some(vec!["mock".into(), "paid".into()]);
    })
    .await?;
    let ses: SessionInfo = env
        .ok(Op::SessionCreate, WS, None, Some(json!({"title": "t"})))
        .await?;
    let e = refused(
        &env,
        &ses.id,
        json!({"text": "hi", "idempotency_key": "k1", "model": "paid/big"}),
    )
    .await?;
    ensure!(e.code == ErrorCode::Unavailable, "{e}");
    ensure!(
        e.message
            .contains("model provider paid (model paid/big) cannot be reached")
            && e.message.contains("[opencode.provider.paid]"),
        "{e}"
    );
    env.shutdown().await;
    Ok(())
}
