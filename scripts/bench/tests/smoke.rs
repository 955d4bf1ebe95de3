//! Keeps the benchmarks from rotting: the smoke sizes of every scenario run on every
//! `cargo test` — the in-process ones (hop latency, throughput, streaming) and, on the debug
//! binaries, the ones that start processes (fleet, start-up, real OpenCode streaming). They assert that the scenarios work and
//! produce rows, not any timing.

use cm_bench::{Options, Verdict};
use std::path::PathBuf;

fn smoke() -> Options {
    Options::smoke(PathBuf::from("target/release"))
}

#[test]
fn latency_and_throughput_smoke() {
    let opts = smoke();
    let mut rows = cm_bench::latency::run(&opts).expect("latency scenario");
    rows.extend(cm_bench::throughput::run(&opts).expect("throughput scenario"));
    assert_eq!(rows.len(), 2 * cm_bench::latency::SIZES.len() + 4);
    assert!(rows.iter().all(|r| r.verdict != Verdict::Skipped));
    assert!(!cm_bench::report::text_table(&rows).is_empty());
}

#[test]
fn streaming_smoke() {
    let rows = cm_bench::streaming::run(&smoke()).expect("streaming scenario");
    assert_eq!(rows.len(), 4);
}

/// The workspace's debug binaries, next to this package's own `cm-bench` (`scripts/test.sh`
/// builds every binary before the tests run).
fn debug_bins() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cm-bench"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The scenarios that start real processes (relay, raw quinn server, agent, OpenCode with the
/// test model) at smoke sizes, on the debug builds: they must run and give rows, not timings.
#[test]
fn process_scenarios_smoke() {
    let opts = Options::smoke(debug_bins());
    for (name, run) in [
        (
            "fleet",
            cm_bench::fleet::run as fn(&Options) -> anyhow::Result<_>,
        ),
        ("startup", cm_bench::startup::run),
        ("opencode", cm_bench::opencode_stream::run),
        ("forward", cm_bench::forward::run),
    ] {
        let rows = run(&opts).unwrap_or_else(|e| panic!("{name} scenario: {e:#}"));
        assert!(!rows.is_empty(), "{name} gave no rows");
        for r in &rows {
            assert_ne!(
                r.verdict,
                Verdict::Skipped,
                "{name}: {} skipped: {}",
                r.metric,
                r.relay
            );
            assert!(
                !r.relay.contains("FAILED"),
                "{name}: {} {}",
                r.metric,
                r.relay
            );
        }
    }
}

/// Scenario 8 at smoke sizes on the debug builds: a PostgreSQL server, relays in a fleet, the
/// cross-relay hop and agents spread over three relays give their rows (skipped, loudly,
/// without PostgreSQL).
#[test]
fn peering_smoke() {
    let rows = cm_bench::peering::run(&Options::smoke(debug_bins())).expect("peering scenario");
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(!r.relay.contains("FAILED"), "{}: {}", r.metric, r.relay);
    }
}

/// Scenario 14 (the TCP path, issue #21) at smoke sizes: the relay's TCP listener, the real
/// client's TCP and QUIC dials and the UDP-blocked fallback must work and give every row.
#[test]
fn transport_smoke() {
    let rows = cm_bench::transport::run(&smoke()).expect("transport scenario");
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.verdict != Verdict::Skipped));
}
