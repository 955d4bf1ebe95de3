//! OpenCode's own start time, the baseline of scenario 5's OpenCode row: `opencode serve`
//! launched directly the way the agent launches it (the agent's launch plan from its
//! configuration file: same arguments, working directory, environment, generated
//! `opencode.json` and private `XDG_*` directories, in its own process group), timed from
//! spawn until `/global/health` answers healthy. Like the agent, it waits for OpenCode's
//! "listening" line on stdout before the first probe (requests OpenCode accepts in its first
//! half second are never answered), then probes every 10 ms with the agent's 500 ms timeout.

use crate::real::WORKSPACE;
use crate::worlds::WAIT;
use anyhow::{Context, Result, anyhow, bail};
use cm_agent::config::ConfigFile;
use cm_agent::opencode::client::OpencodeClient;
use cm_agent::opencode::launch;
use cm_agent::supervisor::process::LISTENING;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// Pause between health probes of the baseline.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// Launches `opencode` (at `bin`) for the bench workspace of `agent_config`, with its state
/// under `state_dir`; returns the time from spawn to a healthy answer. The process is killed
/// afterwards.
///
/// # Errors
/// The configuration cannot be read, the launch cannot be prepared or spawned, or OpenCode is
/// not healthy within [`WAIT`].
pub async fn time_to_healthy(
    bin: &Path,
    agent_config: &Path,
    state_dir: &Path,
) -> Result<Duration> {
    let config = ConfigFile::load(agent_config)?.validate(agent_config)?;
    let workspace = config
        .workspaces
        .iter()
        .find(|w| w.name == WORKSPACE)
        .with_context(|| format!("no workspace {WORKSPACE} in {}", agent_config.display()))?;
    let random = || launch::random_hex().map_err(|e| anyhow!("no OS randomness: {e}"));
    let plan = launch::plan(
        bin,
        &config.opencode,
        workspace,
        state_dir,
        launch::free_port()?,
        random()?,
        random()?,
        None,
    );
    launch::prepare(&plan)?;
    let mut cmd = tokio::process::Command::new(&plan.program);
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("OPENCODE_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(plan.env.iter().map(|(k, v)| (k, v)));
    let client = OpencodeClient::new(plan.port, &plan.password, &plan.cwd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", plan.program.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let healthy = tokio::time::timeout(WAIT, async {
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next_line().await? {
                Some(l) if l.contains(LISTENING) => break,
                Some(_) => {}
                None => bail!("OpenCode exited before listening"),
            }
        }
        // Keep draining stdout so OpenCode never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        loop {
            if matches!(client.health().await, Ok(h) if h.healthy) {
                return Ok(start.elapsed());
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    })
    .await;
    // SIGKILL: nothing runs inside this instance (no prompt, so no tool processes).
    let _ = child.kill().await;
    healthy.context("OpenCode started directly was not healthy in time")?
}
