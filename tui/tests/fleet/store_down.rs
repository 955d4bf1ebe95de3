//! PostgreSQL stops while an answer streams across relays: the established stream keeps
//! flowing to its end, a mutation is refused with `store unavailable`, and when the database
//! is back everything works again by itself and the audit chain verifies.

use crate::follow::Follower;
use crate::pg_control::PgControl;
use crate::support::{eventually, slow_text};
use crate::world::{Fleet, Spec};
use anyhow::Result;
use cm_tui::remote::{Remote, Target};
use proto::admin::HostName;

/// Revokes host `name` through `remote`'s relay (an owner's mutation); the refusal as text.
async fn host_revoke(remote: &Remote, name: &str) -> Result<(), String> {
    remote
        .call_relay::<proto::op::HostRevoke>(&HostName { name: name.into() })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_stream_keeps_it_flowing_refuses_mutations_and_recovers() -> Result<()>
{
    let Some(fleet) = Fleet::start(&Spec {
        agents: &[("box1", &[0, 1])],
    })
    .await?
    else {
        return Ok(());
    };
    let op = fleet.owner_on(2)?;
    let session = op.tui_ok(&["new", "box1", "demo"])?.trim().to_owned();
    let target = Target::workspace("box1", "demo").with_session(Some(session.clone()));
    let mut follow = Follower::open(vec![op.clone()], target).await?;
    let pg = PgControl::of(&fleet.pg)?;
    fleet.relays[0].cli_ok(&["host", "add", "spare"])?;

    let n = 40;
    let from = follow.prompt(&format!("SLOW {n} 100ms"), "slow-db").await?;
    follow
        .until(|f| {
            crate::support::deltas(&f[from.min(f.len())..], &session)
                .matches("chunk")
                .count()
                >= 3
        })
        .await?;
    pg.stop()?;

    // The established stream flows on, on the same watch.
    follow.until_answered(&session, from, &slow_text(n)).await?;
    assert_eq!(follow.resumed, 0, "the watch never broke");
    follow.assert_gapless();

    // A mutation on the established connection is refused, and says why.
    let refused = host_revoke(follow.remote(), "spare").await;
    let err = refused.expect_err("revoked a host without a database");
    assert!(err.contains("store unavailable"), "{err}");

    // The database comes back: everything works again without help.
    pg.start()?;
    let deadline = tokio::time::Instant::now() + crate::harness::WAIT;
    while let Err(e) = host_revoke(follow.remote(), "spare").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mutation never went through again: {e}"
        );
        // A poll of the relay's reconnection, not a synchronisation sleep.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let answer = op.tui_ok(&[
        "send",
        "box1",
        "demo",
        "--session",
        &session,
        "after the database came back",
        "--wait",
    ])?;
    assert_eq!(
        answer.trim_end(),
        "Hello from mock LLM. You said: after the database came back"
    );
    fleet.audit_verifies(0)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_while_postgres_is_away_is_told_store_unavailable_not_to_log_in_again()
-> Result<()> {
    let Some(fleet) = Fleet::start(&Spec { agents: &[] }).await? else {
        return Ok(());
    };
    let op = fleet.owner_on(1)?;
    op.tui_ok(&["hosts"])?;
    let pg = PgControl::of(&fleet.pg)?;
    pg.stop()?;
    let out = op.tui(&["hosts"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served without a database");
    assert!(err.contains("store unavailable"), "{err}");
    pg.start()?;
    eventually("a new connection to work again", || {
        Ok(op.tui(&["hosts"])?.status.success().then_some(()))
    })
    .await?;
    Ok(())
}
