//! Forwarding a port from the full-screen app (issue 18) through the real binaries: OpenCode's
//! bash tool starts a dev server in the workspace, `p` on the workspaces screen lists it, Enter
//! forwards it, the panel shows the local URL, and a fetch through that URL returns the file
//! the server serves; `x` stops the forward and the local port closes; the kill switch stops a
//! forward with a notice.

use crate::forward::{free_tcp_port, http_get, ports_until};
use crate::harness::*;
use crate::tmux::{Tmux, line_with};
use anyhow::{Context as _, Result, ensure};
use std::time::{Duration, Instant};

/// The `http://127.0.0.1:LOCAL` the panel shows for the forward to `port`, as `ADDR:PORT`.
fn shown_url(screen: &str, port: u16) -> Option<String> {
    let line = line_with(screen, &format!("→ box:{port}"))?;
    let url = line.split("forwarding http://").nth(1)?;
    Some(url.split_whitespace().next()?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_forwarded_from_the_full_screen_app_serves_the_dev_server() -> Result<()> {
    let http_port = free_tcp_port()?;
    let world = World::start_with(
        &format!(
            "permission = {{ bash = \"allow\" }}\nsandbox = {{ allow_bind_ports = [{http_port}] }}\n"
        ),
        &[],
    )
    .await?;
    let body = "served by the dev server, fetched through the app's forward\n";
    std::fs::write(world.workspace.join("hello.txt"), body)?;
    let session = world.tui_ok(&["new", "box", "demo"])?.trim().to_owned();
    let cmd = format!(
        "RUN_BASH: setsid nohup python3 -m http.server {http_port} --bind 127.0.0.1 >/dev/null 2>&1 &"
    );
    world.send_wait(&session, &cmd)?;
    ports_until(&world, "the dev server as the workspace's", |p| {
        p["port"] == http_port && p["workspace"] == "demo"
    })?;

    let tmux = Tmux::start(&world)?;
    tmux.wait_for("box online in the host list", |s| {
        line_with(s, " box ").is_some_and(|l| l.contains("● online"))
    })?;
    tmux.press("Enter")?;
    tmux.wait_for("the demo workspace", |s| {
        s.contains("box › workspaces") && line_with(s, "▶ demo").is_some()
    })?;
    tmux.press("p")?;
    let port = http_port.to_string();
    tmux.wait_text(&["ports on box", &port])?;
    // The dev server's row highlighted (other ports of the workspace may be listed).
    let selected = format!("▶ {port}");
    for _ in 0..20 {
        if line_with(&tmux.capture()?, &selected).is_some() {
            break;
        }
        tmux.press("j")?;
    }
    tmux.wait_for("the dev server's row selected", |s| {
        line_with(s, &selected).is_some()
    })?;
    tmux.press("Enter")?;
    let screen = tmux.wait_for("the forward's local URL", |s| {
        shown_url(s, http_port).is_some()
    })?;
    let local = shown_url(&screen, http_port).context("the URL")?;
    let (status, got) = http_get(&local, "/hello.txt")?;
    ensure!(status.contains("200"), "{status}");
    ensure!(got == body.as_bytes(), "{}", String::from_utf8_lossy(&got));

    // `x` stops it: the panel says so and the local port closes.
    tmux.press("x")?;
    tmux.wait_text(&["forward stopped"])?;
    closed(&local)?;

    // Forwarded again, then the kill switch: the app stops the forward and says so.
    tmux.press("Enter")?;
    let screen = tmux.wait_for("the new forward's local URL", |s| {
        shown_url(s, http_port).is_some()
    })?;
    let local = shown_url(&screen, http_port).context("the URL")?;
    let (status, _) = http_get(&local, "/hello.txt")?;
    ensure!(status.contains("200"), "{status}");
    let kill = std::process::Command::new(bin("cm-relay")?)
        .arg("--state-dir")
        .arg(world.tmp.path().join("relay"))
        .args(["kill", "--user", "owner"])
        .output()?;
    ensure!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    tmux.wait_text(&["1 port forward stopped: the relay connection was lost"])?;
    closed(&local)?;
    tmux.press("q")?;
    Ok(())
}

/// Waits until nothing accepts connections at `local` any more.
fn closed(local: &str) -> Result<()> {
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(local).is_ok() {
        ensure!(
            Instant::now() < deadline,
            "{local} still accepts connections"
        );
        // The listener closes in the app's connection task; bounded by the deadline.
        std::thread::park_timeout(Duration::from_millis(50));
    }
    Ok(())
}
