//! The relay is killed (SIGKILL) while an answer streams: the operator resumes from its last
//! sequence number and sees the whole answer, with no gap and no duplicate. A prompt whose
//! reply is lost and that is sent again with the same key reaches OpenCode once.

use crate::harness::World;
use crate::support::*;
use anyhow::{Context, Result};
use cm_client as client;
use cm_tui::remote::Target;
use proto::event::Event;
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::queue::PromptOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_answer_then_the_operator_resumes_without_gap_or_duplicate() -> Result<()>
{
    let mut world = World::start().await?;
    let session = world.tui_ok(&["new", "box", "demo"])?.trim().to_owned();
    let target = Target::workspace("box", "demo").with_session(Some(session.clone()));
    let remote = operator(&world).await?;
    let mut events = watch(&remote, &target, None).await?;
    let n = 30;
    let outcome: PromptOutcome = remote
        .call::<proto::op::Prompt>(&target, &prompt(&format!("SLOW {n} 100ms"), "slow-1"))
        .await?;
    let PromptOutcome::Accepted(slow) = outcome else {
        anyhow::bail!("expected accepted, got {outcome:?}");
    };

    // Some of the answer has arrived…
    let mut frames = Vec::new();
    while deltas(&frames, &session).matches("chunk").count() < 3 {
        frames.push(next(&mut events).await?);
    }
    // …when the relay dies without a word.
    let addr = agent_relay(&world)?;
    world.relay.kill9();
    drop(events);
    remote.close();
    restart_relay(&mut world, &addr)?;

    // Resume after the last frame seen.
    let last = frames.last().context("frames")?.seq;
    let remote = operator(&world).await?;
    let mut events = watch(&remote, &target, Some(last)).await?;
    loop {
        let f = next(&mut events).await?;
        assert!(
            !matches!(f.event, Event::Resync { .. }),
            "the agent still had the events: {f:?}"
        );
        let idle = matches!(&f.event, Event::SessionIdle { session: s } if *s == session);
        frames.push(f);
        if idle {
            break;
        }
    }
    let seqs: Vec<u64> = frames.iter().map(|f| f.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap, no duplicate: {seqs:?}"
    );
    assert_eq!(deltas(&frames, &session), slow_text(n));

    // A prompt whose reply is lost: sent, and its reply never read.
    let mut header = StreamHeader::new(Op::Prompt, ReqId(99));
    header.host = Some(HostId::from("box"));
    header.workspace = Some("demo".into());
    header.session = Some(session.clone());
    let (mut send, recv) = client::subscribe(remote.conn(), &header).await?;
    let body = prompt("say it once", "once-1");
    cm_client::framed::send_frame(&mut send, &body, MAX_FRAME_LEN).await?;
    let _ = send.finish();
    // OpenCode got it (a new user message is announced)…
    loop {
        let f = next(&mut events).await?;
        if let Event::MessageUpdated {
            role, message_id, ..
        } = &f.event
            && role == "user"
            && *message_id != slow.message_id
        {
            break;
        }
    }
    // …the reply is dropped unread…
    drop(recv);
    // …and the retry with the same key is answered from the agent's record.
    let again: PromptOutcome = remote.call::<proto::op::Prompt>(&target, &body).await?;
    match again {
        PromptOutcome::Accepted(a) => assert!(a.duplicate, "{a:?}"),
        other @ PromptOutcome::Queued { .. } => {
            anyhow::bail!("expected accepted, got {other:?}")
        }
    }
    let t = answered(
        &world,
        &session,
        "the answer to the retried prompt",
        "You said: say it once",
    )
    .await?;
    let users = user_messages(&t, "say it once");
    assert_eq!(users, 1, "{t:?}");
    Ok(())
}
