//! Scenario 6: the TUI's frame time with a long transcript, from the `cm-tui` frame bench
//! (`tui/benches/frame.rs`), which `scripts/bench.sh` builds and hands over with
//! `--tui-frame-bin`. That bench prints one table row per size; the largest size becomes the
//! row here.

use crate::report::{Row, Verdict};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// The goal per frame.
pub const GOAL_MS: f64 = 16.0;

/// Runs the frame bench at `size` messages with `frames` frames per case and returns its output.
///
/// # Errors
/// The bench could not run or failed.
pub fn run(bin: &Path, size: usize, frames: usize) -> Result<String> {
    let out = Command::new(bin)
        .args([
            "--sizes",
            &size.to_string(),
            "--frames",
            &frames.to_string(),
        ])
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One parsed size line of the frame bench.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameLine {
    /// Messages in the transcript.
    pub messages: usize,
    /// `[p50, p99]` ms for idle, one streamed delta, one scroll key.
    pub cases: [[f64; 2]; 3],
    /// Resident memory once loaded, MiB.
    pub rss_mib: f64,
    /// Memory per message, KiB.
    pub kib_per_message: f64,
}

/// Parses the size lines (`messages rows load rows | p50 p99 max | … | … | rss0 rss kib`).
pub fn parse(output: &str) -> Vec<FrameLine> {
    output.lines().filter_map(parse_line).collect()
}

fn numbers(s: &str) -> Option<Vec<f64>> {
    s.split_whitespace()
        .filter(|w| *w != "MISS")
        .map(|w| w.parse().ok())
        .collect()
}

fn parse_line(line: &str) -> Option<FrameLine> {
    let parts: Vec<&str> = line.split('|').collect();
    let [head, idle, stream, scroll, tail] = parts.as_slice() else {
        return None;
    };
    let messages = head.split_whitespace().next()?.parse().ok()?;
    let case = |s: &str| -> Option<[f64; 2]> {
        let n = numbers(s)?;
        Some([*n.first()?, *n.get(1)?])
    };
    let tail = numbers(tail)?;
    Some(FrameLine {
        messages,
        cases: [case(idle)?, case(stream)?, case(scroll)?],
        rss_mib: *tail.get(1)?,
        kib_per_message: *tail.get(2)?,
    })
}

/// The table row for the largest size in `output`.
pub fn row(output: &str) -> Option<Row> {
    let line = parse(output).into_iter().max_by_key(|l| l.messages)?;
    let worst = line.cases.iter().map(|c| c[1]).fold(0.0, f64::max);
    let cells: Vec<String> = line
        .cases
        .iter()
        .map(|[p50, p99]| format!("{p50:.2} / {p99:.2}"))
        .collect();
    Some(Row {
        scenario: "6 TUI frame".into(),
        metric: format!(
            "p50/p99 ms per frame, 140×40, {} messages: idle · streamed delta · scroll",
            line.messages
        ),
        relay: cells.join(" · "),
        raw: "—".into(),
        delta: format!(
            "RSS {:.1} MiB, {:.2} KiB/msg",
            line.rss_mib, line.kib_per_message
        ),
        goal: format!("p99 ≤ {GOAL_MS:.0}"),
        verdict: if worst <= GOAL_MS {
            Verdict::Met
        } else {
            Verdict::Missed
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "cm-tui frame bench: session screen 140x40, 200 frames per case, goal 16 ms
messages     rows load ms rows ms |   idle p50/p99/max ms | stream p50/p99/max ms | scroll p50/p99/max ms |  RSS0 MiB   RSS MiB   KiB/msg
    1000     5621    12.0   11.00 |   0.20   4.40    5.00 |   0.34   5.51    6.00 |   0.21   4.42    5.10 |       2.1       6.4      4.40
   10000    56236   120.0  111.00 |   0.17   4.24    9.00 |   0.21  17.39   20.00 |   0.22   4.31    6.00 |       2.1      30.8      2.94 MISS
";

    #[test]
    fn the_largest_size_becomes_the_row() {
        let lines = parse(OUTPUT);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].cases[1], [0.34, 5.51]);
        let row = row(OUTPUT).unwrap();
        assert!(row.metric.contains("10000 messages"), "{}", row.metric);
        assert_eq!(row.relay, "0.17 / 4.24 · 0.21 / 17.39 · 0.22 / 4.31");
        assert_eq!(row.delta, "RSS 30.8 MiB, 2.94 KiB/msg");
        assert_eq!(row.verdict, Verdict::Missed, "one p99 is over 16 ms");
    }

    #[test]
    fn met_when_every_p99_is_within_the_goal() {
        let ok = OUTPUT.replace("17.39", " 4.39");
        assert_eq!(row(&ok).unwrap().verdict, Verdict::Met);
        assert!(row("no table here").is_none());
    }
}
