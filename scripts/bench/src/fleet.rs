//! Scenario 3, scale: N simulated agents with real QUIC + TLS + h1/h2 handshakes, heart-beating
//! every 3 s, against the release `cm-relay` as a separate process (for its RSS and CPU), and
//! the same N bare QUIC connections against a raw quinn server process (`cm-bench raw-server`).

mod rows;

use crate::child::{self, Proc};
use crate::netutil;
use crate::options::Options;
use crate::procfs::{cpu_seconds, open_files_limit, rss_kib, ticks_per_second};
use crate::rawserver;
use crate::report::Row;
use crate::stats::grouped;
use crate::swarm::{self, PER_ENDPOINT};
use crate::worlds::{init_state, login_owner, online, watch_until};
use anyhow::{Context, Result};
use cm_client as client;
use cm_client::framed::FramedRecv;
use proto::handshake::PeerKind;
use proto::header::{Op, StreamHeader};
use proto::host_watch::HostUpdate;
use proto::ids::ReqId;
use proto::message::Reply;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Goal: relay memory per connected agent, KiB.
const GOAL_RSS_KIB: f64 = 64.0;
/// Goal: handshakes per second.
const GOAL_HS: f64 = 1000.0;

/// What one server process cost.
#[derive(Debug)]
struct Measured {
    rss_per_conn_kib: f64,
    rss_delta_mib: f64,
    handshakes_per_s: f64,
    cpu_ms_per_handshake: f64,
    /// Until the relay had logged every agent online.
    online_log: Option<Duration>,
    /// Until watch_hosts showed every agent online, or why it could not.
    online_watch: Result<Duration, String>,
    idle_cpu_pct: f64,
    busy_cpu_pct: f64,
    updates_per_s: f64,
    update_kib: f64,
    failed: usize,
}

impl Default for Measured {
    fn default() -> Self {
        Self {
            rss_per_conn_kib: 0.0,
            rss_delta_mib: 0.0,
            handshakes_per_s: 0.0,
            cpu_ms_per_handshake: 0.0,
            online_log: None,
            online_watch: Err("not measured".into()),
            idle_cpu_pct: 0.0,
            busy_cpu_pct: 0.0,
            updates_per_s: 0.0,
            update_kib: 0.0,
            failed: 0,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Percent of one core `pid` used over `window`.
async fn cpu_pct(pid: u32, tck: u64, window: Duration) -> Result<f64> {
    let before = cpu_seconds(pid, tck)?;
    tokio::time::sleep(window).await;
    Ok((cpu_seconds(pid, tck)? - before) / window.as_secs_f64() * 100.0)
}

/// Host list updates received on a watch during `window`, after the first (full) one:
/// (updates, bytes of all their pages).
async fn count_updates(conn: &quinn::Connection, window: Duration) -> Result<(usize, usize)> {
    let (_send, recv) =
        client::subscribe(conn, &StreamHeader::new(Op::WatchHosts, ReqId(8))).await?;
    let mut recv: FramedRecv = recv;
    let (mut n, mut bytes) = (0, 0);
    let mut first_done = false;
    let _ = tokio::time::timeout(window, async {
        while let Ok(Some(frame)) = recv.next_raw().await {
            let Ok(Reply::Ok(page)) = proto::frame::parse_json::<Reply<HostUpdate>>(&frame) else {
                break;
            };
            if first_done {
                bytes += frame.len();
                n += usize::from(!page.more);
            }
            first_done |= !page.more;
        }
    })
    .await;
    Ok((n, bytes))
}

fn settle(opts: &Options) -> Duration {
    if opts.smoke {
        Duration::from_millis(500)
    } else {
        opts.heartbeat_interval + Duration::from_millis(500)
    }
}

fn relay_fleet(opts: &Options, n: usize, tck: u64) -> Result<Measured> {
    let tmp = opts.tempdir()?;
    let (dir, init) = init_state(&tmp)?;
    swarm::enroll(&dir, n)?;
    let (proc, addr, _) = child::relay(&opts.bin_dir, dir.root())?;
    let pid = proc.pid();
    let result = runtime()?.block_on(async {
        let cred = login_owner(addr, &init.pin, &init).await?;
        let op_ep = netutil::client_endpoint(&init.pin)?;
        let conn = netutil::connect(&op_ep, addr).await?;
        let op =
            client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss0, cpu0) = (rss_kib(pid)?, cpu_seconds(pid, tck)?);
        let start = Instant::now();
        let watch_conn = op.conn.clone();
        // Every agent, until the swarm knows how many failed to connect (a handshake that
        // timed out on the shared cores is reported in the handshake row, not waited for).
        let expected = Arc::new(AtomicUsize::new(n));
        let target = expected.clone();
        let watch = tokio::spawn(async move {
            watch_until(&watch_conn, |l| online(l) >= target.load(Ordering::Relaxed))
                .await
                .map(|_| Instant::now())
        });
        let swarm = swarm::connect(addr, &init.pin, n, Some(opts.heartbeat_interval)).await?;
        expected.store(n - swarm.failed, Ordering::Relaxed);
        let cpu1 = cpu_seconds(pid, tck)?;
        let logged = proc
            .wait_for_nth("agent online", n - swarm.failed, Duration::from_secs(30))
            .ok()
            .map(|(at, _)| at.saturating_duration_since(start));
        let online_watch = match watch.await? {
            Ok(at) => Ok(at - start),
            Err(e) => Err(format!("{e:#}")),
        };
        tokio::time::sleep(settle(opts)).await;
        let rss1 = rss_kib(pid)?;
        let idle_cpu_pct = cpu_pct(pid, tck, opts.cpu_window).await?;
        swarm.vary.store(true, Ordering::Relaxed);
        let (busy, updates) = tokio::join!(
            cpu_pct(pid, tck, opts.cpu_window),
            count_updates(&op.conn, opts.cpu_window)
        );
        let (updates, bytes) = updates?;
        swarm.close();
        op_ep.close(0u32.into(), b"done");
        let ok = (n - swarm.failed).max(1) as f64;
        Ok::<_, anyhow::Error>(Measured {
            rss_per_conn_kib: (rss1 as f64 - rss0 as f64) / ok,
            rss_delta_mib: (rss1 as f64 - rss0 as f64) / 1024.0,
            handshakes_per_s: ok / swarm.connect_time.as_secs_f64(),
            cpu_ms_per_handshake: (cpu1 - cpu0) * 1000.0 / ok,
            online_log: logged,
            online_watch,
            idle_cpu_pct,
            busy_cpu_pct: busy?,
            updates_per_s: updates as f64 / opts.cpu_window.as_secs_f64(),
            update_kib: bytes as f64 / updates.max(1) as f64 / 1024.0,
            failed: swarm.failed,
        })
    });
    proc.stop();
    result
}

fn raw_fleet(opts: &Options, n: usize, tck: u64) -> Result<Measured> {
    let tmp = opts.tempdir()?;
    let (dir, init) = init_state(&tmp)?;
    // The cm-bench binary next to the others (not current_exe: the smoke test runs this from
    // a test harness).
    let mut cmd = Command::new(child::binary(&opts.bin_dir, "cm-bench")?);
    cmd.arg("raw-server").arg("--state-dir").arg(dir.root());
    let proc = Proc::spawn(cmd)?;
    let addr = child::local_addr(&proc.wait_for(rawserver::READY)?)?;
    let pid = proc.pid();
    let result = runtime()?.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss0, cpu0) = (rss_kib(pid)?, cpu_seconds(pid, tck)?);
        let swarm = swarm::connect(addr, &init.pin, n, None).await?;
        let cpu1 = cpu_seconds(pid, tck)?;
        tokio::time::sleep(settle(opts)).await;
        let rss1 = rss_kib(pid)?;
        let idle_cpu_pct = cpu_pct(pid, tck, opts.cpu_window).await?;
        swarm.close();
        let ok = (n - swarm.failed).max(1) as f64;
        Ok::<_, anyhow::Error>(Measured {
            rss_per_conn_kib: (rss1 as f64 - rss0 as f64) / ok,
            rss_delta_mib: (rss1 as f64 - rss0 as f64) / 1024.0,
            handshakes_per_s: ok / swarm.connect_time.as_secs_f64(),
            cpu_ms_per_handshake: (cpu1 - cpu0) * 1000.0 / ok,
            idle_cpu_pct,
            failed: swarm.failed,
            ..Measured::default()
        })
    });
    proc.stop();
    result
}

/// Runs scenario 3.
///
/// # Errors
/// Missing binaries, or a server that does not come up.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let tck = ticks_per_second();
    let limit = open_files_limit().unwrap_or(1024) as usize;
    let mut out = Vec::new();
    let counts: Vec<usize> = opts.agents.clone();
    out.push(Row::info(
        "3 fleet",
        "agent counts (open-file limit)",
        format!(
            "{} (ulimit -n {limit}; not binding: one UDP socket per {PER_ENDPOINT} agents here, one in the relay)",
            counts.iter().map(|n| grouped(*n as i64)).collect::<Vec<_>>().join(", ")
        ),
    ));
    for n in counts {
        let relay = relay_fleet(opts, n, tck).with_context(|| format!("relay fleet of {n}"))?;
        let raw = raw_fleet(opts, n, tck).with_context(|| format!("raw fleet of {n}"))?;
        out.extend(rows::rows(n, &relay, &raw, opts.heartbeat_interval));
    }
    let fleet = 10_000;
    let (per_host, pages) = rows::realistic_list_pages(fleet)?;
    out.push(Row::info(
        "3 fleet",
        &format!(
            "host list with a real agent's status: bytes per host; a full list of {} hosts in pages of ≤ {} KiB",
            grouped(fleet as i64),
            proto::host_watch::PAGE_BUDGET / 1024
        ),
        format!("{per_host} B; {pages} pages"),
    ));
    Ok(out)
}
