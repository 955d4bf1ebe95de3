//! Scenario 2, throughput: one bulk download of N MiB (agent → operator) through the relay vs
//! direct, and many concurrent streams of small round trips (64 B echo, a new stream each).

use crate::events::EventHub;
use crate::exchange::{download, round_trip};
use crate::options::Options;
use crate::peer::Mode;
use crate::procfs::ticks_per_second;
use crate::report::{Row, Verdict};
use crate::roles::{Roles, cpu_by_role, cpu_since};
use crate::stats::grouped;
use crate::worlds::{Direct, Relayed, header};
use anyhow::{Result, ensure};
use bytes::Bytes;
use proto::header::Op;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Below this much CPU time (10 ms ticks) a per-unit CPU figure means nothing.
pub const MIN_CPU_S: f64 = 0.2;

/// Goal: relayed bulk throughput as a share of direct.
const GOAL_RATIO: f64 = 0.8;
/// Goal: relayed small round trips per second with 50 streams on 2 cores.
const GOAL_RTS: f64 = 30_000.0;

/// A measured phase: its rate and the CPU each role spent on it.
#[derive(Debug, Clone, Copy)]
struct Phase {
    rate: f64,
    /// CPU seconds: operator, relay, agent.
    cpu: [f64; 3],
}

impl Phase {
    /// "operator / relay / agent = total" CPU per `unit` of work, scaled by `scale`.
    fn cpu_text(&self, units: f64, scale: f64, relayed: bool) -> String {
        if self.total() < MIN_CPU_S {
            return "n/a (too short)".into();
        }
        let per = self.cpu.map(|c| c / units * scale);
        let relay = if relayed {
            format!("{:.1}", per[1])
        } else {
            "—".into()
        };
        format!(
            "{:.1} / {relay} / {:.1} = {:.1}",
            per[0],
            per[2],
            per.iter().sum::<f64>()
        )
    }

    fn total(&self) -> f64 {
        self.cpu.iter().sum()
    }
}

async fn bulk(conn: &quinn::Connection, bytes: u64, tck: u64) -> Result<Phase> {
    let hdr = header(Op::Diff, Mode::Source(bytes))?;
    let before = cpu_by_role(tck);
    let (got, took) = download(conn, &hdr).await?;
    let cpu = cpu_since(before, tck);
    ensure!(got == bytes, "downloaded {got} of {bytes} bytes");
    Ok(Phase {
        rate: bytes as f64 / took.as_secs_f64() / 1e6,
        cpu,
    })
}

/// "×ratio" of two CPU totals, or "—" when either is too small to mean anything.
pub fn cpu_ratio(relay: f64, raw: f64) -> String {
    if relay <= 0.0 || raw <= 0.0 {
        "—".into()
    } else {
        format!("×{:.2}", relay / raw)
    }
}

/// Round trips per second with `streams` concurrent loops on `conn` for `time`.
async fn concurrent(
    conn: &quinn::Connection,
    streams: usize,
    time: Duration,
    tck: u64,
) -> Result<(Phase, u64)> {
    let hdr = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; 64]);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let before = cpu_by_role(tck);
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (conn, hdr, body) = (conn.clone(), hdr.clone(), body.clone());
            let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    round_trip(&conn, &hdr, &body).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    for t in tasks {
        t.await??;
    }
    // CPU covers the stragglers too: count them.
    let cpu = cpu_since(before, tck);
    let all = done.load(Ordering::Relaxed);
    Ok((
        Phase {
            rate: counted as f64 / elapsed.as_secs_f64(),
            cpu,
        },
        all,
    ))
}

/// Runs scenario 2.
///
/// # Errors
/// Setup or transport failures.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let roles = Roles::new()?;
    let hub = EventHub::default();
    roles.operator.block_on(async {
        let relayed = Relayed::start(&roles, &hub, opts.tempdir()?).await?;
        let direct = Direct::start(&roles, &hub, opts.tempdir()?).await?;
        let op = relayed.operator().await?;
        let dconn = direct.connect().await?;
        let tck = ticks_per_second();
        let bytes = opts.bulk_mib * 1024 * 1024;
        // A short warm-up of both paths (MTU discovery, congestion window).
        bulk(&op.conn, bytes.min(8 << 20), tck).await?;
        bulk(&dconn, bytes.min(8 << 20), tck).await?;
        let direct_bulk = bulk(&dconn, bytes, tck).await?;
        let relay_bulk = bulk(&op.conn, bytes, tck).await?;
        let (direct_mbs, relay_mbs) = (direct_bulk.rate, relay_bulk.rate);
        let ratio = relay_mbs / direct_mbs;
        let n = opts.concurrent_streams;
        let (direct_c, direct_n) = concurrent(&dconn, n, opts.concurrent_time, tck).await?;
        let (relay_c, relay_n) = concurrent(&op.conn, n, opts.concurrent_time, tck).await?;
        let (direct_rts, relay_rts) = (direct_c.rate, relay_c.rate);
        let mib = opts.bulk_mib as f64;
        dconn.close(0u32.into(), b"done");
        direct.stop();
        drop(op);
        relayed.stop(&roles).await?;
        Ok(vec![
            Row {
                scenario: format!("2 bulk {} MiB", opts.bulk_mib),
                metric: "MB/s, one stream, agent → operator".into(),
                relay: format!("{relay_mbs:.0}"),
                raw: format!("{direct_mbs:.0}"),
                delta: format!("×{ratio:.2}"),
                goal: "ratio ≥ 0.8".into(),
                verdict: Verdict::check(ratio >= GOAL_RATIO),
            },
            Row {
                scenario: format!("2 bulk {} MiB", opts.bulk_mib),
                metric: "CPU ms per MiB: operator / relay / agent = total".into(),
                relay: relay_bulk.cpu_text(mib, 1e3, true),
                raw: direct_bulk.cpu_text(mib, 1e3, false),
                delta: cpu_ratio(relay_bulk.total(), direct_bulk.total()),
                goal: String::new(),
                verdict: Verdict::Info,
            },
            Row {
                scenario: format!("2 {n} streams"),
                metric: "round trips/s, 64 B, new stream each".into(),
                relay: grouped(relay_rts.round() as i64),
                raw: grouped(direct_rts.round() as i64),
                delta: format!("×{:.2}", relay_rts / direct_rts),
                goal: "≥ 30,000/s".into(),
                verdict: Verdict::check(relay_rts >= GOAL_RTS),
            },
            Row {
                scenario: format!("2 {n} streams"),
                metric: "CPU µs per round trip: operator / relay / agent = total".into(),
                relay: relay_c.cpu_text(relay_n as f64, 1e6, true),
                raw: direct_c.cpu_text(direct_n as f64, 1e6, false),
                delta: cpu_ratio(
                    relay_c.total() / relay_n as f64,
                    direct_c.total() / direct_n as f64,
                ),
                goal: String::new(),
                verdict: Verdict::Info,
            },
        ])
    })
}
