//! What the host reports in each heartbeat, read from `/proc` on Linux (best effort elsewhere),
//! and `cm-agent status` ([`local`]).

pub mod links;
pub mod local;

use proto::message::HostStatus;
use std::fs;

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The host's name.
pub fn hostname() -> String {
    read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn parse_loadavg(text: &str) -> [f64; 3] {
    let mut it = text.split_whitespace().map(|v| v.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

fn parse_meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

/// Collects the current status.
pub fn collect(workspaces: Vec<String>) -> HostStatus {
    let (mem_total_kib, mem_available_kib) = read("/proc/meminfo")
        .map(|t| parse_meminfo(&t))
        .unwrap_or((0, 0));
    let kernel = read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    HostStatus {
        hostname: hostname(),
        os: format!("{} {kernel}", std::env::consts::OS)
            .trim()
            .to_owned(),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: read("/proc/uptime")
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .map(|s| s as u64)
            .unwrap_or(0),
        load: read("/proc/loadavg")
            .map(|t| parse_loadavg(&t))
            .unwrap_or_default(),
        mem_total_kib,
        mem_available_kib,
        workspaces,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            parse_loadavg("0.50 1.25 2.00 1/234 5678\n"),
            [0.5, 1.25, 2.0]
        );
        assert_eq!(parse_loadavg("garbage"), [0.0, 0.0, 0.0]);
        let mem = "MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:   12000000 kB\n";
        assert_eq!(parse_meminfo(mem), (24_000_000, 12_000_000));
        assert_eq!(parse_meminfo(""), (0, 0));
    }

    #[test]
    fn collect_reports_this_host() {
        let s = collect(vec!["demo".into()]);
        assert!(!s.hostname.is_empty());
        assert_eq!(s.workspaces, vec!["demo".to_owned()]);
        assert_eq!(s.agent_version, env!("CARGO_PKG_VERSION"));
    }
}
