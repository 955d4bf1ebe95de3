//! `kill -9` of one relay while an answer streams: first the operator's own relay, then one of
//! the agent's two relays. Each time the operator resumes through another relay after its last
//! sequence number and sees the whole answer with no gap and no duplicate, the hosts stay
//! online on the surviving relays, and the audit chain verifies.

use crate::follow::Follower;
use crate::support::{eventually, slow_text, user_messages};
use crate::world::{Fleet, Operator, Spec};
use anyhow::Result;
use cm_tui::remote::Target;
use serde_json::Value;

/// Whether `cluster status` (through relay `via`) shows relay `id` alive.
fn alive(fleet: &Fleet, via: usize, id: &str) -> Result<Option<bool>> {
    let status = fleet.cluster_status(via)?;
    let relays = status
        .get("relays")
        .and_then(Value::as_array)
        .or_else(|| status.as_array())
        .cloned()
        .unwrap_or_default();
    Ok(relays
        .iter()
        .find(|r| r["id"] == id)
        .and_then(|r| r["alive"].as_bool()))
}

/// Waits (bounded) until the fleet no longer counts relay `dead` alive (its presence rows no
/// longer count), then checks that `viewer` sees every host in `hosts` online.
async fn hosts_stay_online(
    fleet: &Fleet,
    viewer: &Operator,
    via: usize,
    dead: &str,
    hosts: &[&str],
) -> Result<()> {
    eventually(&format!("relay {dead} counted dead"), || {
        Ok((alive(fleet, via, dead)? == Some(false)).then_some(()))
    })
    .await?;
    let seen = viewer.hosts()?;
    for host in hosts {
        assert!(
            seen.iter().any(|(h, online)| h == host && *online),
            "{host} stays online after relay {dead} died: {seen:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_any_one_relay_mid_stream_loses_no_event_and_keeps_the_hosts_online() -> Result<()>
{
    let Some(mut fleet) = Fleet::start(&Spec {
        agents: &[("box1", &[0, 1]), ("box2", &[1, 2])],
    })
    .await?
    else {
        return Ok(());
    };
    let (op_a, op_b, op_c) = (fleet.owner_on(0)?, fleet.owner_on(1)?, fleet.owner_on(2)?);
    let session = op_c.tui_ok(&["new", "box1", "demo"])?.trim().to_owned();
    let target = Target::workspace("box1", "demo").with_session(Some(session.clone()));
    // The operator is on c (box1 is held by a and b); when c goes it tries a, then b.
    let mut follow = Follower::open(vec![op_c.clone(), op_a.clone(), op_b.clone()], target).await?;
    let n = 30;

    // 1. The operator's own relay dies mid-answer.
    let from = follow.prompt(&format!("SLOW {n} 100ms"), "slow-1").await?;
    follow.until(|f| some_chunks(f, &session, from)).await?;
    fleet.relays[2].kill9();
    follow.until_answered(&session, from, &slow_text(n)).await?;
    assert!(follow.resumed >= 1, "the watch moved to another relay");
    assert_ne!(follow.on, 0, "not on the dead relay");
    follow.assert_gapless();
    hosts_stay_online(&fleet, &op_a, 0, "c", &["box1", "box2"]).await?;
    fleet.audit_verifies(0)?;

    // 2. c comes back; then a, one of box1's two relays, dies mid-answer.
    fleet.relays[2].start()?;
    fleet.wait_held(1).await?;
    let from = follow.prompt(&format!("SLOW {n} 100ms"), "slow-2").await?;
    follow.until(|f| some_chunks(f, &session, from)).await?;
    fleet.relays[0].kill9();
    follow.until_answered(&session, from, &slow_text(n)).await?;
    follow.assert_gapless();
    hosts_stay_online(&fleet, &op_b, 1, "a", &["box1", "box2"]).await?;
    hosts_stay_online(&fleet, &op_c, 2, "a", &["box1", "box2"]).await?;
    fleet.audit_verifies(1)?;

    // The transcript has each prompt once and each whole answer once.
    let t = op_b.transcript("box1", &session)?;
    assert_eq!(user_messages(&t, &format!("SLOW {n} 100ms")), 2, "{t:?}");
    let answers = t
        .iter()
        .filter(|(role, text)| role == "assistant" && *text == slow_text(n))
        .count();
    assert_eq!(answers, 2, "{t:?}");
    Ok(())
}

/// Whether some of `session`'s answer arrived in `frames` from index `from` on.
fn some_chunks(frames: &[proto::event::EventFrame], session: &str, from: usize) -> bool {
    crate::support::deltas(&frames[from.min(frames.len())..], session)
        .matches("chunk")
        .count()
        >= 3
}
