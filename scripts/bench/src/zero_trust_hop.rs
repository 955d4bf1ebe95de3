//! Zero-trust hop latency: sequential echo round trips, a new stream each, through the real
//! relay to the zero-trust fake agent, plain vs signed header vs signed + sealed, interleaved
//! in blocks on one operator connection (whose channel was opened once, beforehand).

use crate::peer::Mode;
use crate::report::{Row, Verdict};
use crate::stats::{Percentiles, us};
use crate::worlds::header;
use crate::zero_trust_client::{Path, ZtOperator};
use anyhow::Result;
use bytes::Bytes;
use proto::header::Op;
use std::time::Duration;

/// Payload sizes measured.
pub const SIZES: [usize; 2] = [64, 1024];

/// Round trips per interleaved block (each path in turn, so drift hits all paths alike).
const BLOCK: usize = 50;

/// Goal: added p50 of signed + E2E over plain, beyond one signature, in µs.
pub const GOAL_ADDED_P50_US: f64 = 50.0;

/// Samples of the three paths for one size, in [`Path::ALL`] order.
#[derive(Debug)]
pub struct HopSamples {
    /// Body size.
    pub size: usize,
    /// One list per path.
    pub paths: [Vec<Duration>; 3],
}

/// `n` round trips per path of `size` bytes, after a warm-up block of each.
///
/// # Errors
/// Transport failures or a refused stream.
pub async fn measure(op: &ZtOperator, size: usize, n: usize) -> Result<HopSamples> {
    let plain = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; size]);
    for path in Path::ALL {
        for _ in 0..BLOCK.min(n) {
            op.round_trip(path, &plain, &body).await?;
        }
    }
    let mut paths: [Vec<Duration>; 3] = Default::default();
    while paths[0].len() < n {
        let k = BLOCK.min(n - paths[0].len());
        for (i, path) in Path::ALL.into_iter().enumerate() {
            for _ in 0..k {
                paths[i].push(op.round_trip(path, &plain, &body).await?);
            }
        }
    }
    Ok(HopSamples { size, paths })
}

/// `v` µs with its sign ("+12.3", "-4.0").
fn signed_us(v: f64) -> String {
    if v < 0.0 {
        us(v)
    } else {
        format!("+{}", us(v))
    }
}

/// Added latency, each percentile with its sign: "p50 / p99 / p99.9", or the first two when
/// `three` is false.
pub fn added(p: &Percentiles, three: bool) -> String {
    let mut parts = vec![signed_us(p.p50), signed_us(p.p99)];
    if three {
        parts.push(signed_us(p.p999));
    }
    parts.join(" / ")
}

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// The rows of one size: each zero-trust path against plain (in the baseline column). The
/// goal: signed + E2E adds at most [`GOAL_ADDED_P50_US`] at p50 beyond `sign_us` (one
/// signature on the laptop, measured in process).
pub fn rows(s: HopSamples, sign_us: f64) -> Vec<Row> {
    let name = format!("13 ZT hop {}", label(s.size));
    let [plain, signed, sealed] = s.paths.map(Percentiles::of);
    let mut out = vec![Row {
        scenario: name.clone(),
        metric: format!(
            "p50/p99/p99.9 µs, new stream each (n={}): plain (today)",
            plain.n
        ),
        relay: plain.three(),
        raw: "—".into(),
        delta: "—".into(),
        goal: String::new(),
        verdict: Verdict::Info,
    }];
    for (path, p) in [(Path::Signed, signed), (Path::Sealed, sealed)] {
        let more = p.minus(&plain);
        let (goal, verdict) = if path == Path::Sealed {
            let limit = GOAL_ADDED_P50_US + sign_us;
            (
                format!("added p50 ≤ 50 + sign {} = {}", us(sign_us), us(limit)),
                Verdict::check(more.p50 <= limit),
            )
        } else {
            (String::new(), Verdict::Info)
        };
        out.push(Row {
            scenario: name.clone(),
            metric: format!("same, {} (baseline column: plain)", path.label()),
            relay: p.three(),
            raw: plain.three(),
            delta: added(&more, true),
            goal,
            verdict,
        });
    }
    out
}
