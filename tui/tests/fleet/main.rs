//! The fleet through the real binaries (issue #19): one PostgreSQL (`initdb` into a temporary
//! directory), three `cm-relay` processes sharing it (`cm-relay init` on the first, the
//! client-facing certificate copied to the others, each registered with
//! `cm-relay cluster add`), agents each connected to two of the relays, each driving a real
//! `opencode serve` on the project's test model, and operators (`cm-tui` and the operator
//! library) on different relays. Relays are killed with SIGKILL, cut from their peers by a
//! firewall rule, the database is stopped and started again. Every wait is on observable
//! state and bounded; nothing sleeps to synchronise.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    missing_debug_implementations,
    dead_code,
    reason = "test code: a failed unwrap is a failed test; the e2e and fault harnesses are shared and not all of them is used here"
)]

#[path = "../e2e/harness.rs"]
mod harness;
#[path = "../../../relay/tests/support/pg_server.rs"]
mod pg_server;
#[path = "../faults/support.rs"]
mod support;

mod firewall;
mod follow;
mod pg_control;
mod world;

mod admin_on_postgres;
mod kill_switch;
mod partition;
mod relay_killed;
mod store_down;
mod streaming;
