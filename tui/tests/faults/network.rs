//! The network between agent and relay: a prompt for the offline host is queued and delivered
//! once when it is back; a cut (UDP blackhole) is detected and healed. Then OpenCode itself is
//! killed under its keeper and restarted by the agent.

use crate::harness::World;
use crate::support::*;
use anyhow::{Context, Result};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_prompt_delivered_once_network_cut_healed_killed_opencode_restarted() -> Result<()> {
    let mut world = World::start().await?;
    let session = world.tui_ok(&["new", "box", "demo"])?.trim().to_owned();

    // The host goes away (the agent stops); the relay shows it offline.
    world.agent = None;
    wait_online(&world, false).await?;

    // A prompt now is queued, not refused, and says until when.
    let out = world.tui_ok(&["send", "box", "demo", "--session", &session, "queued hello"])?;
    assert!(
        out.starts_with("queued (host offline), expires in 60 min"),
        "{out}"
    );
    let list: Value = serde_json::from_str(&world.tui_ok(&["queue", "list", "--json"])?)?;
    let id = list["entries"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["entries"][0]["state"], "queued");

    // From here the agent reaches the relay through a UDP proxy the test can cut.
    let relay = agent_relay(&world)?;
    let proxy = UdpProxy::start(relay.parse()?).await?;
    set_agent_relay(&world, &proxy.addr.to_string())?;
    world.start_agent()?;
    wait_online(&world, true).await?;

    // Delivered once: the entry says so, and OpenCode has one such user message and answered it.
    eventually("the queued prompt to be delivered", || {
        let list: Value = serde_json::from_str(&world.tui_ok(&["queue", "list", "--json"])?)?;
        let entry = list["entries"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["id"] == id.as_str()).cloned());
        Ok(entry.filter(|e| e["state"] == "delivered"))
    })
    .await?;
    let answered = answered(
        &world,
        &session,
        "the queued prompt's answer",
        "You said: queued hello",
    )
    .await?;
    let users = user_messages(&answered, "queued hello");
    assert_eq!(users, 1, "{answered:?}");

    // Cut: the relay notices within its window and shows the host offline.
    proxy.cut(true);
    wait_online(&world, false).await?;
    // Heal: the agent reconnects on its own and the host is back.
    proxy.cut(false);
    wait_online(&world, true).await?;
    let out = world.send_wait(&session, "after the cut")?;
    assert_eq!(
        out.trim_end(),
        "Hello from mock LLM. You said: after the cut"
    );
    // The queued prompt was not delivered a second time by the reconnects.
    let users = user_messages(&transcript(&world, &session)?, "queued hello");
    assert_eq!(users, 1);

    // OpenCode itself is killed (under its keeper): the agent restarts it and says so.
    let keeper = recorded_pid(&world)?.context("no child in the state file")?;
    let opencode = children_of(keeper)
        .first()
        .copied()
        .context("no OpenCode")?;
    std::process::Command::new("kill")
        .args(["-KILL", &opencode.to_string()])
        .status()?;
    let info = eventually("OpenCode restarted", || {
        let v: Value =
            serde_json::from_str(&world.tui_ok(&["opencode", "box", "demo", "status", "--json"])?)?;
        Ok((v["state"] == "ready" && v["restarts"].as_u64() >= Some(1)).then_some(v))
    })
    .await?;
    assert!(
        info["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("exited unexpectedly")),
        "{info}"
    );
    assert!(!alive(keeper), "the old keeper is gone");
    Ok(())
}
