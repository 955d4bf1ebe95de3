//! Scenario 8, a fleet of relays on one PostgreSQL (issue #19): the hop through a second relay
//! (operator → relay b → relay a → agent) against the same-relay hop (operator → relay a →
//! agent) and a direct quinn connection; the kill switch issued at relay a cutting an operator
//! held by relay b; then simulated agents spread over three relays:
//! handshakes/s of the fleet, relay memory per agent, and how long until one relay's host
//! watch shows every agent of the fleet online.

pub mod cluster;
mod kill;
mod rows;

use crate::child::Proc;
use crate::events::EventHub;
use crate::exchange::round_trip;
use crate::netutil;
use crate::options::Options;
use crate::peer::Mode;
use crate::procfs::{cpu_seconds, rss_kib, ticks_per_second};
use crate::report::{Row, Verdict};
use crate::roles::Roles;
use crate::swarm;
use crate::worlds::{Direct, HOST, fake_agent, header, login_owner, online, watch_until};
use anyhow::{Context, Result};
use bytes::Bytes;
use cluster::Cluster;
use cm_client as client;
use proto::handshake::PeerKind;
use proto::header::Op;
use proto::token::EnrollmentToken;
use std::time::{Duration, Instant};

/// Payload sizes of the hop rows.
pub const SIZES: [usize; 2] = [64, 1024];

/// Round trips per interleaved block (each path in turn, so drift hits all paths alike).
const BLOCK: usize = 50;

/// Relays in the fleet.
const RELAYS: usize = 3;

/// Agents spread over the relays (the smoke size is tiny).
fn spread_agents(opts: &Options) -> usize {
    if opts.smoke { 30 } else { 10_000 }
}

/// Samples of the three paths for one size.
#[derive(Debug, Default)]
struct HopSamples {
    direct: Vec<Duration>,
    same: Vec<Duration>,
    cross: Vec<Duration>,
}

async fn hop_samples(
    cluster: &Cluster,
    token: EnrollmentToken,
    roles: &Roles,
    hub: &EventHub,
    opts: &Options,
) -> Result<Vec<(usize, HopSamples)>> {
    let (a, b) = (cluster.addr(0), cluster.addr(1));
    let pin = cluster.init.pin.clone();
    let agent_ep = fake_agent(roles, hub, &pin, a, token.secret).await?;
    let cred = login_owner(a, &pin, &cluster.init).await?;
    let op_ep = netutil::client_endpoint(&pin)?;
    let mut ops = Vec::new();
    for addr in [a, b] {
        let conn = netutil::connect(&op_ep, addr).await?;
        let s = client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        // Relay b sees the agent through the fleet's presence.
        watch_until(&s.conn, |l| online(l) == 1)
            .await
            .with_context(|| format!("the agent online as seen from {addr}"))?;
        ops.push(s);
    }
    let direct = Direct::start(roles, hub, opts.tempdir()?).await?;
    let dconn = direct.connect().await?;
    let hdr = header(Op::Messages, Mode::Echo)?;
    let mut out = Vec::new();
    for size in SIZES {
        let body = Bytes::from(vec![0x42; size]);
        for _ in 0..BLOCK.min(opts.round_trips) {
            round_trip(&dconn, &hdr, &body).await?;
            round_trip(&ops[0].conn, &hdr, &body).await?;
            round_trip(&ops[1].conn, &hdr, &body).await?;
        }
        let mut s = HopSamples::default();
        while s.same.len() < opts.round_trips {
            let k = BLOCK.min(opts.round_trips - s.same.len());
            for _ in 0..k {
                s.direct.push(round_trip(&dconn, &hdr, &body).await?);
            }
            for _ in 0..k {
                s.same.push(round_trip(&ops[0].conn, &hdr, &body).await?);
            }
            for _ in 0..k {
                s.cross.push(round_trip(&ops[1].conn, &hdr, &body).await?);
            }
        }
        out.push((size, s));
    }
    dconn.close(0u32.into(), b"done");
    direct.stop();
    op_ep.close(0u32.into(), b"done");
    agent_ep.close(0u32.into(), b"done");
    Ok(out)
}

/// What the spread fleet cost.
#[derive(Debug)]
struct Spread {
    agents: usize,
    failed: usize,
    /// Per relay: KiB of RSS per agent it holds.
    rss_per_agent_kib: Vec<f64>,
    handshakes_per_s: f64,
    cpu_ms_per_handshake: f64,
    /// Until relay a's host watch showed every agent of the fleet online.
    online_watch: Result<Duration, String>,
}

fn spread(opts: &Options, cluster: &Cluster, n: usize) -> Result<Spread> {
    let tck = ticks_per_second();
    swarm::enroll(&cluster.dir, n)?;
    let procs: Vec<&Proc> = cluster.members.iter().map(|m| &m.proc).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let pin = &cluster.init.pin;
        let cred = login_owner(cluster.addr(0), pin, &cluster.init).await?;
        let op_ep = netutil::client_endpoint(pin)?;
        let conn = netutil::connect(&op_ep, cluster.addr(0)).await?;
        let op =
            client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss0 = procs
            .iter()
            .map(|p| rss_kib(p.pid()))
            .collect::<Result<Vec<_>>>()?;
        let cpu0: f64 = procs
            .iter()
            .map(|p| cpu_seconds(p.pid(), tck))
            .sum::<Result<f64>>()?;
        let share = n.div_ceil(RELAYS);
        let ranges: Vec<std::ops::Range<usize>> = (0..RELAYS)
            .map(|i| (i * share).min(n)..((i + 1) * share).min(n))
            .collect();
        let start = Instant::now();
        // Each relay's share connects at the same time as the others'.
        let tasks: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(i, r)| {
                tokio::spawn(swarm::connect_range(
                    cluster.addr(i),
                    pin.clone(),
                    r.clone(),
                    Some(opts.heartbeat_interval),
                ))
            })
            .collect();
        let mut swarms = Vec::with_capacity(tasks.len());
        for t in tasks {
            swarms.push(t.await??);
        }
        let connect_time = swarms
            .iter()
            .map(|s| s.connect_time)
            .max()
            .unwrap_or_default();
        let cpu1: f64 = procs
            .iter()
            .map(|p| cpu_seconds(p.pid(), tck))
            .sum::<Result<f64>>()?;
        let failed: usize = swarms.iter().map(|s| s.failed).sum();
        let online_watch = watch_until(&op.conn, |l| online(l) >= n - failed)
            .await
            .map(|_| start.elapsed())
            .map_err(|e| format!("{e:#}"));
        tokio::time::sleep(opts.heartbeat_interval + Duration::from_millis(500)).await;
        let rss_per_agent_kib = procs
            .iter()
            .zip(&rss0)
            .zip(&ranges)
            .map(|((p, before), r)| {
                Ok((rss_kib(p.pid())? as f64 - *before as f64) / r.len().max(1) as f64)
            })
            .collect::<Result<Vec<_>>>()?;
        for s in &swarms {
            s.close();
        }
        op_ep.close(0u32.into(), b"done");
        let ok = (n - failed).max(1) as f64;
        Ok(Spread {
            agents: n,
            failed,
            rss_per_agent_kib,
            handshakes_per_s: ok / connect_time.as_secs_f64(),
            cpu_ms_per_handshake: (cpu1 - cpu0) * 1000.0 / ok,
            online_watch,
        })
    })
}

fn skipped(why: &str) -> Vec<Row> {
    vec![Row {
        verdict: Verdict::Skipped,
        ..Row::info("8 peering", "a fleet of relays on PostgreSQL", why.into())
    }]
}

/// Runs scenario 8.
///
/// # Errors
/// Missing binaries, or a fleet that does not come up.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let Some(cluster) = Cluster::start(&opts.bin_dir, opts.tempdir()?, 2)? else {
        return Ok(skipped(
            "not run: no PostgreSQL server binaries (scripts/install-test-deps.sh)",
        ));
    };
    let roles = Roles::new()?;
    let hub = EventHub::default();
    // The blocking PostgreSQL client runs outside the runtimes.
    let token = cm_relay::cli::host_add(&cluster.dir, HOST, Some(cluster.addr(0).to_string()))?;
    let hops = roles
        .operator
        .block_on(hop_samples(&cluster, token, &roles, &hub, opts))?;
    let mut out: Vec<Row> = hops
        .into_iter()
        .flat_map(|(size, s)| rows::hop(size, s.direct, s.same, s.cross))
        .collect();
    if opts.peering_hops_only {
        cluster.stop();
        return Ok(out);
    }
    let kills = (0..if opts.smoke { 1 } else { 5 })
        .map(|i| kill::once(&cluster, &opts.bin_dir, &format!("killed-{i}")))
        .collect::<Result<Vec<_>>>()
        .context("the kill switch across relays")?;
    cluster.stop();
    out.push(rows::kill(kills));

    // A fresh fleet, so each relay's memory grows by its agents alone.
    let Some(cluster) = Cluster::start(&opts.bin_dir, opts.tempdir()?, RELAYS)? else {
        return Ok(out);
    };
    let n = spread_agents(opts);
    let s =
        spread(opts, &cluster, n).with_context(|| format!("{n} agents over {RELAYS} relays"))?;
    cluster.stop();
    out.extend(rows::spread(&s));
    Ok(out)
}
