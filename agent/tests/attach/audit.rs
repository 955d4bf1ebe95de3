//! An attach with no relay reachable: it works locally (OpenCode is started and answers with
//! the password it was given), and the relay audits it as a local action once the agent links.

use crate::harness::World;
use crate::harness::opencode_http;
use anyhow::Result;

#[test]
fn an_attach_with_the_relay_away_works_and_is_audited_when_the_relay_is_back() -> Result<()> {
    let mut world = World::new("")?;
    world.start_agent()?;
    // No relay runs: the agent cannot link, the attach does not need it.
    let attached = cm_agent::attach::client::request(&world.agent_state, "demo")?;
    let server = &attached.server;
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert_eq!(server.directory, world.workspace);
    assert!(server.opencode.ends_with("bin/opencode"), "{server:?}");
    let ok = opencode_http(
        &server.url,
        Some(&server.password),
        "GET",
        "/global/health",
        None,
    )?;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains(r#""healthy":true"#),
        "{ok}"
    );
    let refused = opencode_http(&server.url, None, "GET", "/global/health", None)?;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    world
        .agent()?
        .wait_stderr("local attach: OpenCode's TUI attached at the desk")?;

    world.start_relay()?;
    world.agent()?.wait_stderr("connected to relay")?;
    let row = world.wait_audit(&["local_attach", "local@box", "workspace demo"])?;
    assert!(row.contains("box"), "{row}");

    drop(attached);
    world.agent()?.wait_stderr("cm-agent attach ended")?;
    Ok(())
}
