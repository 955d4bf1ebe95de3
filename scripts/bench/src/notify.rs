//! Scenario 15, notifications (issue #22): the time from an agent telling the relay that a
//! permission waits (`Control::Attention`, what the real agent sends on OpenCode's
//! `permission.asked`) until the webhook POST arrives at a local receiver, through an
//! in-process relay with its default policy. The relay holds a session's first notice for its
//! coalescing window (1 s) so that a burst becomes one notification saying how many, then
//! POSTs: the figure is that window plus the relay's own cost. Each run uses a new session
//! (one session is notified at most every 30 s). The goal: within 2 s.

use crate::netutil;
use crate::options::Options;
use crate::report::{Row, Verdict};
use crate::worlds::{HOST, WAIT, init_state, login_owner};
use anyhow::{Context, Result};
use cm_client::framed::send_frame;
use cm_client::{self as client, Session};
use cm_relay::config::RelayConfig;
use cm_relay::notify::targets::AllowEntry;
use cm_relay::server::Relay;
use proto::frame::MAX_FRAME_LEN;
use proto::handshake::PeerKind;
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, ReqId};
use proto::message::Control;
use proto::notify::{Attention, AttentionKind, ChannelInfo, ChannelSpec, ChannelTarget};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Goal: the notification arrives within this long (worst run), ms.
const GOAL_MS: f64 = 2000.0;

/// A webhook receiver on loopback: the instant each request's body had fully arrived.
async fn receiver() -> Result<(String, mpsc::UnboundedReceiver<Instant>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let _ = tx.send(Instant::now());
                            let _ = conn
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    Ok((url, rx))
}

/// The host [`HOST`] on the relay: heart-beats every 3 s and sends what `notices` gives it on
/// its control stream, until the connection ends.
async fn scripted_agent(
    addr: SocketAddr,
    pin: &str,
    secret: &proto::handshake::Key,
) -> Result<(quinn::Endpoint, mpsc::UnboundedSender<Control>)> {
    let ep = netutil::client_endpoint(pin)?;
    let conn = netutil::connect(&ep, addr).await?;
    let Session {
        mut control_send,
        mut control_recv,
        ..
    } = client::authenticate(conn, PeerKind::Agent, &CredId(HOST.into()), secret).await?;
    let (tx, mut notices) = mpsc::unbounded_channel::<Control>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        let mut seq = 0u64;
        loop {
            let msg = tokio::select! {
                _ = tick.tick() => {
                    seq += 1;
                    Control::Heartbeat { seq, status: Default::default() }
                }
                next = notices.recv() => match next {
                    Some(msg) => msg,
                    None => return,
                },
                ack = control_recv.next::<Control>() => match ack {
                    Ok(Some(_)) => continue,
                    _ => return,
                },
            };
            if send_frame(&mut control_send, &msg, MAX_FRAME_LEN)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    Ok((ep, tx))
}

/// Runs the scenario (5 runs; 2 in a smoke run).
///
/// # Errors
/// Setup failures or a notification that never arrives.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(measure(opts))
}

async fn measure(opts: &Options) -> Result<Vec<Row>> {
    let tmp = opts.tempdir()?;
    let (dir, init) = init_state(&tmp)?;
    let mut config = RelayConfig::new(dir.root().to_owned());
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.drain_timeout = Duration::from_secs(1);
    // The receiver listens on loopback, which a relay refuses unless allowed.
    config.notify.targets.allow_hosts = vec![AllowEntry::Addr([127, 0, 0, 1].into())];
    let relay = Relay::spawn(config).await?;
    let addr = relay.local_addr();
    let pin = relay.pin().to_owned();
    let cred = login_owner(addr, &pin, &init).await?;
    let token = cm_relay::cli::host_add(&dir, HOST, Some(addr.to_string()))?;
    let (agent_ep, agent) = scripted_agent(addr, &pin, &token.secret).await?;
    let op_ep = netutil::client_endpoint(&pin)?;
    let op = client::authenticate(
        netutil::connect(&op_ep, addr).await?,
        PeerKind::Operator,
        &cred.cred_id,
        &cred.secret,
    )
    .await?;
    let (url, mut arrived) = receiver().await?;
    let spec = ChannelSpec {
        name: "bench".into(),
        target: ChannelTarget::Webhook { url },
        secret: Some("bench-secret".into()),
        events: vec![],
        quiet: None,
        ignore_presence: false,
    };
    let _: ChannelInfo = client::request(
        &op.conn,
        &StreamHeader::new(Op::NotifyAdd, ReqId(1)),
        Some(&spec),
    )
    .await?;
    let runs = if opts.smoke { 2 } else { 5 };
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let notice = Control::Attention {
            attention: Attention {
                workspace: "demo".into(),
                session: Some(format!("ses_bench{i}")),
                title: None,
                kind: AttentionKind::PermissionWaiting,
                request: Some(format!("per_bench{i}")),
            },
        };
        let start = Instant::now();
        agent.send(notice).context("the scripted agent stopped")?;
        let at = tokio::time::timeout(WAIT, arrived.recv())
            .await
            .context("no notification arrived")?
            .context("the receiver stopped")?;
        times.push(at.duration_since(start));
    }
    op_ep.close(0u32.into(), b"done");
    agent_ep.close(0u32.into(), b"done");
    relay.shutdown().await;
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let worst = times.last().copied().unwrap_or_default();
    Ok(vec![Row {
        scenario: "15 notify".into(),
        metric: format!(
            "ms from an agent's permission notice to the webhook POST arriving, median / worst of {runs} (includes the 1 s coalescing window)"
        ),
        relay: format!("{:.0} / {:.0}", ms(median), ms(worst)),
        raw: "—".into(),
        delta: "—".into(),
        goal: "≤ 2,000 ms".into(),
        verdict: Verdict::check(ms(worst) <= GOAL_MS),
    }])
}
