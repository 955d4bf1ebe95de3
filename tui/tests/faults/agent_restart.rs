//! The agent is killed (SIGKILL) while an answer streams: OpenCode keeps running under its
//! keeper, a restarted agent re-adopts it (same process, numbering above the old run's, an
//! explicit resync for the watcher) and the session continues. With the state file deleted, a
//! restarted agent stops the orphan instead; with no agent coming back at all, the keeper stops
//! OpenCode after its grace period.

use crate::harness::World;
use crate::support::*;
use anyhow::{Context, Result};
use cm_tui::remote::Target;
use proto::event::Event;
use proto::queue::PromptOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_answer_readopts_opencode_and_orphans_never_survive() -> Result<()> {
    let mut world = World::start().await?;
    // A short orphan grace for the last part of the test (read when OpenCode is launched).
    world.agent = None;
    world.start_agent_with(&[("CM_AGENT_ORPHAN_GRACE", "2s")])?;
    wait_online(&world, true).await?;
    let session = world.tui_ok(&["new", "box", "demo"])?.trim().to_owned();
    let keeper = recorded_pid(&world)?.context("no child in the state file")?;
    let opencode = eventually("OpenCode under its keeper", || {
        Ok(children_of(keeper).first().copied())
    })
    .await?;

    let target = Target::workspace("box", "demo").with_session(Some(session.clone()));
    let remote = operator(&world).await?;
    let mut events = watch(&remote, &target, None).await?;
    let n = 20;
    let _: PromptOutcome = remote
        .call::<proto::op::Prompt>(&target, &prompt(&format!("SLOW {n} 100ms"), "slow-agent"))
        .await?;
    let mut frames = Vec::new();
    while deltas(&frames, &session).matches("chunk").count() < 2 {
        frames.push(next(&mut events).await?);
    }
    let last = frames.last().context("frames")?.seq;

    // The agent dies mid-answer; OpenCode (and its keeper) live on.
    world.agent.as_mut().context("agent")?.kill9();
    world.agent = None;
    assert!(
        alive(keeper) && alive(opencode),
        "OpenCode died with the agent"
    );

    // A new agent re-adopts the same process…
    world.start_agent_with(&[("CM_AGENT_ORPHAN_GRACE", "2s")])?;
    world
        .agent
        .as_ref()
        .context("agent")?
        .wait_stderr("re-adopting OpenCode")?;
    assert_eq!(recorded_pid(&world)?, Some(keeper));
    // …the watcher resumes with an explicit resync whose number is above the old run's…
    let mut events = watch(&remote, &target, Some(last)).await?;
    let first = next(&mut events).await?;
    assert!(
        matches!(first.event, Event::Resync { .. }) && first.seq > last,
        "{first:?} after {last}"
    );
    // …the interrupted answer is complete in the history…
    let done = answered(
        &world,
        &session,
        "the interrupted answer in the history",
        &format!("chunk {}", n - 1),
    )
    .await;
    let t = done.map_err(|e| anyhow::anyhow!("{e}: {:?}", transcript(&world, &session)))?;
    assert!(
        t.iter()
            .any(|(role, text)| role == "assistant" && text.trim_end() == slow_text(n).trim_end()),
        "{t:?}"
    );
    // …and the session goes on with the same OpenCode.
    let out = world.send_wait(&session, "still there?")?;
    assert_eq!(
        out.trim_end(),
        "Hello from mock LLM. You said: still there?"
    );
    assert!(alive(opencode));
    assert_eq!(recorded_pid(&world)?, Some(keeper));

    // Killed again, and the state file is lost: the next agent stops the orphan.
    world.agent.as_mut().context("agent")?.kill9();
    world.agent = None;
    std::fs::remove_file(world.agent_state.join("agent-state.json"))?;
    world.start_agent_with(&[("CM_AGENT_ORPHAN_GRACE", "2s")])?;
    eventually("the orphan to be stopped", || {
        Ok((!alive(keeper) && !alive(opencode)).then_some(()))
    })
    .await?;

    // No agent comes back at all: the keeper stops OpenCode after its grace period.
    world.tui_ok(&["opencode", "box", "demo", "start"])?;
    let keeper = eventually("a new launch", || {
        Ok(recorded_pid(&world)?.filter(|p| *p != keeper))
    })
    .await?;
    let opencode = eventually("OpenCode under its keeper", || {
        Ok(children_of(keeper).first().copied())
    })
    .await?;
    world.agent.as_mut().context("agent")?.kill9();
    world.agent = None;
    eventually("the keeper to stop OpenCode after its grace", || {
        Ok((!alive(keeper) && !alive(opencode)).then_some(()))
    })
    .await?;
    Ok(())
}
