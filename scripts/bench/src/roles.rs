//! One tokio runtime per role, as if each were its own process: the operator (the bench
//! driver), the relay, and the agent (or, for the baseline, the direct echo server).

use anyhow::{Context, Result};
use tokio::runtime::Runtime;

/// Worker threads per role: what `Runtime::new()` picks on this 2-core machine class.
const WORKERS: usize = 2;

/// The three runtimes.
#[derive(Debug)]
pub struct Roles {
    /// Runs the bench driver and the operator connections.
    pub operator: Runtime,
    /// Runs the in-process relay.
    pub relay: Runtime,
    /// Runs the fake agent and the direct (baseline) server.
    pub agent: Runtime,
}

fn runtime(name: &str) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(format!("bench-{name}"))
        .enable_all()
        .build()
        .with_context(|| format!("starting the {name} runtime"))
}

impl Roles {
    /// Starts the three runtimes.
    ///
    /// # Errors
    /// A runtime cannot start (thread limits).
    pub fn new() -> Result<Self> {
        Ok(Self {
            operator: runtime("operator")?,
            relay: runtime("relay")?,
            agent: runtime("agent")?,
        })
    }
}

/// CPU seconds used so far by each role's threads: operator, relay, agent (with the agent's
/// idle-class signature thread, `cm_agent::signature_check`).
pub fn cpu_by_role(tck: u64) -> [f64; 3] {
    let [operator, relay, agent] = ["bench-operator", "bench-relay", "bench-agent"]
        .map(|name| crate::procfs::threads_cpu_seconds(name, tck));
    let verify = crate::procfs::threads_cpu_seconds(cm_agent::signature_check::THREAD_NAME, tck);
    [operator, relay, agent + verify]
}

/// CPU used per role between two [`cpu_by_role`] samples.
pub fn cpu_since(before: [f64; 3], tck: u64) -> [f64; 3] {
    let now = cpu_by_role(tck);
    [now[0] - before[0], now[1] - before[1], now[2] - before[2]]
}

/// Runs `fut` on `rt` and waits for it from another runtime.
///
/// # Errors
/// The future's error, or a panic inside it.
pub async fn on<T: Send + 'static>(
    rt: &Runtime,
    fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    rt.spawn(fut).await.context("task panicked")?
}
