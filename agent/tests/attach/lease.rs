//! While `cm-agent attach` holds its connection, the agent renews the workspace's launch lease
//! for the person at the desk: a turn longer than the lease runs to its end. Once the desk
//! leaves, nobody renews it and the agent stops that OpenCode as for any lapsed lease.

use crate::harness::{World, body_of, opencode_http};
use anyhow::{Context as _, Result};

#[test]
fn opencode_attached_at_the_desk_outlives_its_launch_lease_until_the_desk_leaves() -> Result<()> {
    let mut world = World::new("")?;
    let mut config = std::fs::read_to_string(&world.agent_config)?;
    config.push_str("\n[policy]\nlaunch_lease = \"1s\"\n");
    std::fs::write(&world.agent_config, config)?;
    world.start_agent()?;
    let attached = cm_agent::attach::client::request(&world.agent_state, "demo")?;
    let server = &attached.server;
    let dir = server
        .directory
        .to_str()
        .context("workspace path is not UTF-8")?
        .replace('/', "%2F");
    let pw = Some(server.password.as_str());
    let made = opencode_http(
        &server.url,
        pw,
        "POST",
        &format!("/session?directory={dir}"),
        Some("{}"),
    )?;
    let session: serde_json::Value =
        serde_json::from_str(body_of(&made)).with_context(|| format!("session create: {made}"))?;
    let id = session["id"].as_str().context("no session id")?;
    // 20 chunks 250 ms apart: a turn five times the lease, answered when it ends.
    let turn = opencode_http(
        &server.url,
        pw,
        "POST",
        &format!("/session/{id}/message?directory={dir}"),
        Some(r#"{"parts":[{"type":"text","text":"SLOW 20 250"}]}"#),
    )?;
    assert!(
        turn.contains("chunk 19") && !turn.contains("MessageAbortedError"),
        "{turn}"
    );
    let log = world.agent()?.log();
    assert!(!log.contains("stopping leased OpenCode"), "{log}");

    drop(attached);
    world.agent()?.wait_stderr("stopping leased OpenCode")?;
    Ok(())
}
