//! (c) UDP comes back: the agent and a running `cm-tui watch`, both on the TCP path while UDP
//! was dropped, return to QUIC by themselves (their background QUIC probe), the watch without
//! a gap, and `cm-tui status` reports QUIC again.

use crate::lab::Lab;
use crate::observe::{
    is_quic, is_tcp, status_transport, wait_agent_transport, wait_status_transport, wait_tcp_links,
};
use crate::watcher::Watcher;
use anyhow::Result;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_udp_comes_back_the_agent_and_a_running_watch_return_to_quic_without_a_gap()
-> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    let no_udp = lab.net.drop_udp_to_relay()?;
    lab.start_agent()?;
    lab.login()?;
    lab.wait_online()?;
    wait_tcp_links(&lab.net.host, "the agent on TCP", |n| n >= 1)?;
    wait_agent_transport(&lab, "cm-agent status on TCP", is_tcp)?;
    let session = lab.new_session()?;
    let mut watch = Watcher::spawn(&lab)?;
    lab.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "on tcp",
        "--wait",
    ])?;
    watch.until_text(&session, "You said: on tcp")?;
    wait_tcp_links(&lab.net.laptop, "the watch on TCP", |n| n >= 1)?;
    let transport = status_transport(&lab)?;
    assert!(is_tcp(&transport), "while UDP is dropped: {transport:?}");

    // UDP is back: the agent leaves the TCP path (its TCP connection closes) and stays
    // online; `cm-tui status` says QUIC; a prompt works.
    no_udp.remove()?;
    wait_tcp_links(&lab.net.host, "the agent back on QUIC", |n| n == 0)?;
    wait_agent_transport(&lab, "cm-agent status back on QUIC", is_quic)?;
    lab.wait_online()?;
    wait_status_transport(&lab, "cm-tui status back on QUIC", is_quic)?;
    lab.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "on quic",
        "--wait",
    ])?;
    wait_tcp_links(&lab.net.host, "the agent stays on QUIC", |n| n == 0)?;
    // The running watch saw everything, once, and moved back to QUIC too.
    watch.until_text(&session, "You said: on quic")?;
    watch.assert_gapless();
    assert!(
        watch.running()?,
        "the watch kept running: {}",
        watch.stderr()
    );
    wait_tcp_links(&lab.net.laptop, "the watch back on QUIC", |n| n == 0)?;
    assert_eq!(lab.user_messages(&session, "on tcp")?, 1);
    assert_eq!(lab.user_messages(&session, "on quic")?, 1);
    Ok(())
}
