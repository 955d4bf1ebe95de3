//! Scenario 5, start-up: launch of the release `cm-relay` until its "relay listening" line,
//! launch of the release `cm-agent` (enrolled with `cm-agent enroll`, file secret store)
//! until an operator's `watch_hosts` shows the host online, and OpenCode ready after an
//! `opencode_start` through the relay, next to OpenCode's own start time (`opencode serve`
//! launched directly the way the agent does, until healthy: see `opencode_launch.rs`).

use crate::child::{self, Proc};
use crate::netutil;
use crate::opencode_launch;
use crate::options::Options;
use crate::real::{self, RealWorld, Tools};
use crate::report::Row;
use crate::worlds::{WAIT, init_state, login_owner};
use anyhow::{Context, Result};
use cm_client as client;
use proto::handshake::PeerKind;
use proto::ids::ReqId;
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn relay_ready(opts: &Options, state: &Path) -> Result<Vec<Duration>> {
    (0..opts.startup_runs.max(1))
        .map(|_| {
            let (proc, _, ready) = child::relay(&opts.bin_dir, state)?;
            proc.stop();
            Ok(ready)
        })
        .collect()
}

/// Times `cm-agent run` launches until the host shows online, one fresh host per run.
fn agent_online(opts: &Options) -> Result<Vec<Duration>> {
    let tmp = opts.tempdir()?;
    let (dir, init) = init_state(&tmp)?;
    let (relay, addr, _) = child::relay(&opts.bin_dir, dir.root())?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        let cred = login_owner(addr, &init.pin, &init).await?;
        let ep = netutil::client_endpoint(&init.pin)?;
        let conn = netutil::connect(&ep, addr).await?;
        let op =
            client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
        let mut times = Vec::new();
        for i in 0..opts.startup_runs.max(1) {
            let host = format!("agent-{i}");
            let token = cm_relay::cli::host_add(&dir, &host, Some(addr.to_string()))?;
            let root = tmp.path().join(&host);
            child::enroll_agent(&opts.bin_dir, &root, &token.encode())?;
            let mut watch = client::HostWatch::open(&op.conn, ReqId(9)).await?;
            let _first = watch.next().await?;
            let start = Instant::now();
            let agent = Proc::spawn(child::agent_cmd(&opts.bin_dir, &root)?)?;
            tokio::time::timeout(WAIT, async {
                loop {
                    let list = watch
                        .next()
                        .await?
                        .context("the relay ended the host watch")?;
                    if list
                        .hosts
                        .iter()
                        .any(|h| h.host.as_str() == host && h.online)
                    {
                        return Ok::<_, anyhow::Error>(());
                    }
                }
            })
            .await
            .context("agent did not come online")??;
            times.push(start.elapsed());
            agent.stop();
        }
        ep.close(0u32.into(), b"done");
        Ok::<_, anyhow::Error>(times)
    });
    relay.stop();
    result
}

/// Times `opencode_start` through the relay until the agent answers that OpenCode is ready,
/// then (after `opencode_stop`) a direct launch until healthy, run by run; `(relayed, direct)`.
fn opencode_ready(opts: &Options, tools: &Tools) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let rt = tokio::runtime::Runtime::new()?;
    let world = RealWorld::start(opts, tools, &rt)?;
    let result = world.scratch("direct-state").and_then(|direct_state| {
        rt.block_on(async {
            let (mut relayed, mut direct) = (Vec::new(), Vec::new());
            for _ in 0..opts.startup_runs.max(1) {
                let start = Instant::now();
                world.start_opencode().await?;
                relayed.push(start.elapsed());
                world.stop_opencode().await?;
                direct.push(
                    opencode_launch::time_to_healthy(
                        &tools.opencode,
                        &world.agent_config,
                        &direct_state,
                    )
                    .await?,
                );
            }
            Ok::<_, anyhow::Error>((relayed, direct))
        })
    });
    world.stop();
    result
}

/// The OpenCode row: skipped when OpenCode or the test model is missing; a failure fails a
/// smoke run (CI) and is a "failed" row in a full run.
fn opencode_row(opts: &Options) -> Result<Row> {
    let metric = format!(
        "OpenCode ready after opencode_start via the relay; raw column: `opencode serve` \
         launched directly → healthy, ms (median of {})",
        opts.startup_runs.max(1)
    );
    let tools = match real::tools(opts) {
        Ok(t) => t,
        Err(why) => return Ok(real::skipped("5 start-up", &metric, &why)),
    };
    match opencode_ready(opts, &tools) {
        Ok((relayed, direct)) => {
            let (r, d) = (median(relayed), median(direct));
            let share = r.as_secs_f64() - d.as_secs_f64();
            Ok(Row {
                raw: ms(d),
                delta: format!(
                    "{share_ms:+.1} (CodeMantle's share)",
                    share_ms = share * 1000.0
                ),
                ..Row::info("5 start-up", &metric, ms(r))
            })
        }
        Err(e) if !opts.smoke => Ok(real::failed("5 start-up", &metric, &e)),
        Err(e) => Err(e),
    }
}

/// Runs scenario 5.
///
/// # Errors
/// The relay binary is missing or does not start. A missing `cm-agent` is a skipped row, and
/// so is a missing OpenCode or test model.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let tmp = opts.tempdir()?;
    let (dir, _) = init_state(&tmp)?;
    let relay = relay_ready(opts, dir.root())?;
    let runs = relay.len();
    let mut rows = vec![Row::info(
        "5 start-up",
        &format!("cm-relay launch → \"relay listening\", ms (median of {runs})"),
        ms(median(relay)),
    )];
    let metric = format!(
        "cm-agent launch → online in watch_hosts, ms (median of {})",
        opts.startup_runs.max(1)
    );
    rows.push(match agent_online(opts) {
        Ok(t) => Row::info("5 start-up", &metric, ms(median(t))),
        Err(e) => real::failed("5 start-up", &metric, &e),
    });
    rows.push(opencode_row(opts)?);
    Ok(rows)
}
