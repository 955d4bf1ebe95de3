//! What to run and how big: the full defaults, and the tiny `--smoke` sizes.

use std::path::PathBuf;
use std::time::Duration;

/// Scenario sizes and paths.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tiny sizes (seconds in total), for CI.
    pub smoke: bool,
    /// Sequential round trips per payload size (scenario 1).
    pub round_trips: usize,
    /// Bulk stream size in MiB (scenario 2).
    pub bulk_mib: u64,
    /// Concurrent small-request streams (scenario 2).
    pub concurrent_streams: usize,
    /// How long the concurrent phase runs (scenario 2).
    pub concurrent_time: Duration,
    /// Simulated agent counts (scenario 3).
    pub agents: Vec<usize>,
    /// Heartbeat interval of the simulated agents (scenario 3).
    pub heartbeat_interval: Duration,
    /// CPU measurement window (scenario 3).
    pub cpu_window: Duration,
    /// Watcher counts (scenario 4).
    pub watchers: Vec<usize>,
    /// Events written per watch phase (scenario 4; with a real OpenCode, the test model's text
    /// deltas per prompt).
    pub events: usize,
    /// Interval between events (scenario 4, both kinds).
    pub event_interval: Duration,
    /// Launches timed per binary, and OpenCode starts each way (scenario 5).
    pub startup_runs: usize,
    /// Where the release `cm-relay` and `cm-agent` binaries are.
    pub bin_dir: PathBuf,
    /// Parent directory for temporary state directories (default: the system temp dir).
    pub state_base: Option<PathBuf>,
    /// Scenario 8 measures only the hops (no kill switch, no agents spread over the relays):
    /// for profiling the relays on peer streams.
    pub peering_hops_only: bool,
}

impl Options {
    /// The full run (the sizes `scripts/bench.sh` uses unless overridden).
    pub fn full(bin_dir: PathBuf) -> Self {
        Self {
            smoke: false,
            round_trips: 2000,
            bulk_mib: 256,
            concurrent_streams: 50,
            concurrent_time: Duration::from_secs(3),
            agents: vec![1000, 5000, 10_000],
            heartbeat_interval: Duration::from_secs(3),
            cpu_window: Duration::from_secs(10),
            watchers: vec![1, 100],
            events: 300,
            event_interval: Duration::from_millis(10),
            startup_runs: 5,
            bin_dir,
            state_base: None,
            peering_hops_only: false,
        }
    }

    /// Each scenario tiny: a few seconds in total, even in a debug build.
    pub fn smoke(bin_dir: PathBuf) -> Self {
        Self {
            smoke: true,
            round_trips: 40,
            bulk_mib: 4,
            concurrent_streams: 8,
            concurrent_time: Duration::from_millis(300),
            agents: vec![20],
            heartbeat_interval: Duration::from_secs(3),
            cpu_window: Duration::from_secs(1),
            watchers: vec![1, 4],
            events: 20,
            event_interval: Duration::from_millis(5),
            startup_runs: 1,
            bin_dir,
            state_base: None,
            peering_hops_only: false,
        }
    }

    /// A fresh temporary directory under [`Self::state_base`].
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn tempdir(&self) -> std::io::Result<tempfile::TempDir> {
        match &self.state_base {
            Some(base) => tempfile::tempdir_in(base),
            None => tempfile::tempdir(),
        }
    }
}
