//! An attach with no relay reachable: it works locally (OpenCode is started and answers with
//! the password it was given), and the relay audits it as a local action once the agent links.

use crate::harness::World;
use anyhow::{Context as _, Result};
use base64::Engine as _;
use std::io::{Read as _, Write as _};

/// `GET /global/health` on OpenCode at `url` with HTTP Basic `password` (or none); the whole
/// response.
fn health(url: &str, password: Option<&str>) -> Result<String> {
    let addr = url.strip_prefix("http://").context("not an http URL")?;
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(crate::harness::WAIT))?;
    let auth = password
        .map(|p| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("opencode:{p}"));
            format!("Authorization: Basic {token}\r\n")
        })
        .unwrap_or_default();
    write!(
        conn,
        "GET /global/health HTTP/1.0\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    Ok(response)
}

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
    let ok = health(&server.url, Some(&server.password))?;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains(r#""healthy":true"#),
        "{ok}"
    );
    let refused = health(&server.url, None)?;
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
