//! Scenario 4 with a real OpenCode: `opencode serve` (started by the release `cm-agent` through
//! an `opencode_start` from the relay) answers prompts from the project's test model, which
//! streams `SLOW <n> <ms>` text deltas. Every delta is read twice on one process clock: by a
//! client reading OpenCode's SSE (`/event`) directly, with the port and password from the
//! agent's state file and the agent's own HTTP/SSE client, and by 1 and by 100 operators
//! watching the workspace (`watch_events` through the release `cm-relay`, one connection each,
//! parsing every frame as the TUI does). Added latency = relayed receive time minus direct
//! receive time of the same delta (matched by part id and text).

use crate::opencode_cpu::{Probe, Spent};
use crate::options::Options;
use crate::procfs::ticks_per_second;
use crate::real::{self, RealWorld, Tools};
use crate::report::{Row, Verdict};
use crate::stats::us;
use crate::worlds::WAIT;
use anyhow::{Context, Result, anyhow, bail, ensure};
use cm_agent::opencode::client::OpencodeClient;
use cm_client::framed::send_frame;
use cm_client::{self as client, Session};
use proto::event::{Event, EventFrame};
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::message::Reply;
use proto::ops::WatchQuery;
use std::collections::HashMap;
use std::time::Instant;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, oneshot};

/// Goal: added p99 per event, µs.
const GOAL_P99_US: f64 = 2000.0;
/// Turns (prompts) per watcher count in a full run, for a steadier p99.
pub const TURNS: usize = 3;

/// One text delta: part id and text (the test model's `chunk <i> ` texts are unique per part).
type Key = (String, String);
/// When each delta of a turn was read.
type Seen = HashMap<Key, Instant>;

fn name(watchers: usize) -> String {
    format!(
        "4 OpenCode → {watchers} watcher{}",
        if watchers == 1 { "" } else { "s" }
    )
}

const METRIC: &str = "added µs per text delta vs OpenCode's SSE read directly, p50 / p99";

/// Reads OpenCode's `/event` directly until `session` is idle; signals `ready` once attached.
async fn read_direct(
    client: OpencodeClient,
    session: String,
    ready: oneshot::Sender<()>,
) -> Result<Seen> {
    let mut stream = client.events().await?;
    // The first event is `server.connected`: from here on nothing is missed.
    stream
        .next()
        .await?
        .context("OpenCode ended its event stream at once")?;
    let _ = ready.send(());
    let mut seen = Seen::new();
    loop {
        let v = stream
            .next()
            .await?
            .context("OpenCode ended its event stream")?;
        let at = Instant::now();
        let props = &v["properties"];
        if props["sessionID"].as_str() != Some(session.as_str()) {
            continue;
        }
        match v["type"].as_str() {
            Some("message.part.delta") if props["field"] == "text" => {
                let text = |k: &str| props[k].as_str().map(str::to_owned);
                if let (Some(part), Some(delta)) = (text("partID"), text("delta")) {
                    seen.entry((part, delta)).or_insert(at);
                }
            }
            Some("session.idle") => return Ok(seen),
            _ => {}
        }
    }
}

/// One relayed watcher, as the TUI's watch task: `watch_events` with a `WatchQuery`, the first
/// reply, then every frame parsed, until `session` went idle `turns` times; one record per turn.
/// The watch stays open across turns, as a TUI's does.
async fn read_relayed(
    h: StreamHeader,
    conn: quinn::Connection,
    session: String,
    turns: usize,
    ready: mpsc::Sender<()>,
) -> Result<Vec<Seen>> {
    // The send half stays open for the life of the watch; dropping it would end the request.
    let (mut send, mut recv) = client::subscribe(&conn, &h).await?;
    send_frame(&mut send, &WatchQuery { after_seq: None }, MAX_FRAME_LEN).await?;
    let _ = send.finish();
    let first: Reply<u64> = recv.expect().await?;
    first
        .into_result()
        .map_err(|e| anyhow!("watch_events refused: {}", e.message))?;
    let _ = ready.send(()).await;
    let mut all = Vec::with_capacity(turns);
    let mut seen = Seen::new();
    while all.len() < turns {
        let Some(frame) = recv.next::<EventFrame>().await? else {
            bail!("the relay ended the watch");
        };
        let at = Instant::now();
        match frame.event {
            Event::TextDelta {
                session: s,
                part_id,
                delta,
                ..
            } if s == session => {
                seen.entry((part_id, delta)).or_insert(at);
            }
            Event::SessionIdle { session: s } if s == session => {
                all.push(std::mem::take(&mut seen));
            }
            Event::Resync { reason } => bail!("the watcher fell behind: {reason}"),
            _ => {}
        }
    }
    drop(send);
    Ok(all)
}

/// The two direct readers: the baseline, and a second one whose difference to the first is
/// the measurement's noise floor (same path, so ideally zero).
#[derive(Debug, Clone, Copy)]
struct Direct<'a> {
    base: &'a Handle,
    control: &'a Handle,
}

/// What one turn's readers saw.
#[derive(Debug)]
struct Turn {
    direct: Seen,
    control: Seen,
    relayed: Vec<Seen>,
}

/// Attaches both direct readers for one turn, sends the prompt, and returns what they saw.
async fn direct_turn(
    world: &RealWorld,
    direct: Direct<'_>,
    client: &OpencodeClient,
    session: &str,
    text: &str,
) -> Result<(Seen, Seen)> {
    let (dready, dready_rx) = oneshot::channel();
    let base = direct
        .base
        .spawn(read_direct(client.clone(), session.to_owned(), dready));
    let (cready, cready_rx) = oneshot::channel();
    let control = direct
        .control
        .spawn(read_direct(client.clone(), session.to_owned(), cready));
    // A reader that fails before it is attached drops its sender: the wait then fails.
    let late = |what: &'static str| move |_| anyhow!("the {what} did not attach in time");
    tokio::time::timeout(WAIT, dready_rx)
        .await
        .map_err(late("direct SSE reader"))?
        .context("the direct SSE reader failed to attach")?;
    tokio::time::timeout(WAIT, cready_rx)
        .await
        .map_err(late("second direct SSE reader"))?
        .context("the second direct SSE reader failed to attach")?;
    world.prompt(session, text).await?;
    let end = |what: &'static str| move |_| anyhow!("the {what} did not see the turn end");
    let base = tokio::time::timeout(WAIT, base)
        .await
        .map_err(end("direct reader"))???;
    let control = tokio::time::timeout(WAIT, control)
        .await
        .map_err(end("second direct reader"))???;
    Ok((base, control))
}

/// Every watcher in `ops` watches the workspace while `text` is prompted `turns` times, each
/// turn also read by the direct readers. Returns each turn's records and the CPU spent from the
/// first prompt until every watcher saw the last turn end.
async fn phase(
    world: &RealWorld,
    direct: Direct<'_>,
    client: &OpencodeClient,
    session: &str,
    ops: &[Session],
    (text, turns): (&str, usize),
    probe: &Probe,
) -> Result<(Vec<Turn>, Spent)> {
    let (wready, mut wready_rx) = mpsc::channel(ops.len().max(1));
    let watchers: Vec<_> = ops
        .iter()
        .map(|op| {
            let h = world.header(Op::WatchEvents, None);
            let (conn, s) = (op.conn.clone(), session.to_owned());
            tokio::spawn(read_relayed(h, conn, s, turns, wready.clone()))
        })
        .collect();
    drop(wready);
    for _ in 0..ops.len() {
        tokio::time::timeout(WAIT, wready_rx.recv())
            .await
            .map_err(|_| anyhow!("the watchers did not subscribe in time"))?
            .context("a watcher failed to subscribe")?;
    }
    let before = probe.sample();
    let mut directs = Vec::with_capacity(turns);
    for _ in 0..turns {
        directs.push(direct_turn(world, direct, client, session, text).await?);
    }
    let mut relayed = Vec::with_capacity(watchers.len());
    for w in watchers {
        let per_turn = tokio::time::timeout(WAIT, w)
            .await
            .context("a watcher did not see the last turn end in time")???;
        ensure!(
            per_turn.len() == turns,
            "a watcher saw {} turns",
            per_turn.len()
        );
        relayed.push(per_turn.into_iter());
    }
    let mut spent = Spent::default();
    spent.add(probe, before);
    let turns = directs
        .into_iter()
        .map(|(direct, control)| Turn {
            direct,
            control,
            relayed: relayed.iter_mut().filter_map(Iterator::next).collect(),
        })
        .collect();
    Ok((turns, spent))
}

/// Added latency of every delta every watcher read, µs (negative when a watcher was faster
/// than the direct reader, which scheduling on 2 cores can do).
fn added(direct: &Seen, relayed: &[Seen]) -> Result<Vec<f64>> {
    ensure!(!direct.is_empty(), "the direct reader saw no text deltas");
    let mut out = Vec::with_capacity(direct.len() * relayed.len());
    for (i, w) in relayed.iter().enumerate() {
        ensure!(
            w.len() == direct.len(),
            "watcher {i} read {} text deltas, the direct reader {}",
            w.len(),
            direct.len()
        );
        for (key, at) in w {
            let d = direct
                .get(key)
                .with_context(|| format!("watcher {i} read a delta the direct reader did not"))?;
            let micros = if at >= d {
                at.duration_since(*d).as_secs_f64()
            } else {
                -d.duration_since(*at).as_secs_f64()
            };
            out.push(micros * 1e6);
        }
    }
    Ok(out)
}

/// Nearest-rank percentile `q` of sorted `v`.
fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let idx = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

/// µs with an explicit sign.
fn signed(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", us(v))
    } else {
        us(v)
    }
}

/// Sorted samples' p50 and p99.
fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_unstable_by(f64::total_cmp);
    (pct(&v, 0.50), pct(&v, 0.99))
}

/// Every turn's samples for one watcher count.
#[derive(Debug, Default)]
struct Samples {
    /// Watcher minus direct reader, µs.
    relayed: Vec<f64>,
    /// Second direct reader minus the first, µs.
    control: Vec<f64>,
    /// Text deltas the direct reader saw.
    deltas: usize,
    turns: usize,
}

impl Samples {
    fn add(&mut self, t: &Turn) -> Result<()> {
        self.relayed.extend(added(&t.direct, &t.relayed)?);
        self.control
            .extend(added(&t.direct, std::slice::from_ref(&t.control))?);
        self.deltas += t.direct.len();
        self.turns += 1;
        Ok(())
    }
}

fn row(w: usize, s: Samples, opts: &Options) -> Row {
    let n = s.relayed.len();
    let (p50, p99) = p50_p99(s.relayed);
    let (c50, c99) = p50_p99(s.control);
    Row {
        scenario: name(w),
        metric: format!(
            "{METRIC} ({} deltas {} ms apart in {} turn{}, n={n}; raw column: a 2nd direct reader, \
             the noise floor)",
            s.deltas,
            opts.event_interval.as_millis(),
            s.turns,
            if s.turns == 1 { "" } else { "s" },
        ),
        relay: format!("{} / {}", us(p50), us(p99)),
        raw: format!("{} / {}", us(c50), us(c99)),
        delta: format!("{} / {}", signed(p50), signed(p99)),
        goal: "added p99 ≤ 2,000".into(),
        verdict: Verdict::check(p99 <= GOAL_P99_US),
    }
}

/// The whole scenario on one world.
async fn measure(world: &RealWorld, direct: Direct<'_>, opts: &Options) -> Result<Vec<Row>> {
    world.start_opencode().await?;
    let client = world.direct_client()?;
    let (relay, agent) = world.pids();
    let probe = Probe {
        tck: ticks_per_second(),
        relay,
        agent,
        opencode_group: world.opencode_child()?.pid,
        watcher_threads: "real-operator",
        direct_threads: ["real-direct", "real-control"],
    };
    let session = world.create_session().await?;
    // The first prompt of an instance loads providers and generates the title: keep it out.
    let warm_up = ("warm up", 1);
    phase(world, direct, &client, &session, &[], warm_up, &probe).await?;
    let text = format!("SLOW {} {}", opts.events, opts.event_interval.as_millis());
    let turns = if opts.smoke { 1 } else { TURNS };
    let mut rows = Vec::new();
    for &w in &opts.watchers {
        let mut ops = Vec::with_capacity(w);
        for _ in 0..w {
            ops.push(world.operator().await?);
        }
        let (records, spent) = phase(
            world,
            direct,
            &client,
            &session,
            &ops,
            (&text, turns),
            &probe,
        )
        .await?;
        let mut samples = Samples::default();
        for t in &records {
            samples.add(t)?;
        }
        let cpu = spent.row(name(w), samples.deltas, w);
        rows.push(row(w, samples, opts));
        rows.push(cpu);
        drop(ops);
    }
    Ok(rows)
}

fn runtime(name: &str, workers: usize) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(format!("real-{name}"))
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

fn measured(opts: &Options, tools: &Tools) -> Result<Vec<Row>> {
    let ops = runtime("operator", 2)?;
    // Each direct reader gets its own thread, so 100 watchers do not delay it.
    let (base, control) = (runtime("direct", 1)?, runtime("control", 1)?);
    let direct = Direct {
        base: base.handle(),
        control: control.handle(),
    };
    let world = RealWorld::start(opts, tools, &ops)?;
    let result = ops.block_on(measure(&world, direct, opts));
    world.stop();
    result
}

/// Runs scenario 4 with a real OpenCode. Rows say "skipped" when OpenCode or the test model is
/// not installed. Other failures fail a smoke run (CI) and become "failed" rows in a full run,
/// so a long run still prints its table.
///
/// # Errors
/// A failure during a smoke run.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let tools = match real::tools(opts) {
        Ok(t) => t,
        Err(why) => {
            return Ok(opts
                .watchers
                .iter()
                .map(|&w| real::skipped(&name(w), METRIC, &why))
                .collect());
        }
    };
    match measured(opts, &tools) {
        Ok(rows) => Ok(rows),
        Err(e) if !opts.smoke => Ok(opts
            .watchers
            .iter()
            .map(|&w| real::failed(&name(w), METRIC, &e))
            .collect()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn added_matches_deltas_by_part_and_text() {
        let t0 = Instant::now();
        let key = |i: u32| ("prt_1".to_owned(), format!("chunk {i} "));
        let direct: Seen = (0..3).map(|i| (key(i), t0)).collect();
        let late: Seen = (0..3)
            .map(|i| (key(i), t0 + Duration::from_micros(100 * u64::from(i + 1))))
            .collect();
        let mut a = added(&direct, &[late]).unwrap();
        a.sort_unstable_by(f64::total_cmp);
        assert_eq!(
            a.iter().map(|v| v.round()).collect::<Vec<_>>(),
            [100.0, 200.0, 300.0]
        );
        let short: Seen = (0..2).map(|i| (key(i), t0)).collect();
        assert!(added(&direct, &[short]).is_err());
    }
}
