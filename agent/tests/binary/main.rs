//! Integration tests of the real `cm-agent` binary (`cm-agent run`, its keeper and its
//! OpenCode) against an in-process relay.

#![allow(
    clippy::unwrap_used,
    unreachable_pub,
    missing_debug_implementations,
    reason = "test harness code"
)]

mod harness;
mod provider_key;
mod reaping;
mod single_instance;
mod transport;
