//! How many argon2 password checks may run at once. Each takes [`PASSWORD_CHECK_MEMORY`]
//! (argon2id defaults: m = 19 MiB), so a flood of concurrent logins would otherwise take the
//! relay's memory with it. The number is the memory budget (a quarter of the memory available
//! at start) divided by that, at least 2, and never more than the configured cap
//! (`max_password_checks`, default `config::DEFAULT_MAX_PASSWORD_CHECKS`). Logins beyond it wait.

/// Memory one argon2id check takes with the default parameters.
pub(crate) const PASSWORD_CHECK_MEMORY: u64 = 19 * 1024 * 1024;

/// Share of the available memory password checks may use together (1/4).
const BUDGET_DIVISOR: u64 = 4;

/// Concurrent checks allowed with `cap` configured and `available` bytes of memory free
/// (`None`: unknown, then the cap alone decides).
pub(crate) fn slots(cap: usize, available: Option<u64>) -> usize {
    let cap = cap.max(1);
    let by_memory = available.map_or(cap, |bytes| {
        let n = bytes / BUDGET_DIVISOR / PASSWORD_CHECK_MEMORY;
        usize::try_from(n).unwrap_or(usize::MAX).max(2)
    });
    by_memory.min(cap)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (Linux; `None` elsewhere).
pub(crate) fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_memory_within_the_cap() {
        let gib = 1024 * 1024 * 1024;
        assert_eq!(slots(4, Some(16 * gib)), 4, "plenty of memory: the cap");
        assert_eq!(slots(64, Some(gib)), 13, "1 GiB / 4 / 19 MiB");
        assert_eq!(slots(4, Some(10 * 1024 * 1024)), 2, "at least two");
        assert_eq!(slots(1, Some(16 * gib)), 1, "the cap wins over the minimum");
        assert_eq!(slots(0, None), 1, "a zero cap still lets logins through");
        assert_eq!(slots(3, None), 3);
    }

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       24683520 kB\nMemAvailable:   21926400 kB\n";
        assert_eq!(parse_mem_available(text), Some(21_926_400 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }
}
