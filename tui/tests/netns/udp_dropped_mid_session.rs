//! (b) UDP between the laptop and the relay stops mid-stream (a `cm-tui watch` running): the
//! watch moves to the TCP path and resumes after the last event it printed, so its events
//! have no gap and no duplicate, and the prompt was sent once.

use crate::lab::Lab;
use crate::observe::wait_tcp_links;
use crate::support::slow_text;
use crate::watcher::Watcher;
use anyhow::Result;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_dropped_mid_stream_moves_the_watch_to_tcp_with_no_event_lost_or_repeated_and_one_prompt()
-> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    lab.start_agent()?;
    lab.login()?;
    lab.wait_online()?;
    let session = lab.new_session()?;

    // The watch is live once it shows an answer sent after it started.
    let mut watch = Watcher::spawn(&lab)?;
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
    // On QUIC so far: no TCP connection from the laptop.
    wait_tcp_links(&lab.net.laptop, "the watch on QUIC", |n| n == 0)?;

    let n = 60;
    let prompt = format!("SLOW {n} 100ms");
    let from = watch.frames.len();
    lab.tui_ok(&["send", "box", "demo", "--session", &session, &prompt])?;
    watch.until_text(&session, "chunk 1 ")?;

    // Mid-stream: UDP between laptop and relay is gone, both ways.
    let cut = lab.net.drop_laptop_udp()?;
    watch.until_answered(&session, from, &slow_text(n))?;
    watch.assert_gapless();
    assert!(
        watch.running()?,
        "the watch kept running: {}",
        watch.stderr()
    );
    // It is on the TCP path now.
    wait_tcp_links(&lab.net.laptop, "the watch on TCP", |n| n >= 1)?;
    assert_eq!(lab.user_messages(&session, &prompt)?, 1, "one prompt");
    drop(cut);
    Ok(())
}
