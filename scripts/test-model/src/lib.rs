//! `cm-test-model`: a local OpenAI-compatible chat-completions server that OpenCode uses as its
//! LLM in CodeMantle's tests. Its answers are scripted by the text of the last user message
//! (see [`script`] for the rules, e.g. `RUN_BASH: ls` makes it call the `bash` tool).
//!
//! Use it in-process from a Tokio test:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let model = cm_test_model::spawn("127.0.0.1:0".parse()?).await?;
//! // Point OpenCode's `@ai-sdk/openai-compatible` provider at `model.base_url()`,
//! // then drive OpenCode and assert on what it sent:
//! let bodies = model.wait_for_requests(1).await;
//! assert_eq!(bodies[0]["stream"], true);
//! # Ok(())
//! # }
//! ```
//!
//! or as a process: `cm-test-model --listen 127.0.0.1:0` prints
//! `cm-test-model listening on http://127.0.0.1:PORT` once it accepts connections.

mod agent_toml;
mod body;
mod chunks;
mod handle;
mod messages;
mod record;
pub mod script;
mod server;

pub use agent_toml::opencode_toml;
pub use handle::{Config, TestModel, spawn, spawn_with};
pub use record::RequestRecord;
pub use script::{Reply, ScriptError, plan};

/// The single model id the server offers (`GET /v1/models`) and reports when a request names none.
pub const MODEL_ID: &str = "mock-model";
