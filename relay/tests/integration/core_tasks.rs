//! The relay's core tasks run supervised: a sweeper that panics is restarted, so the kill
//! switch still cuts off a revoked credential instead of being silently off.

use crate::forward::user_with_grant;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_relay::cli::{self, KillArgs};
use proto::message::CloseReason;
use proto::rbac::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_sweeper_cannot_leave_the_kill_switch_off() -> Result<()> {
    let relay = TestRelay::start().await?;
    let mallory = user_with_grant(&relay, "mallory", "*", Role::Operator)?;
    let mallory_op = operator(&relay.addr_str(), &relay.state.pin, &mallory).await?;
    relay
        .relay
        .as_ref()
        .context("relay running")?
        .faults()
        .panic_now("sweeper");
    cli::kill(
        &relay.state.dir,
        &KillArgs {
            user: Some("mallory".into()),
            ..kill_args()
        },
    )?;
    let (reason, text) = closed_reason(&mallory_op.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);
    assert_eq!(text, "credential revoked");
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeper_that_keeps_failing_stops_the_relay_with_a_clear_error() -> Result<()> {
    let mut relay = TestRelay::start().await?;
    let running = relay.relay.as_mut().context("relay running")?;
    let faults = running.faults().clone();
    let failed = tokio::time::timeout(WAIT, async {
        let failure = running.core_failure();
        tokio::pin!(failure);
        loop {
            // One fault per run of the task (a pending fault waits for the next run).
            faults.panic_now("sweeper");
            tokio::select! {
                f = &mut failure => return f,
                // Re-arms the fault for the restarted run; not a synchronisation sleep.
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
    })
    .await
    .context("the relay did not give up on a sweeper that keeps failing")?;
    assert_eq!(failed.task, "sweeper");
    assert!(failed.last.contains("panicked"), "{failed}");
    let text = failed.to_string();
    assert!(
        text.contains("sweeper task failed 5 times") && text.contains("relay stopped"),
        "{text}"
    );
    relay.shutdown().await;
    Ok(())
}
