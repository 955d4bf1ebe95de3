//! `cm-agent attach` through the real binaries: the control socket and its refusals
//! ([`channel`]), the local-action notice reaching the relay's audit trail ([`audit`]), the
//! launch lease kept for the desk ([`lease`]), and OpenCode's own TUI in tmux on the same
//! sessions as `cm-tui` ([`tui`]).
//!
//! Needs `cargo build --workspace --bins` (cm-relay and cm-tui next to cm-agent), the pinned
//! OpenCode (scripts/install-opencode.sh) and tmux.

#![allow(
    clippy::unwrap_used,
    missing_debug_implementations,
    reason = "test harness code"
)]

mod audit;
mod channel;
mod harness;
mod lease;
mod tui;
