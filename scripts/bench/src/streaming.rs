//! Scenario 4, streaming: the agent writes `EventFrame`s at a steady rate, each carrying its
//! send time, to 1 and to 100 watching operators (one connection each); the watchers parse
//! every frame as the TUI does. Latency per event through the relay vs read directly.

use crate::events::{self, EventHub};
use crate::options::Options;
use crate::peer::Mode;
use crate::procfs::ticks_per_second;
use crate::report::{Row, Verdict};
use crate::roles::{Roles, cpu_by_role, cpu_since, on};
use crate::stats::Percentiles;
use crate::throughput::{MIN_CPU_S, cpu_ratio};
use crate::worlds::{Direct, Relayed, WAIT, header};
use anyhow::{Context, Result, ensure};
use cm_client::framed::FramedRecv;
use proto::event::EventFrame;
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use std::time::Duration;

/// Goal: added p99 per event, µs.
const GOAL_P99_US: f64 = 2000.0;

/// Opens a watch stream on each connection, runs the generator once every stream is
/// subscribed, and returns every event's latency.
async fn phase(
    roles: &Roles,
    hub: &EventHub,
    conns: &[quinn::Connection],
    opts: &Options,
) -> Result<Vec<Duration>> {
    let hdr = header(Op::WatchEvents, Mode::Events)?;
    let mut readers = Vec::new();
    for conn in conns {
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(&hdr).await?;
        send.finish()?;
        let expected = opts.events;
        readers.push(tokio::spawn(async move {
            let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
            let mut ages = Vec::with_capacity(expected);
            while let Some(f) = recv.next::<EventFrame>().await? {
                ages.extend(events::age(&f));
            }
            ensure!(
                ages.len() == expected,
                "watcher got {} of {expected} events",
                ages.len()
            );
            Ok::<_, anyhow::Error>(ages)
        }));
    }
    tokio::time::timeout(WAIT, async {
        while hub.watchers() < conns.len() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .with_context(|| {
        format!(
            "only {} of {} watch streams reached the agent",
            hub.watchers(),
            conns.len()
        )
    })?;
    let generator = hub.clone().generate(opts.events, opts.event_interval);
    on(&roles.agent, generator).await?;
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await??);
    }
    Ok(all)
}

fn name(watchers: usize) -> String {
    format!(
        "4 events → {watchers} watcher{}",
        if watchers == 1 { "" } else { "s" }
    )
}

fn row(watchers: usize, relay: Vec<Duration>, direct: Vec<Duration>, opts: &Options) -> Row {
    let (relay, direct) = (Percentiles::of(relay), Percentiles::of(direct));
    let added = relay.minus(&direct);
    Row {
        scenario: format!(
            "4 events → {watchers} watcher{}",
            if watchers == 1 { "" } else { "s" }
        ),
        metric: format!(
            "p50/p99 µs per event, {} B frames every {} ms (n={})",
            events::frame_len(),
            opts.event_interval.as_millis(),
            relay.n
        ),
        relay: relay.two(),
        raw: direct.two(),
        delta: format!("+{}", added.two()),
        goal: "added p99 ≤ 2,000".into(),
        verdict: Verdict::check(added.p99 <= GOAL_P99_US),
    }
}

/// CPU per delivered event, by role; `(cpu, events)` for each path.
fn cpu_row(w: usize, relay: ([f64; 3], usize), raw: ([f64; 3], usize)) -> Row {
    let per = |(cpu, n): ([f64; 3], usize)| cpu.map(|c| c / n.max(1) as f64 * 1e6);
    let enough = relay.0.iter().sum::<f64>() >= MIN_CPU_S && raw.0.iter().sum::<f64>() >= MIN_CPU_S;
    let text = |p: [f64; 3], relayed: bool| {
        if !enough {
            return "n/a (too short)".to_owned();
        }
        let r = if relayed {
            format!("{:.1}", p[1])
        } else {
            "—".into()
        };
        format!(
            "{:.1} / {r} / {:.1} = {:.1}",
            p[0],
            p[2],
            p.iter().sum::<f64>()
        )
    };
    let (rp, dp) = (per(relay), per(raw));
    Row {
        scenario: name(w),
        metric: "CPU µs per delivered event: operator / relay / agent = total".into(),
        relay: text(rp, true),
        raw: text(dp, false),
        delta: if enough {
            cpu_ratio(rp.iter().sum(), dp.iter().sum())
        } else {
            "—".into()
        },
        goal: String::new(),
        verdict: Verdict::Info,
    }
}

/// Both paths with `w` watchers each, on fresh worlds: the agent's relay connection starts with
/// its full stream credit (quinn returns credit for closed streams only in batches of 1/8 of
/// the window, so leftovers of an earlier phase would eat into the 100-stream limit).
async fn watchers(roles: &Roles, opts: &Options, w: usize) -> Result<Vec<Row>> {
    let hub = EventHub::default();
    let relayed = Relayed::start(roles, &hub, opts.tempdir()?).await?;
    let direct = Direct::start(roles, &hub, opts.tempdir()?).await?;
    let mut ops = Vec::with_capacity(w);
    let mut dconns = Vec::with_capacity(w);
    for _ in 0..w {
        ops.push(relayed.operator().await?);
        dconns.push(direct.connect().await?);
    }
    let op_conns: Vec<quinn::Connection> = ops.iter().map(|s| s.conn.clone()).collect();
    let tck = ticks_per_second();
    let before = cpu_by_role(tck);
    let relay = phase(roles, &hub, &op_conns, opts).await?;
    let relay_cpu = cpu_since(before, tck);
    let before = cpu_by_role(tck);
    let raw = phase(roles, &hub, &dconns, opts).await?;
    let raw_cpu = cpu_since(before, tck);
    let cpu = cpu_row(w, (relay_cpu, relay.len()), (raw_cpu, raw.len()));
    for c in dconns {
        c.close(0u32.into(), b"done");
    }
    direct.stop();
    drop(ops);
    relayed.stop(roles).await?;
    Ok(vec![row(w, relay, raw, opts), cpu])
}

/// Runs scenario 4.
///
/// # Errors
/// Setup or transport failures.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let roles = Roles::new()?;
    roles.operator.block_on(async {
        let mut out = Vec::new();
        for &w in &opts.watchers {
            out.extend(watchers(&roles, opts, w).await?);
        }
        Ok(out)
    })
}
