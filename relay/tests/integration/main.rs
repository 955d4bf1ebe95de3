//! Relay integration tests: real QUIC on 127.0.0.1 with OS-chosen ports. One test binary
//! (submodules) to save link time.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    unreachable_pub,
    missing_debug_implementations,
    reason = "test harness items shared between test modules"
)]

mod admin;
mod admin_audit;
mod admin_cli;
mod audit_paging;
mod bad_input;
mod cli;
mod core_tasks;
mod escapes;
mod fleet_notify;
mod fleet_presence;
mod forward;
mod grants;
mod handover;
mod harness;
mod keyring;
mod kill;
mod large_fleet;
mod lease;
mod lock;
mod login_flood;
mod multi_relay;
mod notify;
mod notify_targets;
mod ownership;
mod peers;
#[path = "../support/pg_server.rs"]
#[allow(dead_code, reason = "shared with the unit tests")]
mod pg_server;
mod postgres;
mod presence;
mod prompt_audit;
mod queue;
mod refusals;
mod store_away;
mod stream_slots;
mod subworkspaces;
mod tcp_transport;
mod templates;
mod zero_trust_relay;
mod zero_trust_sealed;
