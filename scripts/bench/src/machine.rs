//! A description of the machine the numbers come from, for `docs/performance.md`.

use std::fmt::Write as _;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn command(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// CPU model from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// Markdown bullet list: cores, CPU, memory, kernel, date, load at start.
pub fn describe() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "- cores (nproc): {nproc}");
    let _ = writeln!(out, "- CPU: {}", cpu_model());
    let _ = writeln!(out, "- memory: {} MiB", mem_kib / 1024);
    let _ = writeln!(
        out,
        "- kernel: Linux {}",
        read("/proc/sys/kernel/osrelease").trim()
    );
    let _ = writeln!(
        out,
        "- date: {}",
        command("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    );
    let _ = writeln!(
        out,
        "- load average at start (other builds share the cores): {}",
        read("/proc/loadavg")
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(out, "- {}", command("rustc", &["--version"]));
    out
}
