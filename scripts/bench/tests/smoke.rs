//! Keeps the benchmarks from rotting: the smoke sizes of the in-process scenarios (hop latency,
//! throughput, streaming) run on every `cargo test`. They assert that the scenarios work and
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
