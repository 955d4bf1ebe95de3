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
