//! The TCP path to the relay proven in network namespaces the tests build themselves
//! (issue #21): a relay, a laptop and a host each in a namespace of their own, joined by veth
//! pairs; `nft` rules in the relay's namespace drop UDP (or all direct traffic) the way hotel
//! and corporate networks do; the laptop's address is moved mid-stream. Real `cm-relay`, real
//! `cm-agent` driving a real `opencode serve` on the project's test model, real `cm-tui`.
//! A test skips (with a loud message) only where the kernel refuses to create namespaces.

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
#[path = "../faults/support.rs"]
mod support;

mod enter;
mod lab;
mod netns;
mod observe;
mod proxy;
mod topology;
mod watcher;

mod address_change;
mod handover;
mod lab_network;
mod proxy_only;
mod quic_returns;
mod udp_blocked;
mod udp_dropped_mid_session;
