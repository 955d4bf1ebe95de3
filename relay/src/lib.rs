//! `cm-relay`: the CodeMantle relay.
//!
//! Agents and operators both dial out to the relay over QUIC. The relay authenticates each
//! connection (h1/h2, see `cm_proto::handshake`), keeps presence, authorizes each stream at one
//! point ([`authz`]), and answers or forwards it. The client side of the protocol is the
//! `cm-client` crate; the pieces both ends share (framing, the clock, transport settings, the
//! small helpers every binary uses) live there and are re-exported here under their old names.

pub use cm_client::{finding, framed, pipe, signal, time, toml_file};
pub mod tls;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod audit_event;
#[cfg(feature = "server")]
pub mod authz;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod config_file;
#[cfg(feature = "server")]
pub mod core_tasks;
#[cfg(feature = "server")]
pub mod doctor;
#[cfg(feature = "server")]
pub mod fleet;
#[cfg(feature = "server")]
pub mod fleet_config;
#[cfg(feature = "server")]
pub mod help_examples;
#[cfg(feature = "server")]
mod inflight;
#[cfg(feature = "server")]
mod net;
#[cfg(feature = "server")]
pub mod notify;
#[cfg(feature = "server")]
pub mod password;
#[cfg(feature = "server")]
pub mod presence;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
pub mod tamper;
#[cfg(feature = "server")]
pub mod totp;

/// A throwaway PostgreSQL server for tests (shared with the integration tests).
#[cfg(test)]
#[path = "../tests/support/pg_server.rs"]
#[allow(
    unreachable_pub,
    dead_code,
    reason = "shared with the integration tests"
)]
pub(crate) mod pg_server;
