//! The agent reaps what its OpenCode launches leave: after start/stop cycles with a real
//! OpenCode (through the keeper), no zombie child of the agent is left.

use crate::harness::{World, header, zombie_children};
use anyhow::{Result, ensure};
use cm_client as client;
use proto::header::Op;
use proto::ops::{OpencodeInfo, OpencodeState};

const CYCLES: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_zombie_survives_opencode_start_stop_cycles() -> Result<()> {
    let world = World::start("").await?;
    let agent = world.spawn_agent()?;
    agent.log.wait_line(&["agent started"])?;
    let owner = world.owner().await?;
    let mut left = Vec::new();
    for cycle in 0..CYCLES {
        let info: OpencodeInfo =
            client::request::<(), _>(&owner.conn, &header(Op::OpencodeStart), None).await?;
        ensure!(
            info.state == OpencodeState::Ready,
            "cycle {cycle}: {info:?}"
        );
        let info: OpencodeInfo =
            client::request::<(), _>(&owner.conn, &header(Op::OpencodeStop), None).await?;
        ensure!(
            info.state == OpencodeState::Stopped,
            "cycle {cycle}: {info:?}"
        );
        // A stop answers once the process and its leftovers are gone: nothing is left to reap.
        let zombies = zombie_children(agent.pid());
        if !zombies.is_empty() {
            left.push((cycle, zombies));
        }
    }
    assert!(
        left.is_empty(),
        "zombie children of the agent (cycle, pids) after stops: {left:?}"
    );
    drop(agent);
    world.shutdown().await;
    Ok(())
}
