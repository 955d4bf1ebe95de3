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
}
