//! The kill switch issued at relay a cuts operators held by relay c: once through relay a's
//! process (`cm-tui admin kill` of the owner connected to a), once with `cm-relay kill`
//! against the shared database (relay a's configuration). Relay c closes the connections
//! without being asked by anyone but the database's notice; the owner on c keeps working.
//! The time to the cut is printed (the 1 s goal is the benchmark's and the log's to show).

use crate::harness::WAIT;
use crate::world::{Fleet, Operator, Spec};
use anyhow::{Context, Result};
use proto::ids::ReqId;
use std::time::Instant;

/// `op`'s connection to its relay ends within the bound after `kill` runs; prints how long
/// it took.
async fn cut_after(op: &Operator, what: &str, kill: impl FnOnce() -> Result<()>) -> Result<()> {
    let remote = op.remote().await?;
    // The connection is authenticated and serving.
    cm_client::host_list(remote.conn(), ReqId(1)).await?;
    let started = Instant::now();
    kill()?;
    tokio::time::timeout(WAIT, remote.conn().closed())
        .await
        .with_context(|| format!("{}'s connection to {} stayed open", op.user, op.relay))?;
    eprintln!(
        "kill switch ({what}): relay {} closed {}'s connection {} ms after the kill was issued",
        op.relay,
        op.user,
        started.elapsed().as_millis()
    );
    // And the credential opens nothing anywhere any more.
    let out = op.tui(&["hosts"])?;
    assert!(!out.status.success(), "{} still gets in", op.user);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_issued_on_relay_a_cuts_operators_held_by_relay_c() -> Result<()> {
    let Some(fleet) = Fleet::start(&Spec { agents: &[] }).await? else {
        return Ok(());
    };
    let bob = fleet.add_operator("bob", "operator", 2)?;
    let carol = fleet.add_operator("carol", "operator", 2)?;
    let owner_c = fleet.owner_on(2)?.remote().await?;

    // Through relay a's process: the owner, connected to a, kills bob.
    cut_after(&bob, "cm-tui admin kill through relay a", || {
        fleet.owner.tui_ok(&["admin", "kill", "--user", "bob"])?;
        Ok(())
    })
    .await?;
    // Straight into the shared database with relay a's configuration.
    cut_after(&carol, "cm-relay kill on relay a's machine", || {
        fleet.relays[0].cli_ok(&["kill", "--user", "carol"])?;
        Ok(())
    })
    .await?;

    // The owner's connection to c was not touched.
    cm_client::host_list(owner_c.conn(), ReqId(2)).await?;
    for relay in &fleet.relays {
        assert!(
            !bob.at(relay)?.tui(&["hosts"])?.status.success(),
            "bob gets in through {}",
            relay.id
        );
    }
    fleet.audit_verifies(2)?;
    Ok(())
}
