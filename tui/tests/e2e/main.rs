//! End-to-end tests through the real binaries: a `cm-relay` process, a `cm-agent` process
//! driving a real `opencode serve` whose LLM is the project's test model, and the `cm-tui`
//! scripting commands as an operator would type them. Everything on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_debug_implementations,
    reason = "test code: a failed unwrap is a failed test; harness items are shared"
)]

mod clone_tui;
mod drive;
mod forward;
mod forward_tui;
mod fs_git;
mod harness;
mod models;
mod notify;
mod phone;
mod sandbox;
mod sessions;
mod templates;
mod tmux;
mod workspace_setup;
