//! Scenario 13, zero-trust costs (issue #20), all in one run: what signing every stream header
//! and sealing everything after it end to end add to today's relayed paths. Through the real
//! in-process relay, with a fake agent that checks like a zero-trust host
//! ([`crate::zero_trust_agent`]):
//!
//! - per-request costs in process: sign, the host's check (incl. `role_of`), seal and open;
//! - hop latency, 64 B and 1 KiB, plain vs signed header vs signed + E2E;
//! - bulk download sealed vs plain (each against raw quinn, as scenario 2);
//! - 50 concurrent streams of round trips, each path;
//! - events to 100 watchers, each its own channel, sealed vs plain.

use crate::events::EventHub;
use crate::options::Options;
use crate::report::Row;
use crate::roles::Roles;
use crate::stats::{Percentiles, us};
use crate::worlds::Direct;
use crate::zero_trust_client::{Path, ZtOperator};
use crate::zero_trust_costs::{self, Costs};
use crate::zero_trust_events as zt_events;
use crate::zero_trust_hop as hop;
use crate::zero_trust_identity::Identity;
use crate::zero_trust_load::{self as load, Phase};
use crate::zero_trust_world::ZtWorld;
use anyhow::Result;
use std::sync::Arc;

fn cost_row(what: &str, p: &Percentiles) -> Row {
    Row::info(
        "13 ZT cost",
        &format!("µs p50 / p99 per request, in process (n={}): {what}", p.n),
        format!("{} / {}", us(p.p50), us(p.p99)),
    )
}

fn cost_rows(c: &Costs) -> Vec<Row> {
    let mut out = vec![
        cost_row(
            "sign (operator: nonce, body hash, Ed25519, header encoding)",
            &c.sign,
        ),
        cost_row(
            "verify (host: header decoding, revocation freshness, header::check, role_of, authorize)",
            &c.verify,
        ),
        cost_row("of which the header's Ed25519 signature alone", &c.ed25519),
        cost_row(
            "check before the work on a channel (host: header decoding, revocation freshness, channel MAC, fields, nonce, role_of, authorize; the signature is verified beside the work)",
            &c.mac_check,
        ),
        cost_row(
            "of which role_of + authorize (a role already worked out for these certificates)",
            &c.role_of,
        ),
        cost_row(
            "chain walk once per channel (e2e_open): Verifier::role_of + authorize, the grant's signature",
            &c.chain,
        ),
    ];
    for ((size, seal), (_, open)) in c.seal.iter().zip(&c.open) {
        out.push(cost_row(
            &format!("seal {size} B (stream keys, data + fin records)"),
            seal,
        ));
        out.push(cost_row(
            &format!("open {size} B (stream keys, records to the end)"),
            open,
        ));
    }
    out
}

/// Best of `rounds` downloads on each path, alternating (bulk rates move with load).
async fn bulk(
    op: &ZtOperator,
    direct: &quinn::Connection,
    bytes: u64,
    rounds: usize,
) -> Result<[Phase; 3]> {
    let warm = bytes.min(8 << 20);
    load::bulk_direct(direct, warm).await?;
    load::bulk(op, Path::Plain, warm).await?;
    load::bulk(op, Path::Sealed, warm).await?;
    let mut best: Option<[Phase; 3]> = None;
    for _ in 0..rounds {
        let now = [
            load::bulk_direct(direct, bytes).await?,
            load::bulk(op, Path::Plain, bytes).await?,
            load::bulk(op, Path::Sealed, bytes).await?,
        ];
        best = Some(match best {
            None => now,
            Some(b) => [0, 1, 2].map(|i| {
                if now[i].rate > b[i].rate {
                    now[i]
                } else {
                    b[i]
                }
            }),
        });
    }
    best.ok_or_else(|| anyhow::anyhow!("no bulk round ran"))
}

/// Runs scenario 13.
///
/// # Errors
/// Setup or transport failures, or a check the fake agent refuses.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let identity = Arc::new(Identity::new()?);
    let costs = zero_trust_costs::measure(&identity, &hop::SIZES, opts.round_trips)?;
    let mut out = cost_rows(&costs);
    let roles = Roles::new()?;
    let hub = EventHub::default();
    roles.operator.block_on(async {
        // Hop latency and bulk: one world, one operator connection, its channel opened once.
        let world = ZtWorld::start(&roles, &hub, &identity, opts.tempdir()?).await?;
        let op = ZtOperator::open(world.operator().await?, Arc::clone(&identity)).await?;
        for size in hop::SIZES {
            let s = hop::measure(&op, size, opts.round_trips).await?;
            out.extend(hop::rows(s, costs.sign.p50));
        }
        let direct = Direct::start(&roles, &hub, opts.tempdir()?).await?;
        let dconn = direct.connect().await?;
        let [raw, plain, sealed] = bulk(&op, &dconn, opts.bulk_mib << 20, 2).await?;
        out.extend(load::bulk_rows(opts.bulk_mib, raw, plain, sealed));
        dconn.close(0u32.into(), b"done");
        direct.stop();
        drop(op);
        world.stop(&roles).await?;

        // Concurrent streams: a fresh world (a fresh nonce window on the host).
        let world = ZtWorld::start(&roles, &hub, &identity, opts.tempdir()?).await?;
        let op = Arc::new(ZtOperator::open(world.operator().await?, Arc::clone(&identity)).await?);
        let n = opts.concurrent_streams;
        let mut phases = Vec::with_capacity(Path::ALL.len());
        for path in Path::ALL {
            phases.push(load::concurrent(&op, path, n, opts.concurrent_time).await?);
        }
        out.extend(load::concurrent_rows(n, &phases));
        drop(op);
        world.stop(&roles).await?;

        // Events: fresh worlds per path, as scenario 4 (full stream credit each).
        let w = opts.watchers.iter().copied().max().unwrap_or(1);
        let plain = zt_events::phase(&roles, opts, &identity, Path::Plain, w).await?;
        let sealed = zt_events::phase(&roles, opts, &identity, Path::Sealed, w).await?;
        out.extend(zt_events::rows(w, opts, plain, sealed));
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(out)
}
