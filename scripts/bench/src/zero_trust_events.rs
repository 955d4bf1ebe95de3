//! Zero-trust events to many watchers: each watcher its own operator connection; sealed, each
//! also its own channel, so the agent seals every event once per watcher. Latency per event
//! (send time inside the frame) and the agent's CPU per delivered event, plain vs sealed.

use crate::events::{self, EventHub};
use crate::options::Options;
use crate::procfs::ticks_per_second;
use crate::report::{Row, Verdict};
use crate::roles::{Roles, cpu_by_role, cpu_since, on};
use crate::stats::{Percentiles, us};
use crate::throughput::MIN_CPU_S;
use crate::worlds::WAIT;
use crate::zero_trust_client::{Path, ZtOperator};
use crate::zero_trust_identity::Identity;
use crate::zero_trust_world::ZtWorld;
use anyhow::{Context, Result, ensure};
use cm_client::framed::FramedRecv;
use proto::event::EventFrame;
use proto::frame::MAX_FRAME_LEN;
use std::sync::Arc;
use std::time::Duration;

/// Goal of scenario 4 for the added p99 per event (µs), kept for the sealed path vs plain.
const GOAL_P99_US: f64 = 2000.0;

/// One phase's result: every event's latency and the CPU per role.
#[derive(Debug)]
pub struct Delivered {
    /// Latency of each delivered event.
    pub ages: Vec<Duration>,
    /// CPU seconds: operator, relay, agent.
    pub cpu: [f64; 3],
}

/// `watchers` watchers on a fresh world (full stream credit) on `path`.
///
/// # Errors
/// Setup or transport failures, or a watcher missing events.
pub async fn phase(
    roles: &Roles,
    opts: &Options,
    identity: &Arc<Identity>,
    path: Path,
    watchers: usize,
) -> Result<Delivered> {
    let hub = EventHub::default();
    let world = ZtWorld::start(roles, &hub, identity, opts.tempdir()?).await?;
    let mut ops = Vec::with_capacity(watchers);
    for i in 0..watchers {
        let session = world.viewer(&format!("watcher-{i}")).await?;
        ops.push(ZtOperator::open_in_process(
            session,
            Arc::clone(identity),
            &world.agent,
        )?);
    }
    let tck = ticks_per_second();
    let before = cpu_by_role(tck);
    let mut readers = Vec::with_capacity(watchers);
    for op in &ops {
        let recv = op.watch(path).await?;
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
        while hub.watchers() < watchers {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .with_context(|| {
        format!(
            "only {} of {watchers} watch streams reached the agent",
            hub.watchers()
        )
    })?;
    on(
        &roles.agent,
        hub.clone().generate(opts.events, opts.event_interval),
    )
    .await?;
    let mut ages = Vec::new();
    for r in readers {
        ages.extend(r.await??);
    }
    let cpu = cpu_since(before, tck);
    drop(ops);
    world.stop(roles).await?;
    Ok(Delivered { ages, cpu })
}

/// Rows: latency sealed vs plain, and CPU per delivered event by role.
pub fn rows(watchers: usize, opts: &Options, plain: Delivered, sealed: Delivered) -> Vec<Row> {
    let name = format!("13 ZT events → {watchers} watchers");
    let (n_plain, n_sealed) = (plain.ages.len().max(1), sealed.ages.len().max(1));
    let (pp, sp) = (Percentiles::of(plain.ages), Percentiles::of(sealed.ages));
    let added = sp.minus(&pp);
    let enough = plain.cpu.iter().sum::<f64>() >= MIN_CPU_S;
    let per = |cpu: [f64; 3], n: usize| cpu.map(|c| c / n as f64 * 1e6);
    let (pc, sc) = (per(plain.cpu, n_plain), per(sealed.cpu, n_sealed));
    let text = |p: [f64; 3]| {
        if enough {
            format!(
                "{:.1} / {:.1} / {:.1} = {:.1}",
                p[0],
                p[1],
                p[2],
                p.iter().sum::<f64>()
            )
        } else {
            "n/a (too short)".into()
        }
    };
    vec![
        Row {
            scenario: name.clone(),
            metric: format!(
                "p50/p99 µs per event, {} B frames every {} ms (n={}), sealed per watcher \
                 (baseline column: plain)",
                events::frame_len(),
                opts.event_interval.as_millis(),
                sp.n
            ),
            relay: sp.two(),
            raw: pp.two(),
            delta: crate::zero_trust_hop::added(&added, false),
            goal: "added p99 ≤ 2,000".into(),
            verdict: Verdict::check(added.p99 <= GOAL_P99_US),
        },
        Row {
            scenario: name.clone(),
            metric: "CPU µs per delivered event: operator / relay / agent = total".into(),
            relay: text(sc),
            raw: text(pc),
            delta: if enough {
                format!("agent +{}", us(sc[2] - pc[2]))
            } else {
                "—".into()
            },
            goal: String::new(),
            verdict: Verdict::Info,
        },
    ]
}
