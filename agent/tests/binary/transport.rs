//! The transport a running agent's links use: in its log line and in `cm-agent status` (which
//! reads the state folder, never asks the running agent).

use crate::harness::{World, agent_bin};
use anyhow::Result;
use std::process::Command;

fn status_json(world: &World) -> Result<serde_json::Value> {
    let out = Command::new(agent_bin())
        .arg("--config")
        .arg(&world.config)
        .arg("--state-dir")
        .arg(&world.state)
        .args(["status", "--json"])
        .env("CM_SECRET_STORE", "file")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_transport_of_each_connected_link_and_none_after_exit_or_kill()
-> Result<()> {
    let world = World::start("").await?;
    let mut agent = world.spawn_agent()?;
    let line = agent.log.wait_line(&["connected to relay"])?;
    assert!(line.contains("transport=QUIC"), "{line}");
    let status = status_json(&world)?;
    let relay = world.relay.local_addr().to_string();
    assert_eq!(status["links"][0]["transport"], "QUIC", "{status}");
    assert_eq!(status["links"][0]["relay"], relay.as_str(), "{status}");
    agent.terminate()?;
    let status = status_json(&world)?;
    assert_eq!(status["links"], serde_json::json!([]), "{status}");

    // Killed without a chance to clear its file: status still says it is not connected.
    let mut agent = world.spawn_agent()?;
    agent.log.wait_line(&["connected to relay"])?;
    assert_eq!(status_json(&world)?["links"][0]["transport"], "QUIC");
    agent.child.kill()?;
    agent.child.wait()?;
    let status = status_json(&world)?;
    assert_eq!(status["links"], serde_json::json!([]), "{status}");
    world.shutdown().await;
    Ok(())
}

/// The background probe a link on TCP runs: it resolves once QUIC answers with the pinned key,
/// and remembers for this network that QUIC works (so the reconnect starts with QUIC).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quic_probe_resolves_when_the_relay_answers_and_remembers_quic() -> Result<()> {
    use cm_client::transport::{MEMORY_FILE_NAME, TransportOptions, quic_comes_back};
    let world = World::start("").await?;
    let memory = world.state.join(MEMORY_FILE_NAME);
    let opts = cm_client::DialOptions {
        transport: TransportOptions {
            quic_probe_interval: std::time::Duration::from_millis(10),
            memory_file: Some(memory.clone()),
            ..TransportOptions::default()
        },
        ..cm_client::DialOptions::default()
    };
    tokio::time::timeout(
        crate::harness::WAIT,
        quic_comes_back(world.relay.local_addr(), &world.pin, &opts),
    )
    .await?;
    let remembered = std::fs::read_to_string(&memory)?;
    assert!(remembered.contains("\"quic\""), "{remembered}");
    world.shutdown().await;
    Ok(())
}
