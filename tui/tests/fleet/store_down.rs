//! PostgreSQL stops while an answer streams across relays: the established stream keeps
//! flowing to its end, a mutation is refused with `store unavailable`, and when the database
//! is back everything works again by itself and the audit chain verifies.

use crate::follow::Follower;
use crate::pg_control::PgControl;
use crate::support::{eventually, slow_text};
use crate::world::{Fleet, Spec};
use anyhow::Result;
use cm_tui::remote::Target;

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

    // A mutation is refused, and says why.
    let out = op.tui(&["admin", "host", "add", "late-box"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "enrolled without a database");
    assert!(err.contains("store unavailable"), "{err}");

    // The database comes back: everything works again without help.
    pg.start()?;
    eventually("the mutation to go through", || {
        Ok(op
            .tui(&["admin", "host", "add", "late-box"])?
            .status
            .success()
            .then_some(()))
    })
    .await?;
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
