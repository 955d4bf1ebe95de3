//! The kernel side: Landlock (file and TCP rules, signal and abstract-socket scoping), resource
//! limits and capabilities, applied by the launcher to itself just before it `exec`s OpenCode,
//! so OpenCode and every process it starts inherit them and cannot undo them.

use super::config::Mode;
use super::plan::SandboxPlan;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use std::path::{Path, PathBuf};

/// The ABI the rules are written for (file rights up to `ioctl_dev`, TCP, scoping).
const TARGET_ABI: ABI = ABI::V6;

/// Why a sandbox could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel offers no (or too old a) Landlock while the mode is `enforce`.
    #[error(
        "this kernel offers Landlock ABI {abi} (needs 4 or later for file and TCP rules); \
         [sandbox] mode = \"enforce\" refuses to start OpenCode without it. Use a kernel with \
         Landlock enabled (lsm=…,landlock), or set mode = \"warn\" or \"off\" in agent.toml \
         to run OpenCode without the kernel sandbox"
    )]
    NoLandlock {
        /// The ABI found.
        abi: u8,
    },
    /// Landlock refused the ruleset.
    #[error("Landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    /// The seccomp filter could not be installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A resource limit could not be set.
    #[error("resource limit {what}: {source}")]
    Limit {
        /// Which.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The Landlock ABI this kernel offers (0: none), probed by creating (not applying) rulesets.
pub fn landlock_abi() -> u8 {
    static ABI_FOUND: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *ABI_FOUND.get_or_init(|| {
        for (n, abi) in [
            (7, ABI::V7),
            (6, ABI::V6),
            (5, ABI::V5),
            (4, ABI::V4),
            (3, ABI::V3),
            (2, ABI::V2),
            (1, ABI::V1),
        ] {
            let created = Ruleset::default()
                .set_compatibility(CompatLevel::HardRequirement)
                .handle_access(AccessFs::from_all(abi))
                .and_then(|r| r.create());
            if created.is_ok() {
                return n;
            }
        }
        0
    })
}

/// The ABI the plan sees: the kernel's, or lower where the config pretends so (tests of the
/// refusal path). Never higher: a config cannot claim a sandbox the kernel does not give.
pub fn effective_abi(plan_pretend: Option<u8>) -> u8 {
    let real = landlock_abi();
    plan_pretend.map_or(real, |p| p.min(real))
}

/// What applying did, for the launcher's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Landlock enforced fully, partly, or not at all.
    pub landlock: &'static str,
    /// Capabilities dropped from the bounding set.
    pub caps_dropped: usize,
}

/// Applies `plan` to the calling (single-threaded) process. Call right before `exec`.
///
/// # Errors
/// In `enforce` mode, anything that leaves the rules unenforced.
pub fn apply(plan: &SandboxPlan) -> Result<Applied, SandboxError> {
    match plan.mode {
        Mode::Off | Mode::Warn => {
            // No kernel rules; core dumps stay off all the same (they can hold secrets).
            limit(rustix::process::Resource::Core, 0, "core")?;
            return Ok(Applied {
                landlock: "not applied",
                caps_dropped: 0,
            });
        }
        Mode::Enforce => {}
    }
    let abi = effective_abi(plan.pretend_abi);
    if abi < 4 {
        return Err(SandboxError::NoLandlock { abi });
    }
    limit(rustix::process::Resource::Core, 0, "core")?;
    limit(rustix::process::Resource::Nofile, plan.nofile, "nofile")?;
    if plan.cgroups.dirs.is_empty() {
        // No pids cgroup: RLIMIT_NPROC counts every task of the user, so allow the launch's
        // share on top of what the user runs now.
        limit(
            rustix::process::Resource::Nproc,
            user_tasks().saturating_add(plan.pids_max),
            "nproc",
        )?;
    } else {
        plan.cgroups.join().map_err(|source| SandboxError::Limit {
            what: "cgroup",
            source,
        })?;
    }
    let caps_dropped = drop_capabilities();
    let status = landlock_restrict(plan)?;
    if status == RulesetStatus::NotEnforced {
        return Err(SandboxError::NoLandlock { abi });
    }
    if status != RulesetStatus::FullyEnforced {
        tracing::warn!(?status, "Landlock enforced the sandbox only partly");
    }
    super::seccomp::deny_unix_sockets().map_err(SandboxError::Seccomp)?;
    Ok(Applied {
        landlock: match status {
            RulesetStatus::FullyEnforced => "fully enforced",
            RulesetStatus::PartiallyEnforced => "partly enforced",
            RulesetStatus::NotEnforced => "not enforced",
        },
        caps_dropped,
    })
}

fn limit(
    resource: rustix::process::Resource,
    value: u64,
    what: &'static str,
) -> Result<(), SandboxError> {
    // Never raise a hard limit the host already set lower.
    let current = rustix::process::getrlimit(resource);
    let value = current.maximum.map_or(value, |max| value.min(max));
    rustix::process::setrlimit(
        resource,
        rustix::process::Rlimit {
            current: Some(value),
            maximum: Some(value),
        },
    )
    .map_err(|e| SandboxError::Limit {
        what,
        source: e.into(),
    })
}

/// Tasks (processes and threads) the real user runs now: `RLIMIT_NPROC` counts all of them, so
/// the launch's allowance is added on top.
fn user_tasks() -> u64 {
    let uid = rustix::process::getuid().as_raw();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse::<u32>().ok())
                == Some(uid)
        })
        .map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum()
}

/// Drops every capability from the bounding set, so a launch under a root agent gains none at
/// `exec` (no `CAP_DAC_OVERRIDE` past file modes, no `CAP_SYS_RESOURCE` past the limits).
fn drop_capabilities() -> usize {
    use rustix::thread::{CapabilitySet, remove_capability_from_bounding_set};
    CapabilitySet::all()
        .iter()
        .filter(|c| remove_capability_from_bounding_set(*c).is_ok())
        .count()
}

/// What a rule beneath `/etc` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EtcRule {
    /// Listing the folder only (a hidden entry is somewhere below it).
    List,
    /// Reading everything beneath.
    Read,
}

/// The rules that make `etc` readable except the `hide` entries (relative paths, any depth):
/// a folder holding a hidden entry gets `List`, and its other entries are walked in turn.
fn etc_rules(etc: &Path, hide: &[String]) -> Vec<(PathBuf, EtcRule)> {
    let hide: Vec<&Path> = hide.iter().map(Path::new).collect();
    let targets: Vec<PathBuf> = hide
        .iter()
        .filter_map(|h| std::fs::canonicalize(etc.join(h)).ok())
        .collect();
    let mut rules = Vec::new();
    walk_etc(etc, Path::new(""), (&hide, &targets), &mut rules);
    rules
}

/// The rules for the folder `etc/rel`, which holds a hidden entry somewhere below it; `hide`
/// holds the hidden entries and where they lead.
fn walk_etc(
    etc: &Path,
    rel: &Path,
    hide: (&[&Path], &[PathBuf]),
    rules: &mut Vec<(PathBuf, EtcRule)>,
) {
    let (hide, targets) = hide;
    let dir = etc.join(rel);
    rules.push((dir.clone(), EtcRule::List));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let child = rel.join(e.file_name());
        if hide.iter().any(|h| *h == child) {
            continue;
        }
        // A hidden entry deeper below this one (e.g. pki/tls/private): list this folder and
        // walk it (never through a link, which could lead back above).
        let holds_hidden = hide.iter().any(|h| h.starts_with(&child) && *h != child);
        if holds_hidden {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk_etc(etc, &child, (hide, targets), rules);
            }
            // A link in the way of a hidden entry stays out altogether.
            continue;
        }
        // A link to a hidden entry (Landlock follows it) stays hidden too.
        let leads_to_hidden = std::fs::canonicalize(e.path())
            .is_ok_and(|to| targets.iter().any(|t| to.starts_with(t)));
        if !leads_to_hidden {
            rules.push((e.path(), EtcRule::Read));
        }
    }
}

fn landlock_restrict(plan: &SandboxPlan) -> Result<RulesetStatus, SandboxError> {
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let device = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    let mut ruleset = Ruleset::default()
        .handle_access(all)?
        .handle_access(AccessNet::from_all(TARGET_ABI))?
        .scope(Scope::from_all(TARGET_ABI))?
        .create()?;
    // A listed path that does not exist on this host is skipped, not an error.
    let beneath = |ruleset: landlock::RulesetCreated,
                   path: &Path,
                   access: landlock::BitFlags<AccessFs>|
     -> Result<landlock::RulesetCreated, SandboxError> {
        match PathFd::new(path) {
            Ok(fd) => Ok(ruleset.add_rule(PathBeneath::new(fd, access))?),
            Err(_) => Ok(ruleset),
        }
    };
    for p in &plan.read {
        ruleset = beneath(ruleset, p, read)?;
    }
    for p in &plan.write {
        ruleset = beneath(ruleset, p, all)?;
    }
    for p in &plan.devices {
        let access = if p.is_dir() { all } else { device };
        ruleset = beneath(ruleset, p, access)?;
    }
    // `/etc` entry by entry, leaving out the hidden ones (Landlock has no "deny" rule).
    for (path, rule) in etc_rules(Path::new("/etc"), &plan.hide_etc) {
        let access = match rule {
            EtcRule::List => AccessFs::ReadDir.into(),
            EtcRule::Read => read,
        };
        ruleset = beneath(ruleset, &path, access)?;
    }
    for port in &plan.connect_ports {
        ruleset = ruleset.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
    }
    for port in &plan.bind_ports {
        ruleset = ruleset.add_rule(NetPort::new(*port, AccessNet::BindTcp))?;
    }
    Ok(ruleset.restrict_self()?.ruleset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_kernel_reports_an_abi() {
        // Only a report: CI's kernel offers 7; the number is what doctor prints.
        let abi = landlock_abi();
        assert!(abi <= 10);
        assert_eq!(effective_abi(Some(0)), 0);
    }

    #[test]
    fn enforce_without_landlock_is_refused_before_anything_is_applied() {
        let plan = SandboxPlan {
            mode: Mode::Enforce,
            pretend_abi: Some(0),
            ..test_plan()
        };
        let e = apply(&plan).unwrap_err();
        assert!(e.to_string().contains("mode = \"warn\" or \"off\""), "{e}");
    }

    #[test]
    fn hidden_etc_entries_stay_hidden_at_any_depth() {
        let tmp = tempfile::tempdir().unwrap();
        let etc = tmp.path();
        for d in [
            "pki/tls/private",
            "pki/tls/certs",
            "pki/ca",
            "ssl/private",
            "ssl/certs",
        ] {
            std::fs::create_dir_all(etc.join(d)).unwrap();
        }
        std::fs::write(etc.join("pki/tls/private/host.key"), "k").unwrap();
        std::fs::write(etc.join("shadow"), "s").unwrap();
        std::fs::write(etc.join("hosts"), "h").unwrap();
        std::os::unix::fs::symlink(etc.join("pki/tls/private"), etc.join("keys")).unwrap();
        std::os::unix::fs::symlink(etc.join("shadow"), etc.join("shadow.link")).unwrap();
        let hide: Vec<String> = ["shadow", "ssl/private", "pki/tls/private"]
            .map(str::to_owned)
            .to_vec();
        let rules = etc_rules(etc, &hide);
        let readable = |p: &Path| {
            rules
                .iter()
                .any(|(r, rule)| *rule == EtcRule::Read && p.starts_with(r))
        };
        for hidden in [
            "shadow",
            "ssl/private",
            "pki/tls/private/host.key",
            "keys",
            "shadow.link",
        ] {
            assert!(
                !readable(&etc.join(hidden)),
                "{hidden} is readable: {rules:?}"
            );
        }
        for shown in ["hosts", "ssl/certs", "pki/tls/certs", "pki/ca"] {
            assert!(readable(&etc.join(shown)), "{shown} is hidden: {rules:?}");
        }
        assert!(rules.contains(&(etc.join("pki/tls"), EtcRule::List)));
    }

    fn test_plan() -> SandboxPlan {
        SandboxPlan::new(
            &super::super::config::SandboxConfig::default(),
            super::super::plan::LaunchFacts {
                workspace: Path::new("/nonexistent/ws"),
                private: Path::new("/nonexistent/private"),
                private_writable: &[],
                program: Path::new("/nonexistent/bin/opencode"),
                port: 4096,
                provider_ports: &[],
            },
        )
    }
}
