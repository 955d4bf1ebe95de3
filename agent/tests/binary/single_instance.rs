//! One `cm-agent run` per state folder: a second one on the same folder would re-adopt the
//! first one's OpenCode, replace it on the relay, and kill that OpenCode when it exits.

use crate::harness::World;
use anyhow::Result;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_state_folder_refuses_at_once_naming_the_first() -> Result<()> {
    let world = World::start("").await?;
    let first = world.spawn_agent()?;
    first.log.wait_line(&["agent started"])?;

    let mut second = world.spawn_agent()?;
    let log = second.log.until_end()?;
    let status = second.child.wait()?;
    assert!(!status.success(), "the second agent ran: {log:#?}");
    let text = log.join("\n");
    assert!(
        text.contains("already running")
            && text.contains(&format!("pid {}", first.pid()))
            && text.contains(&world.state.display().to_string()),
        "{text}"
    );
    assert!(
        !text.contains("agent started"),
        "the second agent started before refusing: {text}"
    );

    // The first one still runs, and once it is gone the folder is free again.
    let mut first = first;
    assert!(first.child.try_wait()?.is_none(), "the first agent died");
    first.terminate()?;
    let third = world.spawn_agent()?;
    third.log.wait_line(&["agent started"])?;
    drop(third);
    world.shutdown().await;
    Ok(())
}
