//! A relay cut from its peers by a firewall rule (every datagram to or from its peer port
//! dropped; clients and the database still reach it). Operators on the other relays still
//! reach the hosts the cut relay holds, through those hosts' other relay; the cut relay can no
//! longer forward (and logs that its peers are unreachable), but still serves its own agents;
//! when the rule goes, it forwards again.

use crate::firewall::PeerCut;
use crate::support::eventually;
use crate::world::{Fleet, Operator, Spec};
use anyhow::{Context, Result};

/// `cm-tui workspaces HOST --json` through `op`'s relay: a request the agent answers.
fn reaches(op: &Operator, host: &str) -> Result<bool> {
    let out = op.tui(&["workspaces", host, "--json"])?;
    Ok(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("demo"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cut_from_its_peers_is_routed_around() -> Result<()> {
    let Some(fleet) = Fleet::start(&Spec {
        agents: &[("box1", &[0, 1]), ("box2", &[1, 2])],
    })
    .await?
    else {
        return Ok(());
    };
    let (op_a, op_c) = (fleet.owner_on(0)?, fleet.owner_on(2)?);
    // Before: each reaches the other's hosts through a peer.
    assert!(reaches(&op_c, "box1")?, "c forwards to box1");
    assert!(reaches(&op_a, "box2")?, "a forwards to box2");

    let port: u16 = fleet.relays[2]
        .peer_addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .context("c's peer port")?;
    let Some(cut) = PeerCut::install(port)? else {
        return Ok(());
    };
    // a reaches box2 (held by b and c) through b, every time once it noticed.
    eventually("a reaches box2 around the cut relay", || {
        Ok(reaches(&op_a, "box2")?.then_some(()))
    })
    .await?;
    for _ in 0..3 {
        assert!(reaches(&op_a, "box2")?, "a keeps reaching box2 through b");
    }
    // c still serves its own agent…
    assert!(reaches(&op_c, "box2")?, "c reaches the agent it holds");
    // …but cannot forward to box1, which only a and b hold.
    let out = op_c.tui(&["workspaces", "box1", "--json"])?;
    assert!(
        !out.status.success(),
        "the cut relay forwarded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    eprintln!(
        "the cut relay answers for box1: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // It noticed why: its peers did not answer.
    let log = fleet.relays[2].log();
    assert!(log.contains("peer relay unreachable"), "{log}");

    // The rule goes: c forwards again by itself.
    drop(cut);
    eventually("c forwards to box1 again", || {
        Ok(reaches(&op_c, "box1")?.then_some(()))
    })
    .await?;
    fleet.audit_verifies(0)?;
    Ok(())
}
