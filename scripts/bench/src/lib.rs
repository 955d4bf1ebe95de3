//! `cm-bench`: how fast and how big CodeMantle's relay is, measured side by side with raw QUIC
//! (quinn with the same TLS settings) on the same machine, in one run.
//!
//! Every scenario is in-process on 127.0.0.1 with OS-chosen ports and stops by itself, except
//! where a separate process is the point (relay RSS and CPU, start-up times): those run the
//! release `cm-relay` / `cm-agent` binaries as children. Each role (operator, relay, agent or
//! direct server) gets its own tokio runtime, as it would be its own process.

pub mod child;
pub mod doc;
pub mod events;
pub mod exchange;
pub mod fleet;
pub mod forward;
pub mod latency;
pub mod machine;
pub mod netutil;
pub mod notify;
pub mod opencode_cpu;
pub mod opencode_launch;
pub mod opencode_stream;
pub mod options;
pub mod peer;
pub mod peering;
pub mod procfs;
pub mod rawserver;
pub mod real;
pub mod report;
pub mod roles;
pub mod startup;
pub mod stats;
pub mod streaming;
pub mod swarm;
pub mod throughput;
pub mod transport;
pub mod transport_world;
pub mod tui_frame;
pub mod worlds;
pub mod zero_trust;
pub mod zero_trust_agent;
pub mod zero_trust_client;
pub mod zero_trust_costs;
pub mod zero_trust_events;
pub mod zero_trust_hop;
pub mod zero_trust_identity;
pub mod zero_trust_load;
pub mod zero_trust_world;

/// The throwaway PostgreSQL server of the relay's tests (the fleet scenario's database).
#[allow(
    unreachable_pub,
    dead_code,
    reason = "shared with relay/tests: not all of it is used here"
)]
#[path = "../../../relay/tests/support/pg_server.rs"]
mod pg_server;

pub use options::Options;
pub use report::{Row, Verdict};
