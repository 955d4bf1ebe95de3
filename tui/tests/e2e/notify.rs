//! Notifications through the real binaries (issue #22): a permission waiting on a real
//! OpenCode reaches a local ntfy-compatible receiver and a local webhook receiver once each
//! (the webhook's signature checked here, independently), with the `cm-tui approve` command
//! and nothing of the prompt; quiet hours and presence (`notify focus`, what the TUI sends)
//! hold; a failing receiver is retried and shown failing in `cm-tui notify list`.

use crate::harness::World;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);
const SECRET: &str = "hook-secret-for-the-test";
/// Words of the prompts; none may appear in any notification.
const PROMPT_WORDS: [&str; 3] = ["WRITE_FILE", "zebra-unicorn", "notes/"];

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The ntfy topic, or the webhook path.
    fn channel(&self) -> String {
        match self.json()["topic"].as_str() {
            Some(t) => t.to_owned(),
            None => self.path.clone(),
        }
    }
}

/// A tiny HTTP/1.1 receiver (ntfy-compatible JSON publish at `/`, webhooks at any path):
/// every request is recorded; `/fail` answers 500, everything else 200.
async fn receiver() -> Result<(String, mpsc::UnboundedReceiver<Received>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap_or("")
                    .to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let status = if path == "/fail" {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = tx.send(Received {
                    path,
                    headers,
                    body: buf[head_end..head_end + len].to_vec(),
                });
            });
        }
    });
    Ok((base, rx))
}

/// Everything received, by channel, in arrival order.
struct Inbox {
    rx: mpsc::UnboundedReceiver<Received>,
    got: Vec<Received>,
}

impl Inbox {
    fn of(&self, channel: &str) -> Vec<&Received> {
        self.got.iter().filter(|r| r.channel() == channel).collect()
    }

    /// Waits (with a deadline) until `channel` received `n` requests.
    async fn until(&mut self, channel: &str, n: usize) -> Result<Vec<Received>> {
        let deadline = Instant::now() + WAIT;
        while self.of(channel).len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(r)) => self.got.push(r),
                _ => bail!(
                    "{channel} got {} of {n} requests; all: {:?}",
                    self.of(channel).len(),
                    self.got
                ),
            }
        }
        Ok(self.of(channel).into_iter().cloned().collect())
    }
}

fn tui_with_env(world: &World, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(crate::harness::bin("cm-tui")?)
        .args(args)
        .envs(world.tui_env())
        .env("HOOK_SECRET", SECRET)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "cm-tui {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn verify_signature(r: &Received) -> Result<()> {
    let sig = r
        .header("X-CodeMantle-Signature")
        .context("no signature header")?;
    let hex_mac = sig
        .strip_prefix("sha256=")
        .context("signature without sha256=")?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    ring::hmac::verify(&key, &r.body, &hex::decode(hex_mac)?)
        .map_err(|_| anyhow::anyhow!("the webhook signature does not verify"))
}

fn no_prompt_text(r: &Received) {
    let body = String::from_utf8_lossy(&r.body);
    for word in PROMPT_WORDS {
        assert!(
            !body.contains(word),
            "prompt text {word:?} in a notification: {body}"
        );
    }
}

/// Quiet hours around the relay's current UTC time.
fn quiet_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let minute = (now / 60) % (24 * 60);
    let (start, end) = (
        (minute + 24 * 60 - 60) % (24 * 60),
        (minute + 60) % (24 * 60),
    );
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

/// Starts a turn in `session` that asks permission to write a file, and returns the pending
/// request id (as the session's event watch announces it).
fn ask_permission(world: &World, session: &str) -> Result<(crate::harness::Proc, String)> {
    let watcher = world.tui_spawn(&["watch", "box", "demo", "--session", session, "--json"])?;
    let sender = world.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        session,
        "WRITE_FILE: notes/zebra-unicorn.txt hi",
        "--wait",
    ])?;
    let asked = watcher.line_until("permission_asked", |l| l.contains("\"permission_asked\""))?;
    let asked: Value = serde_json::from_str(&asked)?;
    let id = asked["event"]["request"]["id"]
        .as_str()
        .context("no request id")?
        .to_owned();
    Ok((sender, id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_permission_notifies_each_channel_once_without_prompt_text() -> Result<()> {
    let world = World::start().await?;
    let (base, rx) = receiver().await?;
    let mut inbox = Inbox {
        rx,
        got: Vec::new(),
    };
    tui_with_env(
        &world,
        &[
            "notify", "add", "ntfy", "--server", &base, "--topic", "phone", "--name", "phone",
        ],
    )?;
    tui_with_env(
        &world,
        &[
            "notify",
            "add",
            "webhook",
            "--url",
            &format!("{base}/hook"),
            "--secret-env",
            "HOOK_SECRET",
            "--name",
            "hook",
        ],
    )?;
    tui_with_env(
        &world,
        &[
            "notify",
            "add",
            "webhook",
            "--url",
            &format!("{base}/fail"),
            "--secret-env",
            "HOOK_SECRET",
            "--name",
            "broken",
        ],
    )?;
    tui_with_env(
        &world,
        &[
            "notify",
            "add",
            "ntfy",
            "--server",
            &base,
            "--topic",
            "quiet",
            "--name",
            "quiet",
            "--quiet",
            &quiet_now(),
        ],
    )?;
    tui_with_env(
        &world,
        &[
            "notify",
            "add",
            "ntfy",
            "--server",
            &base,
            "--topic",
            "loud",
            "--name",
            "loud",
            "--ignore-presence",
        ],
    )?;

    // 1. A permission waits: one notification on the ntfy topic and one on the webhook.
    let session = world
        .tui_ok(&["new", "box", "demo", "--title", "notify"])?
        .trim()
        .to_owned();
    let (sender, request) = ask_permission(&world, &session)?;
    let ntfy = inbox.until("phone", 1).await?;
    let hook = inbox.until("/hook", 1).await?;
    let message = ntfy[0].json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains(&format!("cm-tui approve box demo {request}")),
        "{message}"
    );
    assert_eq!(
        ntfy[0].json()["title"],
        "box/demo: a permission request waits"
    );
    verify_signature(&hook[0])?;
    let body = hook[0].json();
    assert_eq!(
        (body["count"].as_u64(), body["request"].as_str()),
        (Some(1), Some(request.as_str()))
    );
    world.tui_ok(&["approve", "box", "demo", &request])?;
    let (status, _, _) = sender.finish()?;
    assert!(status.success());

    // 2. The failing receiver is retried, and `notify list` shows it failing.
    inbox.until("/fail", 2).await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let list = world.tui_ok(&["notify", "list"])?;
        if list.contains("FAILING (") && list.contains("HTTP 500") {
            assert!(!list.contains(SECRET), "{list}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "never shown failing: {list}");
    }

    // 3. Presence: with the session on screen (what the TUI sends), only the channel that
    //    ignores presence is told about the next permission.
    let focused = world
        .tui_ok(&["new", "box", "demo", "--title", "focused"])?
        .trim()
        .to_owned();
    world.tui_ok(&["notify", "focus", "box", "demo", &focused])?;
    let (sender, request) = ask_permission(&world, &focused)?;
    let loud = inbox.until("loud", 2).await?;
    assert!(
        loud[1].json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&request)
    );
    world.tui_ok(&["approve", "box", "demo", &request])?;
    sender.finish()?;
    // A test notification is sent at once, after everything the policy had due: the next
    // thing the focused-out and the quiet channels get is the test, nothing before it.
    world.tui_ok(&["notify", "test", "phone"])?;
    world.tui_ok(&["notify", "test", "quiet"])?;
    let phone = inbox.until("phone", 2).await?;
    assert_eq!(phone[1].json()["tags"][0], "test", "{:?}", phone[1].json());
    let quiet = inbox.until("quiet", 1).await?;
    assert_eq!(
        quiet[0].json()["tags"][0],
        "test",
        "quiet hours held: {:?}",
        quiet[0].json()
    );
    assert_eq!(inbox.of("/hook").len(), 1, "the webhook was told once");
    for r in &inbox.got {
        no_prompt_text(r);
    }
    Ok(())
}
