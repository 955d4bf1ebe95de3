//! Which transport a client uses, seen from outside the client: the kernel's socket table
//! (a client on the TCP path holds an established TCP connection to the relay's port; on
//! QUIC it holds none) and what `cm-tui status` reports.

use crate::harness::WAIT;
use crate::lab::Lab;
use crate::netns::Netns;
use crate::topology::{RELAY_IP, RELAY_PORT};
use anyhow::{Result, bail};
use serde_json::Value;
use std::time::Instant;

/// How many established TCP connections `ns` holds to the relay's port.
pub fn tcp_links(ns: &Netns) -> Result<usize> {
    let out = ns.exec(
        "ss",
        &[
            "-Htn",
            "state",
            "established",
            "dst",
            RELAY_IP,
            "dport",
            "=",
            &format!(":{RELAY_PORT}"),
        ],
    )?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// Waits (bounded) until `ok(tcp_links(ns))`.
pub fn wait_tcp_links(ns: &Netns, what: &str, ok: impl Fn(usize) -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = tcp_links(ns)?;
        if ok(n) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{what}: {} holds {n} TCP connection(s) to the relay",
                ns.name
            );
        }
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
}

/// The transport `cm-tui status --json` reports on the laptop (the `transport` field, as text).
pub fn status_transport(lab: &Lab) -> Result<String> {
    let out = lab.tui_ok(&["status", "--json"])?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(match &v["transport"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Whether a reported transport is one of the TCP paths (`TCP`, `TCP via proxy`).
pub fn is_tcp(transport: &str) -> bool {
    transport.contains("TCP")
}

/// Whether a reported transport is QUIC over UDP.
pub fn is_quic(transport: &str) -> bool {
    transport.contains("QUIC") && !is_tcp(transport)
}

/// Waits (bounded) until `cm-tui status` on the laptop reports a transport `ok` accepts.
pub fn wait_status_transport(lab: &Lab, what: &str, ok: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let t = status_transport(lab)?;
        if ok(&t) {
            return Ok(t);
        }
        if Instant::now() > deadline {
            bail!("{what}: `cm-tui status` still says {t:?}");
        }
    }
}

/// The transports of the running agent's links, as `cm-agent status --json` reports them.
pub fn agent_transports(lab: &Lab) -> Result<Vec<String>> {
    let out = lab
        .net
        .host
        .command(&crate::harness::bin("cm-agent")?)
        .arg("--config")
        .arg(&lab.agent_config)
        .arg("--state-dir")
        .arg(&lab.agent_state)
        .args(["status", "--json"])
        .env("CM_SECRET_STORE", "file")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cm-agent status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["links"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l["transport"].as_str().map(str::to_owned))
        .collect())
}

/// Waits (bounded) until the agent has links and `ok` accepts each one's transport.
pub fn wait_agent_transport(lab: &Lab, what: &str, ok: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let links = agent_transports(lab)?;
        if !links.is_empty() && links.iter().all(|t| ok(t)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what}: `cm-agent status` says {links:?}");
        }
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
}
