//! A prompt whose model provider cannot be reached fails at once, naming the provider and the
//! fix (OpenCode itself would retry for about 70 s and then fail without naming the cause).

use crate::harness::Env;
use anyhow::{Result, bail, ensure};
use proto::header::Op;
use proto::message::Reply;
use proto::ops::{PromptAccepted, SessionInfo};
use proto::wire_error::ErrorCode;
use serde_json::json;

const WS: &str = "prov";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_to_an_unreachable_provider_fails_at_once_naming_it() -> Result<()> {
    // A port that was just closed: connections to it are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let env = Env::start_with(&[WS], None, |cfg| {
        if let Some(mock) = cfg.provider.as_mut().and_then(|p| p.get_mut("mock")) {
            mock["options"]["baseURL"] = json!(format!("http://{closed}/v1"));
        }
    })
    .await?;
    let ses: SessionInfo = env
        .ok(Op::SessionCreate, WS, None, Some(json!({"title": "t"})))
        .await?;
    let reply = env
        .call::<PromptAccepted>(
            Op::Prompt,
            Some(WS),
            Some(&ses.id),
            Some(json!({"text": "hello", "idempotency_key": "k1"})),
        )
        .await?;
    match reply {
        Reply::Error(e) => {
            ensure!(e.code == ErrorCode::Unavailable, "{e}");
            ensure!(
                e.message
                    .contains("model provider mock (model mock/mock-model) cannot be reached")
                    && e.message.contains("[opencode.provider.mock]")
                    && e.message.contains("cm-agent doctor"),
                "{e}"
            );
        }
        Reply::Ok(a) => bail!("the prompt was accepted for an unreachable provider: {a:?}"),
    }
    env.shutdown().await;
    Ok(())
}
