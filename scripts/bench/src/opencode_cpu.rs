//! CPU used while a real OpenCode streams (scenario 4): the bench's watcher and direct-reader
//! threads (their runtimes name them), the `cm-relay` and `cm-agent` processes, and OpenCode's
//! process group (the agent starts it in its own group). `utime` + `stime` from `/proc`.

use crate::procfs::{cpu_seconds, threads_cpu_seconds};
use crate::report::{Row, Verdict};
use crate::throughput::{MIN_CPU_S, cpu_ratio};

/// CPU seconds so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// The watchers' runtime threads.
    pub watchers: f64,
    /// Both direct readers' threads.
    pub direct: f64,
    /// The relay process.
    pub relay: f64,
    /// The agent process.
    pub agent: f64,
    /// OpenCode's process group.
    pub opencode: f64,
}

impl Cpu {
    fn minus(self, b: Self) -> Self {
        Self {
            watchers: self.watchers - b.watchers,
            direct: self.direct - b.direct,
            relay: self.relay - b.relay,
            agent: self.agent - b.agent,
            opencode: self.opencode - b.opencode,
        }
    }

    fn plus(self, b: Self) -> Self {
        Self {
            watchers: self.watchers + b.watchers,
            direct: self.direct + b.direct,
            relay: self.relay + b.relay,
            agent: self.agent + b.agent,
            opencode: self.opencode + b.opencode,
        }
    }
}

/// What to sample.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// Clock ticks per second.
    pub tck: u64,
    /// `cm-relay`.
    pub relay: u32,
    /// `cm-agent`.
    pub agent: u32,
    /// OpenCode's process group id.
    pub opencode_group: i32,
    /// Thread name prefix of the watchers' runtime.
    pub watcher_threads: &'static str,
    /// Thread name prefixes of the direct readers' runtimes.
    pub direct_threads: [&'static str; 2],
}

/// CPU ticks of every process in group `pgid` (scans `/proc`; a process that ends meanwhile is
/// skipped).
fn group_seconds(pgid: i32, tck: u64) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| group_of(*pid) == Some(pgid))
        .filter_map(|pid| cpu_seconds(pid, tck).ok())
        .sum()
}

/// The process group of `pid` (field 5 of `/proc/PID/stat`).
fn group_of(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's ')': state, ppid, pgrp.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

impl Probe {
    /// CPU seconds so far.
    pub fn sample(&self) -> Cpu {
        let tck = self.tck;
        Cpu {
            watchers: threads_cpu_seconds(self.watcher_threads, tck),
            direct: self
                .direct_threads
                .iter()
                .map(|p| threads_cpu_seconds(p, tck))
                .sum(),
            relay: cpu_seconds(self.relay, tck).unwrap_or(0.0),
            agent: cpu_seconds(self.agent, tck).unwrap_or(0.0),
            opencode: group_seconds(self.opencode_group, tck),
        }
    }
}

/// CPU spent over several measured spans.
#[derive(Debug, Default)]
pub struct Spent(Cpu);

impl Spent {
    /// Adds the span from `before` until now.
    pub fn add(&mut self, probe: &Probe, before: Cpu) {
        self.0 = self.0.plus(probe.sample().minus(before));
    }

    /// The CPU row for `deltas` text deltas read by `watchers` watchers (and by the 2 direct
    /// readers).
    pub fn row(&self, scenario: String, deltas: usize, watchers: usize) -> Row {
        let c = self.0;
        let delivered = (deltas * watchers).max(1) as f64;
        let per = |s: f64, n: f64| s / n * 1e6;
        let relayed = [c.watchers, c.relay, c.agent].map(|s| per(s, delivered));
        let total: f64 = relayed.iter().sum();
        let direct = per(c.direct, (2 * deltas).max(1) as f64);
        let enough = c.watchers + c.relay + c.agent >= MIN_CPU_S && c.direct >= MIN_CPU_S / 10.0;
        let metric = "CPU µs per delivered delta: watchers / relay / agent = total \
                      (OpenCode per delta); raw: one direct SSE reader";
        if !enough {
            return Row::info(&scenario, metric, "n/a (too short)".into());
        }
        Row {
            scenario,
            metric: metric.into(),
            relay: format!(
                "{:.1} / {:.1} / {:.1} = {total:.1} (OpenCode {:.0})",
                relayed[0],
                relayed[1],
                relayed[2],
                per(c.opencode, deltas.max(1) as f64)
            ),
            raw: format!("{direct:.1}"),
            delta: cpu_ratio(total, direct),
            goal: String::new(),
            verdict: Verdict::Info,
        }
    }
}
