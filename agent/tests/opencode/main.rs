//! Integration tests against a real OpenCode (`opencode serve`, installed by
//! scripts/install-opencode.sh) and the in-process test model, driven through the agent's
//! operations layer. One binary, one submodule per area; each test starts one OpenCode and
//! runs its cases in sequence on it, to keep the wall time down.

#![allow(
    clippy::unwrap_used,
    unreachable_pub,
    missing_debug_implementations,
    reason = "test harness code"
)]

mod errors;
mod grants;
mod harness;
mod lifecycle;
mod models;
mod provider;
mod reads;
mod subagent;
mod turns;
