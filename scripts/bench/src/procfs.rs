//! Reading a process's memory and CPU time from `/proc`, and this process's open-file limit.

use anyhow::{Context, Result};

/// Resident set size of `pid` in KiB (`VmRSS`).
///
/// # Errors
/// The process is gone or `/proc` is unreadable.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS line")
}

/// User + system CPU time of `pid` in clock ticks (`utime` + `stime`, fields 14 and 15).
///
/// # Errors
/// The process is gone or the line does not parse.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    cpu_ticks_at(&format!("/proc/{pid}/stat"))
}

fn cpu_ticks_at(path: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(path)?;
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    let rest = stat.rsplit_once(')').context("no ')' in stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .context("short stat line")?
            .parse::<u64>()
            .context("bad stat field")
    };
    // After ')': state is field 3 (index 0), so utime (14) is index 11 and stime (15) index 12.
    Ok(field(11)? + field(12)?)
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix` (each
/// role's runtime names its threads, see `roles`).
pub fn threads_cpu_seconds(prefix: &str, tck: u64) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let named = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|c| c.trim_end().starts_with(prefix));
        let tid = task.file_name().to_string_lossy().parse::<u32>().ok();
        if let (true, Some(tid)) = (named, tid) {
            ticks += cpu_ticks_at(&format!("/proc/self/task/{tid}/stat")).unwrap_or(0);
        }
    }
    ticks as f64 / tck as f64
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if that fails).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// CPU seconds of `pid` so far.
///
/// # Errors
/// As [`cpu_ticks`].
pub fn cpu_seconds(pid: u32, tck: u64) -> Result<f64> {
    Ok(cpu_ticks(pid)? as f64 / tck as f64)
}

/// This process's soft limit on open files.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).expect("rss") > 0);
        cpu_ticks(pid).expect("ticks");
        assert!(threads_cpu_seconds("", ticks_per_second()) >= 0.0);
        assert!(open_files_limit().is_some());
    }
}
