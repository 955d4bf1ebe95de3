//! Per-launch cgroups: a process limit (`pids`) and a memory limit (`memory`) that count only
//! the launch's own processes, unlike `RLIMIT_NPROC` (which counts every process of the user).
//!
//! Where the agent can write to the cgroup v1 `pids`/`memory` hierarchies beneath its own
//! cgroup (root, or a delegated hierarchy), each launch gets `codemantle-<marker>` there; the
//! launcher moves itself in before `exec`. Elsewhere (cgroup v2 without delegation, an
//! unprivileged agent) the resource limits fall back to rlimits (see `kernel.rs`), and
//! `cm-agent doctor` says so. cgroup v2 delegation is not used yet.

use std::path::{Path, PathBuf};

/// The cgroup folders made for one launch.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LaunchCgroups {
    /// Folders created (removed when the launch ends).
    pub dirs: Vec<PathBuf>,
}

impl LaunchCgroups {
    /// The `cgroup.procs` files the launcher writes its pid to.
    pub fn procs_files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.dirs.iter().map(|d| d.join("cgroup.procs"))
    }

    /// Moves the calling process into every folder.
    ///
    /// # Errors
    /// A folder refused the process.
    pub fn join(&self) -> std::io::Result<()> {
        let me = std::process::id().to_string();
        for f in self.procs_files() {
            std::fs::write(&f, &me)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
        }
        Ok(())
    }

    /// Removes the folders (each must be empty: call after the launch's processes are gone).
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Where this process sits in the v1 hierarchy of `controller`, from `/proc/self/cgroup`.
fn own_v1_dir(proc_cgroup: &str, controller: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == controller).then(|| {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'))
        })
    })
}

/// Removes the cgroups [`create`] made for `marker` (after the launch's processes are gone).
pub fn remove_for(marker: &str) {
    let Ok(proc_cgroup) = std::fs::read_to_string("/proc/self/cgroup") else {
        return;
    };
    let name = dir_name(marker);
    for controller in ["pids", "memory"] {
        if let Some(parent) = own_v1_dir(&proc_cgroup, controller) {
            let _ = std::fs::remove_dir(parent.join(&name));
        }
    }
}

/// The launch's cgroup folders for `marker` (those of the controllers this agent sits in).
fn dirs_for(marker: &str) -> Vec<(&'static str, PathBuf)> {
    let Ok(proc_cgroup) = std::fs::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    let name = dir_name(marker);
    ["pids", "memory"]
        .into_iter()
        .filter_map(|c| Some((c, own_v1_dir(&proc_cgroup, c)?.join(&name))))
        .collect()
}

/// Every process in the launch's cgroups now, whatever its parent, session or environment
/// (a process cannot leave them: `/sys` is read-only inside the sandbox).
pub fn members(marker: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs_for(marker)
        .iter()
        .filter_map(|(_, d)| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// How often the launch's processes ran into its limits, as the kernel counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHits {
    /// `pids.max` of the launch.
    pub pids_max: Option<u64>,
    /// New processes or threads refused at `pids.max` (`pids.events`: `max N`).
    pub forks_refused: u64,
    /// `memory.limit_in_bytes` of the launch.
    pub memory_max: Option<u64>,
    /// Processes the kernel killed at the memory limit (`memory.oom_control`: `oom_kill N`).
    pub oom_kills: u64,
}

impl LimitHits {
    /// What the counters read now for the launch `marker` (zeros without cgroups).
    pub fn read(marker: &str) -> Self {
        let mut hits = Self::default();
        for (controller, dir) in dirs_for(marker) {
            let file = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
            match controller {
                "pids" => {
                    hits.pids_max = file("pids.max").and_then(|t| t.trim().parse().ok());
                    hits.forks_refused = file("pids.events")
                        .and_then(|t| counter(&t, "max"))
                        .unwrap_or(0);
                }
                _ => {
                    hits.memory_max =
                        file("memory.limit_in_bytes").and_then(|t| t.trim().parse().ok());
                    hits.oom_kills = file("memory.oom_control")
                        .and_then(|t| counter(&t, "oom_kill"))
                        .unwrap_or(0);
                }
            }
        }
        hits
    }

    /// Whether any limit was reached.
    pub fn any(&self) -> bool {
        self.forks_refused > 0 || self.oom_kills > 0
    }

    /// One line for operators (`None`: no limit was reached).
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.oom_kills > 0 {
            parts.push(format!(
                "memory limit {} reached: the kernel killed {} of the launch's processes \
                 (raise [sandbox] memory_max to allow more)",
                self.memory_max.map_or_else(|| "?".to_owned(), size),
                self.oom_kills
            ));
        }
        if self.forks_refused > 0 {
            parts.push(format!(
                "process limit {} reached: the kernel refused {} new processes or threads \
                 (raise [sandbox] pids_max to allow more)",
                self.pids_max
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                self.forks_refused
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// `NAME N` in a flat-keyed cgroup file.
fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// `1536 MiB`, `4 GiB`, bytes otherwise.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{b} bytes"),
    }
}

fn dir_name(marker: &str) -> String {
    format!("codemantle-{}", marker.get(..16).unwrap_or(marker))
}

/// Creates the launch's cgroups with `pids_max` and `memory_max`; `None` where cgroups cannot
/// be used here (the caller falls back to rlimits), with the reason.
pub fn create(
    marker: &str,
    pids_max: u64,
    memory_max: Option<u64>,
) -> Result<LaunchCgroups, String> {
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let name = dir_name(marker);
    let mut made = LaunchCgroups::default();
    let mut limits: Vec<(&str, &str, String)> = vec![("pids", "pids.max", pids_max.to_string())];
    if let Some(m) = memory_max {
        limits.push(("memory", "memory.limit_in_bytes", m.to_string()));
    }
    for (controller, file, value) in limits {
        let Some(parent) = own_v1_dir(&proc_cgroup, controller) else {
            made.remove();
            return Err(format!(
                "no cgroup v1 `{controller}` hierarchy (cgroup v2 delegation is not used yet)"
            ));
        };
        let dir = parent.join(&name);
        if let Err(e) = std::fs::create_dir(&dir)
            && e.kind() != std::io::ErrorKind::AlreadyExists
        {
            made.remove();
            return Err(format!("cannot create {}: {e}", dir.display()));
        }
        made.dirs.push(dir.clone());
        if let Err(e) = std::fs::write(dir.join(file), &value) {
            made.remove();
            return Err(format!("cannot set {}/{file}: {e}", dir.display()));
        }
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_dir_is_read_from_proc_self_cgroup() {
        let text = "8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            own_v1_dir(text, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            own_v1_dir(text, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/"))
        );
        assert_eq!(
            own_v1_dir(text, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu/x"))
        );
        assert_eq!(own_v1_dir("0::/user.slice\n", "pids"), None);
    }

    #[test]
    fn limit_hits_are_read_from_the_kernels_counters_and_told_with_the_fix() {
        assert_eq!(counter("max 7\n", "max"), Some(7));
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(oom, "oom_kill"), Some(2));
        assert_eq!(counter(oom, "oom_kill_disable"), Some(0));
        assert_eq!(counter("", "max"), None);
        assert_eq!(LimitHits::default().describe(), None);
        let hits = LimitHits {
            pids_max: Some(96),
            forks_refused: 3,
            memory_max: Some(1536 << 20),
            oom_kills: 1,
        };
        let text = hits.describe().unwrap();
        assert!(text.contains("memory limit 1536 MiB reached"), "{text}");
        assert!(text.contains("memory_max"), "{text}");
        assert!(text.contains("process limit 96 reached"), "{text}");
        assert_eq!(size(4 << 30), "4 GiB");
    }
}
