//! (d) A network where only an HTTP CONNECT proxy gets out: every direct packet from the
//! laptop to the relay is dropped, `HTTPS_PROXY` names a proxy that wants credentials, and
//! the laptop still logs in, lists hosts and streams a prompt, through the proxy (whose
//! tunnels the test sees), with the relay's pin checked end to end.

use crate::lab::Lab;
use crate::observe::{status_transport, tcp_links};
use crate::proxy::ConnectProxy;
use crate::topology::{LAPTOP_GATEWAY, relay_addr};
use anyhow::Result;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_direct_egress_dropped_the_laptop_works_through_an_http_connect_proxy_with_basic_auth()
-> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    lab.start_agent()?;
    let proxy = ConnectProxy::start(
        &lab.net.relay.handle_path(),
        format!("{LAPTOP_GATEWAY}:3128").parse()?,
        Some("cm:s3cret"),
    )?;
    let _direct = lab.net.drop_laptop_direct()?;
    lab.laptop_env.push((
        "HTTPS_PROXY".into(),
        format!("http://cm:s3cret@{}", proxy.addr),
    ));

    lab.login()?;
    lab.wait_online()?;
    let hosts: Value = serde_json::from_str(&lab.tui_ok(&["hosts", "--json"])?)?;
    assert_eq!(hosts["hosts"][0]["online"], true, "{hosts}");
    let session = lab.new_session()?;
    let answer = lab.tui_ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "through the proxy",
        "--wait",
    ])?;
    assert_eq!(
        answer.trim_end(),
        "Hello from mock LLM. You said: through the proxy"
    );

    // It went through the proxy, with the credentials, to the relay's TCP listener.
    let tunnels = proxy.tunnels();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| *t == relay_addr()),
        "{tunnels:?}"
    );
    assert_eq!(proxy.log.lock().unwrap().refused_auth, 0);
    // Nothing reached the relay directly from the laptop.
    assert_eq!(tcp_links(&lab.net.laptop)?, 0);
    let transport = status_transport(&lab)?;
    assert!(
        transport.contains("proxy"),
        "cm-tui status says {transport:?}"
    );
    Ok(())
}
