//! `cm-tui ports` and `cm-tui forward` through the real binaries (issue 18): a dev server that
//! OpenCode's bash tool started in the workspace is detected as the workspace's, forwarded to
//! a local port and fetched byte for byte; a WebSocket echo works through a forward; a port the
//! host does not allow is refused naming its `[forward]` policy; the kill switch ends a forward.

use crate::harness::*;
use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

pub(crate) fn free_tcp_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Deterministic bytes that no compression or line handling leaves alone.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// `GET path` over HTTP/1.0 at `addr`: the status line and the body.
pub(crate) fn http_get(addr: &str, path: &str) -> Result<(String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(WAIT))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, all[end + 4..].to_vec()))
}

/// The ports `cm-tui ports box --json` lists until one satisfies `pred` (bounded).
pub(crate) fn ports_until(
    world: &World,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list: Value = serde_json::from_str(&world.tui_ok(&["ports", "box", "--json"])?)?;
        if list.as_array().is_some_and(|a| a.iter().any(&pred)) {
            return Ok(list);
        }
        ensure!(Instant::now() < deadline, "never saw {what}: {list}");
        // Polling a command whose answer changes when another process binds; bounded above.
        std::thread::park_timeout(std::time::Duration::from_millis(200));
    }
}

/// `cm-tui forward box PORT --local 127.0.0.1:0`, and the local address it printed.
fn forward(world: &World, port: u16) -> Result<(Proc, String)> {
    let p = world.tui_spawn(&[
        "forward",
        "box",
        &port.to_string(),
        "--local",
        "127.0.0.1:0",
    ])?;
    let line = p.line_until("the forward's local URL", |l| l.starts_with("forwarding "))?;
    let url = line
        .split_whitespace()
        .nth(1)
        .context("no URL")?
        .trim_start_matches("http://")
        .to_owned();
    Ok((p, url))
}

/// How many lines of the agent's log contain `needle`.
fn agent_log_count(world: &World, needle: &str) -> usize {
    world.agent.as_ref().map_or(0, |a| {
        a.stderr_log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    })
}

/// "U bytes up, D bytes down, …" → D.
fn bytes_down(reason: &str) -> Option<u64> {
    let (_, rest) = reason.split_once(" bytes up, ")?;
    rest.split_once(" bytes down")?.0.parse().ok()
}

/// `cm-relay audit --json` rows until one satisfies `pred(op, target, reason)`; returns it.
fn audit_until(
    relay_state: &std::path::Path,
    what: &str,
    pred: impl Fn(&str, &str, &str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = std::process::Command::new(bin("cm-relay")?)
            .arg("--state-dir")
            .arg(relay_state)
            .args(["audit", "--json", "--limit", "500"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)?;
            let e = if v.get("event").is_some() {
                &v["event"]
            } else {
                &v
            };
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            if pred(&field("op"), &field("target"), &field("reason")) {
                return Ok(line.to_owned());
            }
        }
        ensure!(Instant::now() < deadline, "never saw {what}:\n{text}");
        // Rows of ended streams are written within milliseconds; bounded above.
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
}

mod ws {
    //! A minimal RFC 6455 echo server and client (text frames up to 125 bytes).
    use super::*;
    use base64::Engine as _;
    use sha1::Digest as _;

    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    fn accept_key(key: &str) -> String {
        let digest = sha1::Sha1::digest(format!("{key}{GUID}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest)
    }

    fn read_head(s: &mut TcpStream) -> Result<String> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        Ok(String::from_utf8(head)?)
    }

    fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>> {
        let mut h = [0u8; 2];
        s.read_exact(&mut h)?;
        let masked = h[1] & 0x80 != 0;
        let len = usize::from(h[1] & 0x7f);
        ensure!(len <= 125, "long frames are not needed here");
        let mut mask = [0u8; 4];
        if masked {
            s.read_exact(&mut mask)?;
        }
        let mut data = vec![0u8; len];
        s.read_exact(&mut data)?;
        if masked {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        Ok(data)
    }

    /// Serves one connection: the handshake, then echoes text frames until the peer leaves.
    pub fn spawn_echo() -> Result<u16> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        std::thread::spawn(move || -> Result<()> {
            for conn in listener.incoming() {
                let mut s = conn?;
                std::thread::spawn(move || -> Result<()> {
                    let head = read_head(&mut s)?;
                    let key = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                        .context("no key")?;
                    write!(
                        s,
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                        accept_key(key.trim())
                    )?;
                    while let Ok(data) = read_frame(&mut s) {
                        let len = u8::try_from(data.len())?;
                        s.write_all(&[0x81, len])?;
                        s.write_all(&data)?;
                    }
                    Ok(())
                });
            }
            Ok(())
        });
        Ok(port)
    }

    /// Connects through `addr`, says `text`, returns the echo and the open connection.
    pub fn echo_through(addr: &str, text: &str) -> Result<(String, TcpStream)> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(WAIT))?;
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        write!(
            s,
            "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let head = read_head(&mut s)?;
        ensure!(head.starts_with("HTTP/1.1 101"), "{head}");
        ensure!(
            head.contains(&format!("Sec-WebSocket-Accept: {}", accept_key(key))),
            "{head}"
        );
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | u8::try_from(text.len())?];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        s.write_all(&frame)?;
        let echo = String::from_utf8(read_frame(&mut s)?)?;
        Ok((echo, s))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_started_by_opencode_is_detected_forwarded_and_ends_with_the_kill_switch()
-> Result<()> {
    let http_port = free_tcp_port()?;
    let ws_port = ws::spawn_echo()?;
    let refused_port = free_tcp_port()?;
    let late_port = free_tcp_port()?;
    let world = World::start_with(
        &format!(
            "permission = {{ bash = \"allow\" }}\nsandbox = {{ allow_bind_ports = [{http_port}] }}\n\n\
             [forward]\nallow = [\"detected\", {ws_port}, {late_port}]\n"
        ),
        &[],
    )
    .await?;
    let body = payload(3 * 1024 * 1024 + 17);
    std::fs::write(world.workspace.join("big.bin"), &body)?;
    // A host service nobody allowed: listening, but not a workspace's and not in `allow`.
    let _host_service = TcpListener::bind(("127.0.0.1", refused_port))?;

    // OpenCode's bash tool starts the dev server in the workspace.
    let session = world.tui_ok(&["new", "box", "demo"])?.trim().to_owned();
    let cmd = format!(
        "RUN_BASH: setsid nohup python3 -m http.server {http_port} --bind 127.0.0.1 >/dev/null 2>&1 &"
    );
    world.send_wait(&session, &cmd)?;
    let list = ports_until(&world, "the dev server as the workspace's", |p| {
        p["port"] == http_port && p["workspace"] == "demo"
    })?;
    let server = list
        .as_array()
        .and_then(|a| a.iter().find(|p| p["port"] == http_port))
        .context("listed")?;
    assert_eq!(server["forwardable"], true, "{list}");
    assert!(
        server["process"]
            .as_str()
            .is_some_and(|p| p.starts_with("python")),
        "{list}"
    );
    assert!(
        list.as_array()
            .is_some_and(|a| a.iter().all(|p| p["port"] != refused_port)),
        "a host service nobody allowed is not shown: {list}"
    );
    let text = world.tui_ok(&["ports", "box", "demo"])?;
    assert!(text.contains(&http_port.to_string()), "{text}");
    assert!(
        !text.contains(&refused_port.to_string()),
        "only demo's ports: {text}"
    );

    // `--watch` prints the list again when a port starts listening.
    let watch = world.tui_spawn(&["ports", "box", "--watch", "--json"])?;
    let first = watch.next_line()?;
    let _late = TcpListener::bind(("127.0.0.1", late_port))?;
    assert!(
        !first.contains(&format!("\"port\":{late_port},")),
        "{first}"
    );
    watch.line_until("the new port in the watched list", |l| {
        l.contains(&format!("\"port\":{late_port},"))
    })?;
    drop(watch);

    // Forwarded and fetched byte for byte.
    let (http_fwd, local) = forward(&world, http_port)?;
    let (status, got) = http_get(&local, "/big.bin")?;
    assert!(status.contains("200"), "{status}");
    assert!(
        got == body,
        "the body differs ({} bytes, sent {})",
        got.len(),
        body.len()
    );

    // The relay audited the forwarded connection with the bytes it carried.
    let relay_state = world.tmp.path().join("relay");
    let row = audit_until(
        &relay_state,
        "the download's forward_closed row",
        |op, target, reason| {
            op == "forward_closed"
                && target == format!("port {http_port}")
                && bytes_down(reason).is_some_and(|down| down > body.len() as u64)
        },
    )?;
    assert!(row.contains("bytes up"), "{row}");
    audit_until(
        &relay_state,
        "the forward's allowed row",
        |op, _, reason| {
            op == "port_forward" && reason.contains(&format!("forward port {http_port}"))
        },
    )?;

    // A WebSocket echo through an explicitly allowed port.
    let (_ws_fwd, ws_local) = forward(&world, ws_port)?;
    let (reply, _held_open) = ws::echo_through(&ws_local, "hello through the relay")?;
    assert_eq!(reply, "hello through the relay");
    let closed_before = agent_log_count(&world, &format!("forward closed port={ws_port} "));

    // A port the host does not allow: refused before listening, naming the policy.
    let out = world.tui(&["forward", "box", &refused_port.to_string()])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "port {refused_port} is not allowed by this host's [forward] policy"
        )),
        "{err}"
    );

    // The kill switch ends the forward with a clear message.
    let kill = std::process::Command::new(bin("cm-relay")?)
        .arg("--state-dir")
        .arg(&relay_state)
        .args(["kill", "--user", "owner"])
        .output()?;
    ensure!(
        kill.status.success(),
        "{}",
        String::from_utf8_lossy(&kill.stderr)
    );
    let (status, _, err) = http_fwd.finish()?;
    assert!(!status.success(), "the forward ended with an error");
    if !err.contains("forward ended: the relay revoked this login") {
        bail!("unexpected end: {err}");
    }
    // The host's side of the WebSocket connection still open at the kill is closed too.
    let deadline = Instant::now() + WAIT;
    while agent_log_count(&world, &format!("forward closed port={ws_port} ")) == closed_before {
        ensure!(
            Instant::now() < deadline,
            "the agent kept the forwarded connection open"
        );
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
    Ok(())
}
