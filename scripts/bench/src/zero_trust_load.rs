//! Zero-trust throughput: many concurrent streams of small echo round trips (a new stream
//! each, signed and sealed per stream), and one bulk download sealed end to end, each against
//! today's plain path in the same run; bulk also against raw quinn, as scenario 2 reports it.

use crate::exchange::download;
use crate::peer::Mode;
use crate::procfs::ticks_per_second;
use crate::report::{Row, Verdict};
use crate::roles::{cpu_by_role, cpu_since};
use crate::stats::grouped;
use crate::throughput::{MIN_CPU_S, cpu_ratio};
use crate::worlds::header;
use crate::zero_trust_client::{Path, ZtOperator};
use anyhow::{Result, ensure};
use bytes::Bytes;
use proto::header::Op;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A measured phase: its rate, the work done and the CPU each role spent on it.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Per second (round trips, or MB).
    pub rate: f64,
    /// Units of work the CPU covers (round trips, or MiB).
    pub units: f64,
    /// CPU seconds: operator, relay, agent.
    pub cpu: [f64; 3],
}

impl Phase {
    fn total(&self) -> f64 {
        self.cpu.iter().sum()
    }

    /// "operator / relay / agent = total" per unit, scaled by `scale` (or "—" for the relay
    /// on a direct path).
    pub fn cpu_text(&self, scale: f64, relayed: bool) -> String {
        if self.total() < MIN_CPU_S {
            return "n/a (too short)".into();
        }
        let per = self.cpu.map(|c| c / self.units * scale);
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

    /// Total CPU per unit (0 when too short to mean anything, which `cpu_ratio` shows as —).
    pub fn cpu_per_unit(&self) -> f64 {
        if self.total() < MIN_CPU_S {
            0.0
        } else {
            self.total() / self.units
        }
    }
}

/// Round trips per second on `path` with `streams` concurrent loops for `time`.
///
/// # Errors
/// Transport failures or a refused stream.
pub async fn concurrent(
    op: &Arc<ZtOperator>,
    path: Path,
    streams: usize,
    time: Duration,
) -> Result<Phase> {
    let tck = ticks_per_second();
    let plain = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; 64]);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let before = cpu_by_role(tck);
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (op, plain, body) = (Arc::clone(op), plain.clone(), body.clone());
            let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    op.round_trip(path, &plain, &body).await?;
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
    Ok(Phase {
        rate: counted as f64 / elapsed.as_secs_f64(),
        units: done.load(Ordering::Relaxed) as f64,
        cpu,
    })
}

/// One download of `bytes` on `path` (MB/s, CPU per MiB).
///
/// # Errors
/// Transport failures or a short download.
pub async fn bulk(op: &ZtOperator, path: Path, bytes: u64) -> Result<Phase> {
    let tck = ticks_per_second();
    let before = cpu_by_role(tck);
    let (got, took) = op.download(path, bytes).await?;
    let cpu = cpu_since(before, tck);
    ensure!(got == bytes, "downloaded {got} of {bytes} bytes ({path:?})");
    Ok(bulk_phase(bytes, took, cpu))
}

/// The same download from the raw quinn server (scenario 2's baseline).
///
/// # Errors
/// Transport failures or a short download.
pub async fn bulk_direct(conn: &quinn::Connection, bytes: u64) -> Result<Phase> {
    let tck = ticks_per_second();
    let before = cpu_by_role(tck);
    let (got, took) = download(conn, &header(Op::Diff, Mode::Source(bytes))?).await?;
    let cpu = cpu_since(before, tck);
    ensure!(got == bytes, "downloaded {got} of {bytes} bytes (direct)");
    Ok(bulk_phase(bytes, took, cpu))
}

fn bulk_phase(bytes: u64, took: Duration, cpu: [f64; 3]) -> Phase {
    Phase {
        rate: bytes as f64 / took.as_secs_f64() / 1e6,
        units: bytes as f64 / (1024.0 * 1024.0),
        cpu,
    }
}

/// Rows of the concurrent phases, in [`Path::ALL`] order.
pub fn concurrent_rows(streams: usize, phases: &[Phase]) -> Vec<Row> {
    let name = format!("13 ZT {streams} streams");
    let Some(&plain) = phases.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, p) in Path::ALL.into_iter().zip(phases) {
        let is_plain = path == Path::Plain;
        out.push(Row {
            scenario: name.clone(),
            metric: format!(
                "round trips/s, 64 B, new stream each: {}{}",
                path.label(),
                if is_plain {
                    ""
                } else {
                    " (baseline column: plain)"
                }
            ),
            relay: grouped(p.rate.round() as i64),
            raw: if is_plain {
                "—".into()
            } else {
                grouped(plain.rate.round() as i64)
            },
            delta: if is_plain {
                "—".into()
            } else {
                format!("×{:.2}", p.rate / plain.rate)
            },
            goal: String::new(),
            verdict: Verdict::Info,
        });
        out.push(Row {
            scenario: name.clone(),
            metric: format!(
                "CPU µs per round trip: operator / relay / agent = total, {}",
                path.label()
            ),
            relay: p.cpu_text(1e6, true),
            raw: if is_plain {
                "—".into()
            } else {
                plain.cpu_text(1e6, true)
            },
            delta: if is_plain {
                "—".into()
            } else {
                cpu_ratio(p.cpu_per_unit(), plain.cpu_per_unit())
            },
            goal: String::new(),
            verdict: Verdict::Info,
        });
    }
    out
}

/// Rows of the bulk phases: plain and sealed through the relay, each against raw quinn; the
/// goal is a sealed ratio no worse than today's (plain, same run).
pub fn bulk_rows(mib: u64, raw: Phase, plain: Phase, sealed: Phase) -> Vec<Row> {
    let name = format!("13 ZT bulk {mib} MiB");
    let (plain_ratio, sealed_ratio) = (plain.rate / raw.rate, sealed.rate / raw.rate);
    vec![
        Row {
            scenario: name.clone(),
            metric: "MB/s, one stream, agent → operator: plain (today)".into(),
            relay: format!("{:.0}", plain.rate),
            raw: format!("{:.0}", raw.rate),
            delta: format!("×{plain_ratio:.2}"),
            goal: String::new(),
            verdict: Verdict::Info,
        },
        Row {
            scenario: name.clone(),
            metric: "same, sealed end to end (signed header + E2E)".into(),
            relay: format!("{:.0}", sealed.rate),
            raw: format!("{:.0}", raw.rate),
            delta: format!("×{sealed_ratio:.2}"),
            goal: format!("ratio ≥ plain's ×{plain_ratio:.2}"),
            verdict: Verdict::check(sealed_ratio >= plain_ratio),
        },
        Row {
            scenario: name.clone(),
            metric: "CPU ms per MiB: operator / relay / agent = total, plain".into(),
            relay: plain.cpu_text(1e3, true),
            raw: raw.cpu_text(1e3, false),
            delta: cpu_ratio(plain.cpu_per_unit(), raw.cpu_per_unit()),
            goal: String::new(),
            verdict: Verdict::Info,
        },
        Row {
            scenario: name,
            metric: "same, sealed".into(),
            relay: sealed.cpu_text(1e3, true),
            raw: raw.cpu_text(1e3, false),
            delta: cpu_ratio(sealed.cpu_per_unit(), raw.cpu_per_unit()),
            goal: String::new(),
            verdict: Verdict::Info,
        },
    ]
}
