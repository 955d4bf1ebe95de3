//! The model and agent of a prompt from the command line, through a real relay, agent and
//! OpenCode: `cm-tui models` lists what the host's OpenCode offers (the test model's two
//! models), `send --model` reaches the model it names (the test model sees the name), and a
//! model outside what the host offers or allows is refused naming the allowed ones.

use crate::harness::*;
use anyhow::{Result, bail};
use serde_json::Value;

/// A second model of the test model's provider (inside the `[opencode]` tables).
const SECOND_MODEL: &str = r#"
[opencode.provider.mock.models.mock-other]
name = "Mock Other"
tool_call = true
"#;

fn last_model_asked(world: &World) -> Option<String> {
    world
        .model
        .requests()
        .last()
        .and_then(|b| b["model"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_uses_the_model_picked_and_refuses_one_the_host_does_not_offer_or_allow() -> Result<()>
{
    let mut world = World::start_with(SECOND_MODEL, &[]).await?;

    let text = world.tui_ok(&["models", "box", "demo"])?;
    assert!(text.contains("* mock/mock-model  Mock Model"), "{text}");
    assert!(text.contains("  mock/mock-other  Mock Other"), "{text}");
    assert!(text.contains("agents: ") && text.contains("plan"), "{text}");
    let json: Value = serde_json::from_str(&world.tui_ok(&["models", "box", "demo", "--json"])?)?;
    assert_eq!(json["default"], "mock/mock-model", "{json}");

    let session = world.tui_ok(&["new", "box", "demo", "--title", "models"])?;
    let session = session.trim();
    let answer = world.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        session,
        "Say hello",
        "--model",
        "mock/mock-other",
        "--agent",
        "build",
        "--wait",
    ])?;
    assert!(!answer.trim().is_empty(), "no answer");
    assert_eq!(last_model_asked(&world).as_deref(), Some("mock-other"));

    // Not offered: bad request (exit 1), naming what may be picked.
    let asked_before = world.model.requests().len();
    let out = world.tui(&[
        "send",
        "box",
        "demo",
        "--session",
        session,
        "hi",
        "--model",
        "mock/nope",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        err.contains("mock/nope is not offered by this host's OpenCode; pick one of: mock/mock-model, mock/mock-other"),
        "{err}"
    );

    // The host narrows the choice: restart the agent with allowed_models.
    world.agent = None;
    let config = std::fs::read_to_string(&world.agent_config)?;
    let config = config.replacen(
        "small_model = \"mock/mock-model\"\n",
        "small_model = \"mock/mock-model\"\nallowed_models = [\"mock/mock-model\"]\n",
        1,
    );
    std::fs::write(&world.agent_config, config)?;
    world.start_agent()?;
    let listed = until_answered(&world, &["models", "box", "demo"])?;
    assert!(
        listed.contains("mock/mock-model") && !listed.contains("mock-other"),
        "{listed}"
    );
    let out = world.tui(&[
        "send",
        "box",
        "demo",
        "--session",
        session,
        "hi",
        "--model",
        "mock/mock-other",
    ])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "forbidden: {err}");
    assert!(
        err.contains("mock/mock-other is not allowed on this host")
            && err.contains("permits mock/mock-model"),
        "{err}"
    );
    assert_eq!(
        world.model.requests().len(),
        asked_before,
        "a refused prompt reached the model"
    );
    let history: Value =
        serde_json::from_str(&world.tui_ok(&["messages", "box", "demo", session, "--json"])?)?;
    let users = history
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["role"] == "user").count());
    assert_eq!(
        users, 1,
        "only the accepted prompt is in the session: {history}"
    );
    Ok(())
}

/// Runs a command until the restarted agent answers it (the relay may still route to the
/// previous connection for a moment); bounded.
fn until_answered(world: &World, args: &[&str]) -> Result<String> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let out = world.tui(args)?;
        if out.status.success() {
            return Ok(String::from_utf8(out.stdout)?);
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "{args:?} never answered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
