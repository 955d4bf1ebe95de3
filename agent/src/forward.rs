//! Port detection and forwarding on the host (`port_list`, `port_forward`).
//!
//! - [`proc_net`]: the LISTEN sockets of `/proc/net/tcp` and `/proc/net/tcp6` on loopback or
//!   wildcard addresses (pure parsing);
//! - [`owners`]: which process holds a socket (`/proc/<pid>/fd`) and which workspace's OpenCode
//!   launched it (the launch marker in `/proc/<pid>/environ`), pure parsing plus a thin reader;
//! - [`detect`]: the list operators see, without OpenCode's own server or the agent's sockets;
//! - [`policy`]: the host's `[forward]` rules (which ports, how many connections, idle time);
//! - [`limits`]: the live connection counts those rules bound;
//! - [`splice`]: one forwarded connection's bytes, both ways, with its idle timeout.
//!
//! The agent only ever connects to `127.0.0.1` or `::1`: a forwarded port is a port of this
//! host's loopback, never an address an operator names.

pub mod detect;
pub mod limits;
pub mod owners;
pub mod policy;
pub mod proc_net;
pub mod splice;

pub use limits::Connections;
pub use policy::ForwardPolicy;

/// The host's forwarding state: its `[forward]` rules and the connections open under them.
#[derive(Debug, Default)]
pub struct Forwarding {
    policy: parking_lot::RwLock<std::sync::Arc<ForwardPolicy>>,
    /// Connections open now.
    pub connections: Connections,
    /// The last scan and when it was taken: a burst of connections (a browser opens several)
    /// shares one walk of `/proc`.
    last_scan: parking_lot::Mutex<Option<(std::time::Instant, std::sync::Arc<detect::Detected>)>>,
}

/// How long a scan may be reused to allow a connection (a refusal always scans again).
pub const SCAN_REUSE: std::time::Duration = std::time::Duration::from_secs(2);

impl Forwarding {
    /// The rules in force.
    pub fn policy(&self) -> std::sync::Arc<ForwardPolicy> {
        std::sync::Arc::clone(&self.policy.read())
    }

    /// The last scan if it is younger than [`SCAN_REUSE`].
    pub fn recent_scan(&self) -> Option<std::sync::Arc<detect::Detected>> {
        self.last_scan
            .lock()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SCAN_REUSE)
            .map(|(_, d)| std::sync::Arc::clone(d))
    }

    /// Keeps `scan` for [`Self::recent_scan`].
    pub fn keep_scan(&self, scan: std::sync::Arc<detect::Detected>) {
        *self.last_scan.lock() = Some((std::time::Instant::now(), scan));
    }

    /// Puts `policy` in force (at start, from `agent.toml`).
    pub fn set_policy(&self, policy: ForwardPolicy) {
        *self.policy.write() = std::sync::Arc::new(policy);
    }
}
