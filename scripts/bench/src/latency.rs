//! Scenario 1, hop latency: sequential request/response round trips of 64 B, 1 KiB and 16 KiB,
//! operator → relay → fake agent (echo) → back, each on a new stream as the protocol does;
//! against the same exchange on one direct quinn connection (new stream per request, the
//! compared baseline) and, for context, on one long-lived stream (direct and relayed).

use crate::events::EventHub;
use crate::exchange::{EchoStream, round_trip};
use crate::options::Options;
use crate::peer::Mode;
use crate::report::{Row, Verdict};
use crate::roles::Roles;
use crate::stats::Percentiles;
use crate::worlds::{Direct, Relayed, header};
use anyhow::Result;
use bytes::Bytes;
use proto::header::Op;
use std::time::Duration;

/// Payload sizes measured.
pub const SIZES: [usize; 3] = [64, 1024, 16 * 1024];

/// Round trips per interleaved block (each path in turn, so drift hits all paths alike).
const BLOCK: usize = 50;

/// Goal: added p50 for payloads up to 1 KiB, in µs.
const GOAL_P50_US: f64 = 50.0;
/// Goal: added p99 for payloads up to 1 KiB, in µs.
const GOAL_P99_US: f64 = 1000.0;

/// Samples of the four paths for one size.
#[derive(Debug, Default)]
struct Samples {
    relay_new: Vec<Duration>,
    direct_new: Vec<Duration>,
    direct_one: Vec<Duration>,
    relay_one: Vec<Duration>,
}

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

async fn measure(relayed: &Relayed, direct: &Direct, size: usize, n: usize) -> Result<Samples> {
    let op = relayed.operator().await?;
    let dconn = direct.connect().await?;
    let hdr = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; size]);
    let mut relay_one = EchoStream::open(&op.conn, &hdr).await?;
    let mut direct_one = EchoStream::open(&dconn, &hdr).await?;
    // Warm-up: connection state, the relay's store cache, allocator.
    for _ in 0..BLOCK.min(n) {
        round_trip(&op.conn, &hdr, &body).await?;
        round_trip(&dconn, &hdr, &body).await?;
        relay_one.round_trip(&body).await?;
        direct_one.round_trip(&body).await?;
    }
    let mut s = Samples::default();
    while s.relay_new.len() < n {
        let k = BLOCK.min(n - s.relay_new.len());
        for _ in 0..k {
            s.relay_new.push(round_trip(&op.conn, &hdr, &body).await?);
        }
        for _ in 0..k {
            s.direct_new.push(round_trip(&dconn, &hdr, &body).await?);
        }
        for _ in 0..k {
            s.direct_one.push(direct_one.round_trip(&body).await?);
        }
        for _ in 0..k {
            s.relay_one.push(relay_one.round_trip(&body).await?);
        }
    }
    relay_one.finish();
    direct_one.finish();
    dconn.close(0u32.into(), b"done");
    Ok(s)
}

fn rows(size: usize, s: Samples) -> Vec<Row> {
    let name = format!("1 hop RTT {}", label(size));
    let relay = Percentiles::of(s.relay_new);
    let direct = Percentiles::of(s.direct_new);
    let added = relay.minus(&direct);
    let (goal, verdict) = if size <= 1024 {
        (
            "added p50 ≤ 50, p99 ≤ 1,000".to_owned(),
            Verdict::check(added.p50 <= GOAL_P50_US && added.p99 <= GOAL_P99_US),
        )
    } else {
        (String::new(), Verdict::Info)
    };
    let one_direct = Percentiles::of(s.direct_one);
    let one_relay = Percentiles::of(s.relay_one);
    vec![
        Row {
            scenario: name.clone(),
            metric: format!("p50/p99/p99.9 µs, new stream each (n={})", relay.n),
            relay: relay.three(),
            raw: direct.three(),
            delta: format!("+{}", added.three()),
            goal,
            verdict,
        },
        Row {
            scenario: name,
            metric: "same, one long-lived stream (context)".into(),
            relay: one_relay.three(),
            raw: one_direct.three(),
            delta: format!("+{}", one_relay.minus(&one_direct).three()),
            goal: String::new(),
            verdict: Verdict::Info,
        },
    ]
}

/// Runs scenario 1.
///
/// # Errors
/// Setup or transport failures.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let roles = Roles::new()?;
    let hub = EventHub::default();
    roles.operator.block_on(async {
        let relayed = Relayed::start(&roles, &hub, opts.tempdir()?).await?;
        let direct = Direct::start(&roles, &hub, opts.tempdir()?).await?;
        let mut out = Vec::new();
        for size in SIZES {
            let s = measure(&relayed, &direct, size, opts.round_trips).await?;
            out.extend(rows(size, s));
        }
        direct.stop();
        relayed.stop(&roles).await?;
        Ok(out)
    })
}
