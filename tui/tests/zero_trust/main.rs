//! The malicious-relay harness (issue #20): a real `cm-agent` driving a real `opencode serve`
//! (its LLM the project's test model), operators through the real `cm-tui` binary, and a relay
//! that runs in this test process with hooks the test controls (`cm_relay::tamper::Tamper`):
//! it rewrites forwarded headers, replays them, forges and withholds trust objects and keeps
//! every byte it forwards. The host must refuse every forgery and log it, and the bytes the
//! relay saw must hold nothing of the prompts, answers, file names or diffs.

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

mod attacks;
mod blind;
mod evil;
mod owner_app;
mod queued;
mod resign;
mod rotate;
mod screen_enroll;
mod screen_remove;
mod templates;
mod world;
