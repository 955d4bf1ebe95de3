//! (a) A network that drops UDP to the relay: the operator's commands and a streamed prompt
//! work over the TCP path, and an agent behind the same kind of network comes online.

use crate::lab::Lab;
use crate::observe::{is_tcp, status_transport, wait_agent_transport, wait_tcp_links};
use crate::support::slow_text;
use anyhow::Result;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_udp_to_the_relay_dropped_the_agent_comes_online_and_hosts_and_a_streamed_prompt_work_over_tcp()
-> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    // Before anyone connects: no UDP datagram reaches the relay's port any more.
    let _no_udp = lab.net.drop_udp_to_relay()?;

    lab.start_agent()?;
    lab.login()?;
    lab.wait_online()?;
    // The agent got there over TCP (it holds a TCP connection to the relay).
    wait_tcp_links(&lab.net.host, "the agent on the TCP path", |n| n >= 1)?;
    wait_agent_transport(&lab, "cm-agent status on TCP", is_tcp)?;

    let hosts: Value = serde_json::from_str(&lab.tui_ok(&["hosts", "--json"])?)?;
    assert_eq!(hosts["hosts"][0]["host"], "box", "{hosts}");
    assert_eq!(hosts["hosts"][0]["online"], true, "{hosts}");

    // A streamed answer, every delta through the tunnel.
    let session = lab.new_session()?;
    let n = 20;
    let answer = lab.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        &format!("SLOW {n} 20ms"),
        "--wait",
    ])?;
    assert_eq!(answer.trim_end(), slow_text(n).trim_end());
    assert_eq!(lab.user_messages(&session, &format!("SLOW {n} 20ms"))?, 1);

    let transport = status_transport(&lab)?;
    assert!(is_tcp(&transport), "cm-tui status says {transport:?}");
    Ok(())
}
