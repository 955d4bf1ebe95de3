//! What the fault tests share: a fault-injecting UDP proxy, restarting the relay and agent
//! processes, the operator library client, and bounded polls.

use crate::harness::{WAIT, World, spawn_relay};
use anyhow::{Context, Result, bail};
use cm_client::secrets::StoreChoice;
use cm_tui::profile::Logins;
use cm_tui::remote::{EventStream, Remote, Target};
use proto::event::{Event, EventFrame};
use proto::ops::Prompt;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

/// A UDP proxy between agent and relay with a switch that drops every packet both ways.
pub struct UdpProxy {
    pub addr: SocketAddr,
    blackhole: Arc<AtomicBool>,
    /// Packets forwarded towards the upstream.
    forwarded: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl UdpProxy {
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let blackhole = Arc::new(AtomicBool::new(false));
        let cut = Arc::clone(&blackhole);
        let forwarded = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&forwarded);
        let task = tokio::spawn(async move {
            // One upstream socket per client address (the agent dials from a new port after a
            // reconnect).
            let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, from)) = front.recv_from(&mut buf).await else {
                    return;
                };
                if cut.load(Ordering::SeqCst) {
                    continue;
                }
                let back = match clients.get(&from) {
                    Some(s) => Arc::clone(s),
                    None => {
                        let Ok(s) = UdpSocket::bind("127.0.0.1:0").await else {
                            continue;
                        };
                        if s.connect(upstream).await.is_err() {
                            continue;
                        }
                        let s = Arc::new(s);
                        clients.insert(from, Arc::clone(&s));
                        let (reply, front, cut) =
                            (Arc::clone(&s), Arc::clone(&front), Arc::clone(&cut));
                        tokio::spawn(async move {
                            let mut buf = vec![0u8; 65_536];
                            while let Ok(n) = reply.recv(&mut buf).await {
                                if !cut.load(Ordering::SeqCst) {
                                    let _ = front.send_to(&buf[..n], from).await;
                                }
                            }
                        });
                        s
                    }
                };
                if back.send(&buf[..n]).await.is_ok() {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Ok(Self {
            addr,
            blackhole,
            forwarded,
            task,
        })
    }

    /// How many packets went towards the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Drops (true) or forwards (false) every packet from now on.
    pub fn cut(&self, on: bool) {
        self.blackhole.store(on, Ordering::SeqCst);
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The relay address the agent dials (from its config).
pub fn agent_relay(world: &World) -> Result<String> {
    let text = std::fs::read_to_string(&world.agent_config)?;
    let v: toml::Value = toml::from_str(&text)?;
    Ok(v["relay"]
        .as_str()
        .context("relay in agent.toml")?
        .to_owned())
}

/// Points the agent at another relay address (takes effect at its next start).
pub fn set_agent_relay(world: &World, addr: &str) -> Result<()> {
    let text = std::fs::read_to_string(&world.agent_config)?;
    let old = agent_relay(world)?;
    std::fs::write(
        &world.agent_config,
        text.replacen(
            &format!("relay = \"{old}\""),
            &format!("relay = \"{addr}\""),
            1,
        ),
    )?;
    // The host secret is filed under `HOST@RELAY`: its entry moves along.
    let secrets = world.agent_state.join("secrets.json");
    let text = std::fs::read_to_string(&secrets)?;
    std::fs::write(
        &secrets,
        text.replace(&format!("@{old}"), &format!("@{addr}")),
    )?;
    Ok(())
}

/// Starts `cm-relay run` again on the same state and address, as `World::start` did.
pub fn restart_relay(world: &mut World, addr: &str) -> Result<()> {
    world.relay = spawn_relay(&world.tmp.path().join("relay"), addr)?;
    Ok(())
}

/// Waits (bounded) until `cm-tui hosts` shows the host online (`true`) or offline.
pub async fn wait_online(world: &World, online: bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let out = world.tui(&["hosts", "--json"])?;
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout)?;
            if v["hosts"][0]["online"] == Value::Bool(online) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("host never became online={online}");
        }
        // A poll interval against the relay's presence timer, not a synchronisation sleep.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `f` until it returns `Some` (bounded).
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(t) = f()? {
            return Ok(t);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator library client with the world's saved login, retrying while the relay is
/// down (bounded).
pub async fn operator(world: &World) -> Result<Remote> {
    let dir: PathBuf = world
        .tui_env()
        .into_iter()
        .find(|(k, _)| *k == "CM_TUI_STATE_DIR")
        .map(|(_, v)| v.into())
        .context("tui state dir")?;
    let (profile, key) = Logins::open(&dir, StoreChoice::File)?.load(cm_client::time::now_ms())?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Remote::connect(&profile, &key).await {
            Ok(r) => return Ok(r),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Opens a watch, retrying while the host is not back yet (bounded).
pub async fn watch(remote: &Remote, target: &Target, after: Option<u64>) -> Result<EventStream> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match remote.watch(target, after).await {
            Ok(w) => return Ok(w),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The next frame (bounded).
pub async fn next(events: &mut EventStream) -> Result<EventFrame> {
    tokio::time::timeout(WAIT, events.next())
        .await
        .context("no event in time")??
        .context("the watch ended")
}

/// The text of `session`'s messages from `cm-tui messages --json`: (role, text) in order.
pub fn transcript(world: &World, session: &str) -> Result<Vec<(String, String)>> {
    let out = world.tui_ok(&["messages", "box", "demo", session, "--json"])?;
    let v: Value = serde_json::from_str(&out)?;
    let list = v.as_array().cloned().unwrap_or_default();
    Ok(list
        .iter()
        .map(|m| {
            let text: String = m["parts"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["type"] == "text")
                        .filter_map(|p| p["text"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            (m["role"].as_str().unwrap_or("").to_owned(), text)
        })
        .collect())
}

/// Waits (bounded, `what`) until `session`'s history has an assistant message containing
/// `needle`; returns the history.
pub async fn answered(
    world: &World,
    session: &str,
    what: &str,
    needle: &str,
) -> Result<Vec<(String, String)>> {
    eventually(what, || {
        let t = transcript(world, session)?;
        Ok(t.iter()
            .any(|(role, text)| role == "assistant" && text.contains(needle))
            .then_some(t))
    })
    .await
}

/// How many user messages in the history `t` say exactly `text`.
pub fn user_messages(t: &[(String, String)], text: &str) -> usize {
    t.iter()
        .filter(|(role, said)| role == "user" && said == text)
        .count()
}

/// A prompt with its idempotency key.
pub fn prompt(text: &str, key: &str) -> Prompt {
    Prompt {
        text: text.into(),
        idempotency_key: key.into(),
        model: None,
        agent: None,
    }
}

/// The text deltas of `session` in `frames`, joined.
pub fn deltas(frames: &[EventFrame], session: &str) -> String {
    frames
        .iter()
        .filter_map(|f| match &f.event {
            Event::TextDelta {
                session: s, delta, ..
            } if s == session => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// `SLOW n`'s full answer.
pub fn slow_text(n: usize) -> String {
    (0..n).map(|i| format!("chunk {i} ")).collect()
}

/// The keeper pid the agent recorded for the demo workspace, if any.
pub fn recorded_pid(world: &World) -> Result<Option<i32>> {
    let path = world.agent_state.join("agent-state.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(&text)?;
    Ok(v["children"]["demo"]["pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok()))
}

/// Whether `pid` is a live (non-zombie) process.
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .is_some_and(|st| st != "Z")
    })
}

/// Children of `pid` (by `/proc/*/stat` parent).
pub fn children_of(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(1))
                    .and_then(|pp| pp.parse::<i32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}
