//! Scenario 14, the TCP path (issue #21), all in one run: the same relay reached over QUIC
//! and over QUIC tunnelled in TLS over TCP, against raw quinn.
//!
//! - hop latency, 64 B and 1 KiB, a new stream each, interleaved in blocks of 50: operator
//!   over TCP, operator over QUIC, direct quinn (goal: the TCP path's added p50 within 1.5×
//!   QUIC's);
//! - bulk download, agent → operator, over each;
//! - time to first byte on a UDP-blocked network: QUIC dialled at a UDP socket that is bound
//!   but never read (a black hole: nothing answers, nothing refuses), TCP at the real
//!   listener, `transport = auto`; from the dial until the first reply of a 64 B round trip
//!   (goal: under 1 s, the fallback included). "cold": a relay address never seen before (no
//!   memory of which transport won); "warm": the same black hole again (TCP remembered, so it
//!   starts at once).

use crate::events::EventHub;
use crate::exchange::{download, round_trip};
use crate::options::Options;
use crate::peer::Mode;
use crate::report::{Row, Verdict};
use crate::roles::Roles;
use crate::stats::Percentiles;
use crate::transport_world::{DualRelay, TransportOp, dial_as_owner, dial_options};
use crate::worlds::{Direct, header};
use anyhow::{Result, ensure};
use bytes::Bytes;
use cm_client::transport::{Transport, TransportMode};
use proto::header::Op;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Payload sizes measured for the hop.
const SIZES: [usize; 2] = [64, 1024];
/// Round trips per interleaved block.
const BLOCK: usize = 50;
/// Goal: the TCP path's added p50 at most this many times QUIC's.
const GOAL_TCP_OVER_QUIC: f64 = 1.5;
/// Goal: time to first byte on a UDP-blocked network.
const GOAL_FIRST_BYTE: Duration = Duration::from_secs(1);

/// Hop samples of the three paths for one size.
#[derive(Debug, Default)]
struct Hop {
    tcp: Vec<Duration>,
    quic: Vec<Duration>,
    direct: Vec<Duration>,
}

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

async fn hop(
    tcp: &TransportOp,
    quic: &TransportOp,
    direct: &quinn::Connection,
    size: usize,
    n: usize,
) -> Result<Hop> {
    let hdr = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; size]);
    for _ in 0..BLOCK.min(n) {
        round_trip(tcp.conn(), &hdr, &body).await?;
        round_trip(quic.conn(), &hdr, &body).await?;
        round_trip(direct, &hdr, &body).await?;
    }
    let mut s = Hop::default();
    while s.tcp.len() < n {
        let k = BLOCK.min(n - s.tcp.len());
        for _ in 0..k {
            s.tcp.push(round_trip(tcp.conn(), &hdr, &body).await?);
        }
        for _ in 0..k {
            s.quic.push(round_trip(quic.conn(), &hdr, &body).await?);
        }
        for _ in 0..k {
            s.direct.push(round_trip(direct, &hdr, &body).await?);
        }
    }
    Ok(s)
}

fn hop_rows(size: usize, s: Hop) -> Vec<Row> {
    let name = format!("14 TCP hop {}", label(size));
    let direct = Percentiles::of(s.direct);
    let tcp = Percentiles::of(s.tcp);
    let quic = Percentiles::of(s.quic);
    let tcp_added = tcp.minus(&direct);
    let quic_added = quic.minus(&direct);
    let times = if quic_added.p50 > 0.0 {
        format!(" (×{:.2} QUIC's)", tcp_added.p50 / quic_added.p50)
    } else {
        String::new()
    };
    vec![
        Row {
            scenario: name.clone(),
            metric: format!(
                "p50/p99/p99.9 µs, new stream each, relay over TCP (n={})",
                tcp.n
            ),
            relay: tcp.three(),
            raw: direct.three(),
            delta: format!("+{}{times}", tcp_added.three()),
            goal: "added p50 ≤ 1.5× QUIC's added p50".into(),
            verdict: Verdict::check(tcp_added.p50 <= GOAL_TCP_OVER_QUIC * quic_added.p50),
        },
        Row {
            scenario: name,
            metric: "same, relay over QUIC".into(),
            relay: quic.three(),
            raw: direct.three(),
            delta: format!("+{}", quic_added.three()),
            goal: String::new(),
            verdict: Verdict::Info,
        },
    ]
}

/// MB/s of one download of `bytes` on `conn`.
async fn bulk(conn: &quinn::Connection, bytes: u64) -> Result<f64> {
    let hdr = header(Op::Diff, Mode::Source(bytes))?;
    let (got, took) = download(conn, &hdr).await?;
    ensure!(got == bytes, "downloaded {got} of {bytes} bytes");
    Ok(bytes as f64 / took.as_secs_f64() / 1e6)
}

async fn bulk_rows(
    tcp: &TransportOp,
    quic: &TransportOp,
    direct: &quinn::Connection,
    mib: u64,
) -> Result<Vec<Row>> {
    let bytes = mib * 1024 * 1024;
    let warm = bytes.min(8 << 20);
    for conn in [tcp.conn(), quic.conn(), direct] {
        bulk(conn, warm).await?;
    }
    let direct_mbs = bulk(direct, bytes).await?;
    let quic_mbs = bulk(quic.conn(), bytes).await?;
    let tcp_mbs = bulk(tcp.conn(), bytes).await?;
    let name = format!("14 TCP bulk {mib} MiB");
    Ok(vec![
        Row {
            scenario: name.clone(),
            metric: "MB/s, one stream, agent → operator, relay over TCP".into(),
            relay: format!("{tcp_mbs:.0}"),
            raw: format!("{direct_mbs:.0}"),
            delta: format!(
                "×{:.2} (×{:.2} QUIC's)",
                tcp_mbs / direct_mbs,
                tcp_mbs / quic_mbs
            ),
            goal: String::new(),
            verdict: Verdict::Info,
        },
        Row {
            scenario: name,
            metric: "same, relay over QUIC".into(),
            relay: format!("{quic_mbs:.0}"),
            raw: format!("{direct_mbs:.0}"),
            delta: format!("×{:.2}", quic_mbs / direct_mbs),
            goal: String::new(),
            verdict: Verdict::Info,
        },
    ])
}

/// One dial on a UDP-blocked network: QUIC at `hole` (bound, never read), TCP at the relay's
/// listener, `transport = auto`; the time until the first reply of a 64 B round trip.
async fn first_byte(relay: &DualRelay, hole: SocketAddr) -> Result<Duration> {
    let opts = dial_options(TransportMode::Auto, relay.addr);
    let hdr = header(Op::Messages, Mode::Echo)?;
    let body = Bytes::from(vec![0x42; 64]);
    let start = Instant::now();
    let op = dial_as_owner(&[hole], &relay.pin, &relay.cred, &opts).await?;
    round_trip(op.conn(), &hdr, &body).await?;
    let took = start.elapsed();
    ensure!(
        op.transport == Transport::Tcp,
        "QUIC answered from a black hole? ({})",
        op.transport
    );
    op.close();
    Ok(took)
}

async fn first_byte_rows(relay: &DualRelay, runs: usize) -> Result<Vec<Row>> {
    let mut cold = Vec::new();
    let mut holes = Vec::new();
    for _ in 0..runs {
        // A new black hole each time: a relay address this client has no memory of.
        let hole = UdpSocket::bind("127.0.0.1:0")?;
        cold.push(first_byte(relay, hole.local_addr()?).await?);
        holes.push(hole);
    }
    let mut warm = Vec::new();
    for hole in &holes {
        warm.push(first_byte(relay, hole.local_addr()?).await?);
    }
    let worst = cold.iter().chain(&warm).max().copied().unwrap_or_default();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let cold_p = Percentiles::of(cold);
    let warm_p = Percentiles::of(warm);
    Ok(vec![
        Row {
            scenario: "14 TCP first byte, UDP blocked".into(),
            metric: format!(
                "ms from dial to the first reply, cold (no memory of this relay) p50 / max (n={runs})"
            ),
            relay: format!("{:.0} / {:.0}", cold_p.p50 / 1e3, ms(&worst)),
            raw: "—".into(),
            delta: "—".into(),
            goal: "< 1,000 ms (max)".into(),
            verdict: Verdict::check(worst < GOAL_FIRST_BYTE),
        },
        Row::info(
            "14 TCP first byte, UDP blocked",
            "same, warm (TCP remembered for this network), p50",
            format!("{:.1}", warm_p.p50 / 1e3),
        ),
    ])
}

/// Runs scenario 14.
///
/// # Errors
/// Setup or transport failures (including a relay without the TCP listener).
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let roles = Roles::new()?;
    let hub = EventHub::default();
    roles.operator.block_on(async {
        let relay = DualRelay::start(&roles, &hub, opts.tempdir()?).await?;
        let direct = Direct::start(&roles, &hub, opts.tempdir()?).await?;
        let tcp = relay.operator(TransportMode::Tcp).await?;
        let quic = relay.operator(TransportMode::Quic).await?;
        let dconn = direct.connect().await?;
        let mut out = Vec::new();
        for size in SIZES {
            let s = hop(&tcp, &quic, &dconn, size, opts.round_trips).await?;
            out.extend(hop_rows(size, s));
        }
        out.extend(bulk_rows(&tcp, &quic, &dconn, opts.bulk_mib).await?);
        let runs = if opts.smoke { 2 } else { 10 };
        out.extend(first_byte_rows(&relay, runs).await?);
        tcp.close();
        quic.close();
        dconn.close(0u32.into(), b"done");
        direct.stop();
        relay.stop(&roles).await?;
        Ok(out)
    })
}
