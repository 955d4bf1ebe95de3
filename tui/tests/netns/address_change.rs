//! (e) The laptop changes networks mid-stream (a new address and route on its link, the old
//! address gone): a running `cm-tui watch` keeps streaming with no gap and no duplicate, on
//! QUIC (connection migration) and on the TCP path (a fast reconnect that resumes after the
//! last event).

use crate::lab::Lab;
use crate::observe::wait_tcp_links;
use crate::support::slow_text;
use crate::watcher::Watcher;
use anyhow::{Context, Result};

/// Streams a slow answer into a running watch and moves the laptop's address after the
/// first chunks; the watch must end with the whole answer, gapless, the prompt sent once.
async fn stream_survives_an_address_change(lab: &mut Lab) -> Result<Watcher> {
    lab.start_agent()?;
    lab.login()?;
    lab.wait_online()?;
    let session = lab.new_session()?;
    let mut watch = Watcher::spawn(lab)?;
    lab.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "warm up",
        "--wait",
    ])?;
    watch.until_text(&session, "You said: warm up")?;

    let n = 60;
    let prompt = format!("SLOW {n} 100ms");
    let from = watch.frames.len();
    lab.tui_ok(&["send", "box", "demo", "--session", &session, &prompt])?;
    watch.until_text(&session, "chunk 1 ")?;
    lab.net.move_laptop_address()?;
    watch.until_answered(&session, from, &slow_text(n))?;
    watch.assert_gapless();
    assert!(
        watch.running()?,
        "the watch kept running: {}",
        watch.stderr()
    );
    assert_eq!(lab.user_messages(&session, &prompt)?, 1, "one prompt");
    // The commands after the move reach the relay from the new address.
    lab.wait_online()?;
    Ok(watch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_quic_the_stream_continues_when_the_laptops_address_changes() -> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    let watch = stream_survives_an_address_change(&mut lab).await?;
    // It stayed on QUIC (migration, not a fall back to TCP).
    wait_tcp_links(&lab.net.laptop, "the watch stays on QUIC", |n| n == 0)
        .with_context(|| format!("the watch's log:\n{}", watch.stderr()))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_tcp_the_stream_continues_when_the_laptops_address_changes() -> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    lab.laptop_env.push(("CM_TRANSPORT".into(), "tcp".into()));
    let watch = stream_survives_an_address_change(&mut lab).await?;
    wait_tcp_links(&lab.net.laptop, "the watch on TCP", |n| n >= 1)
        .with_context(|| format!("the watch's log:\n{}", watch.stderr()))?;
    Ok(())
}
