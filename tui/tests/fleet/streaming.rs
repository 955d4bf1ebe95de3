//! Prompts stream across relays: the operator is on relay c, the agent is held by a and b
//! only, so every request and every event crosses a relay-to-relay hop.

use crate::follow::Follower;
use crate::support::slow_text;
use crate::world::{Fleet, Spec};
use anyhow::Result;
use cm_tui::remote::Target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_from_an_operator_on_c_streams_from_an_agent_held_by_a_and_b() -> Result<()> {
    let Some(fleet) = Fleet::start(&Spec {
        agents: &[("box1", &[0, 1])],
    })
    .await?
    else {
        return Ok(());
    };
    let op = fleet.owner_on(2)?;
    let status = fleet.cluster_status(2)?;
    assert_eq!(Fleet::hosts_held(&status, "c"), Some(0), "{status}");

    // The command line through c: a new session and an answer.
    let session = op.tui_ok(&["new", "box1", "demo"])?.trim().to_owned();
    let answer = op.tui_ok(&[
        "send",
        "box1",
        "demo",
        "--session",
        &session,
        "hello from c",
        "--wait",
    ])?;
    assert_eq!(
        answer.trim_end(),
        "Hello from mock LLM. You said: hello from c"
    );

    // A streamed answer watched through c: every delta, in order, nothing twice.
    let target = Target::workspace("box1", "demo").with_session(Some(session.clone()));
    let mut follow = Follower::open(vec![op.clone()], target).await?;
    let n = 20;
    let from = follow.prompt(&format!("SLOW {n} 20ms"), "slow-c").await?;
    follow.until_answered(&session, from, &slow_text(n)).await?;
    assert_eq!(follow.resumed, 0, "the watch never broke");
    follow.assert_gapless();
    fleet.audit_verifies(2)?;
    Ok(())
}
