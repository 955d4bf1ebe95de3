//! The model provider's API key comes from the host's environment: `apiKey = "{env:NAME}"` in
//! `[opencode.provider.<id>]` of agent.toml reaches the provider as the bearer token, through
//! the real agent, its keeper and OpenCode. The config is the one a new user writes for an
//! OpenAI-compatible server (here the test model).

use crate::harness::{World, header};
use anyhow::{Context as _, Result, ensure};
use cm_client as client;
use proto::header::Op;
use proto::ops::{CreateSession, Prompt, PromptAccepted, SessionInfo};

const KEY_VAR: &str = "CM_TEST_PROVIDER_KEY";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_key_is_read_from_the_agents_environment() -> Result<()> {
    let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
    let opencode = format!(
        r#"
[opencode]
model = "mock/mock-model"

[opencode.provider.mock]
npm = "@ai-sdk/openai-compatible"
options = {{ baseURL = "{}", apiKey = "{{env:{KEY_VAR}}}" }}
models = {{ mock-model = {{ name = "Mock", tool_call = true, limit = {{ context = 128000, output = 4096 }} }} }}
"#,
        model.base_url()
    );
    let world = World::start(&opencode).await?;
    let mut agent = world.spawn_agent_with(&[(KEY_VAR, "sk-from-the-host-env")])?;
    agent.log.wait_line(&["agent started"])?;
    let owner = world.owner().await?;
    let ses: SessionInfo = client::request(
        &owner.conn,
        &header(Op::SessionCreate),
        Some(&CreateSession { title: None }),
    )
    .await?;
    let mut h = header(Op::Prompt);
    h.session = Some(ses.id.clone());
    let _: PromptAccepted = client::request(
        &owner.conn,
        &h,
        Some(&Prompt {
            text: "Say hello".into(),
            idempotency_key: "k1".into(),
            model: None,
            agent: None,
        }),
    )
    .await?;
    let bodies = tokio::time::timeout(crate::harness::WAIT, model.wait_for_requests(1))
        .await
        .context("the prompt never reached the model")?;
    ensure!(!bodies.is_empty());
    let auth: Vec<Option<String>> = model
        .records()
        .into_iter()
        .filter(|r| r.is_chat_completion())
        .map(|r| r.authorization)
        .collect();
    ensure!(
        auth.iter()
            .all(|a| a.as_deref() == Some("Bearer sk-from-the-host-env")),
        "{auth:?}"
    );
    agent.terminate()?;
    world.shutdown().await;
    model.shutdown().await;
    Ok(())
}
