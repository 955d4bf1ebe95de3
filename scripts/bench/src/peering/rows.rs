//! The peering scenario's table rows.

use super::{RELAYS, Spread};
use crate::report::{Row, Verdict};
use crate::stats::{Percentiles, grouped, us};
use std::time::Duration;

/// Goal: relay memory per connected agent, KiB (as for one relay).
const GOAL_RSS_KIB: f64 = 64.0;
/// Goal: handshakes per second (as for one relay).
const GOAL_HS: f64 = 1000.0;
/// Goal: the cross-relay hop adds at most this many times what the same-relay hop adds.
const GOAL_CROSS_FACTOR: f64 = 2.0;

fn label(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Rows for one payload size: the same-relay hop against direct quinn (context), and the
/// cross-relay hop against it (the goal).
pub(super) fn hop(
    size: usize,
    direct: Vec<Duration>,
    same: Vec<Duration>,
    cross: Vec<Duration>,
) -> Vec<Row> {
    let name = format!("8 peering hop {}", label(size));
    let direct = Percentiles::of(direct);
    let same = Percentiles::of(same);
    let cross = Percentiles::of(cross);
    let same_added = same.minus(&direct);
    let cross_added = cross.minus(&direct);
    let ratio = |c: f64, s: f64| {
        if s > 0.0 {
            format!("×{:.1}", c / s)
        } else {
            "n/a".into()
        }
    };
    vec![
        Row {
            scenario: name.clone(),
            metric: format!(
                "p50/p99/p99.9 µs, new stream each: same relay (a) (n={})",
                same.n
            ),
            relay: same.three(),
            raw: direct.three(),
            delta: format!("+{}", same_added.three()),
            goal: String::new(),
            verdict: Verdict::Info,
        },
        Row {
            scenario: name,
            metric: "same, across relays (operator on b, agent on a); raw = direct quinn".into(),
            relay: cross.three(),
            raw: direct.three(),
            delta: format!(
                "+{} / +{} ({} / {} the same-relay hop's added p50 / p99)",
                us(cross_added.p50),
                us(cross_added.p99),
                ratio(cross_added.p50, same_added.p50),
                ratio(cross_added.p99, same_added.p99),
            ),
            goal: "added ≤ 2× the same-relay hop's added (p50, p99)".into(),
            verdict: Verdict::check(
                cross_added.p50 <= GOAL_CROSS_FACTOR * same_added.p50
                    && cross_added.p99 <= GOAL_CROSS_FACTOR * same_added.p99,
            ),
        },
    ]
}

/// Goal: the kill switch cuts an operator held by another relay within this, ms.
const GOAL_KILL_MS: f64 = 1000.0;

/// The kill switch row: ms from `cm-relay kill` at relay a until relay b closed the operator.
pub(super) fn kill(mut took: Vec<Duration>) -> Row {
    took.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = took.get(took.len() / 2).copied().map_or(f64::NAN, ms);
    let worst = took.last().copied().map_or(f64::NAN, ms);
    Row {
        goal: "≤ 1,000 ms".into(),
        verdict: Verdict::check(worst <= GOAL_KILL_MS),
        ..Row::info(
            "8 peering kill switch",
            &format!(
                "ms from `cm-relay kill --user` at relay a until relay b closed that operator's connection, median / worst of {}",
                took.len()
            ),
            format!("{median:.0} / {worst:.0}"),
        )
    }
}

/// Rows for the agents spread over the relays.
pub(super) fn spread(s: &Spread) -> Vec<Row> {
    let name = format!("8 peering {} / {RELAYS} relays", grouped(s.agents as i64));
    let worst = s
        .rss_per_agent_kib
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let failed = if s.failed > 0 {
        format!(" ({} handshakes failed)", s.failed)
    } else {
        String::new()
    };
    vec![
        Row {
            goal: "≤ 64 KiB".into(),
            verdict: Verdict::check(worst <= GOAL_RSS_KIB),
            ..Row::info(
                &name,
                "relay RSS per connected agent, KiB, each relay",
                s.rss_per_agent_kib
                    .iter()
                    .map(|k| format!("{k:.1}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
            )
        },
        Row {
            goal: "≥ 1,000/s".into(),
            verdict: Verdict::check(s.handshakes_per_s >= GOAL_HS),
            ..Row::info(
                &name,
                &format!(
                    "handshakes/s, all relays at once, {} in flight per relay (relay CPU ms each){failed}",
                    crate::swarm::IN_FLIGHT
                ),
                format!(
                    "{:.0} ({:.2} ms)",
                    s.handshakes_per_s, s.cpu_ms_per_handshake
                ),
            )
        },
        Row {
            goal: "all shown online by watch_hosts".into(),
            verdict: Verdict::check(s.online_watch.is_ok()),
            ..Row::info(
                &name,
                "time from first connect until relay a's host watch shows all online, s",
                match &s.online_watch {
                    Ok(d) => format!("{:.2}", d.as_secs_f64()),
                    Err(e) => format!("watch_hosts FAILED: {e}"),
                },
            )
        },
    ]
}
