//! Fault injection through the real binaries (issue #7): a `cm-relay` process, a `cm-agent`
//! process driving a real `opencode serve` whose LLM is the project's test model, `cm-tui` and
//! the operator library. Relay and agent are killed with SIGKILL mid-answer, the network
//! between agent and relay is cut by a UDP proxy in the test, replies are dropped, prompts are
//! queued for an offline host. Everything on 127.0.0.1; every wait is bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_debug_implementations,
    dead_code,
    reason = "test code: a failed unwrap is a failed test; the e2e harness is shared and not all of it is used here"
)]

#[path = "../e2e/harness.rs"]
mod harness;

mod agent_restart;
mod liveness;
mod network;
mod relay_restart;
mod relay_rotation;
mod support;
