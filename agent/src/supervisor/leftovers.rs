//! Making sure tool processes an OpenCode started do not outlive it (Linux `/proc`).
//!
//! OpenCode's bash tool starts commands with `setsid`, in their own session and process group,
//! so signalling OpenCode's process group misses them, and when OpenCode dies they are
//! re-parented. The fallback used here, without cgroups:
//! 1. the agent makes itself a child subreaper at start, so orphans of its descendants are
//!    re-parented to the agent instead of to PID 1;
//! 2. every launch carries a marker variable ([`MARKER_ENV`]) that tool processes inherit;
//! 3. before OpenCode is signalled, all its descendants are snapshotted by walking the
//!    `/proc/*/stat` parent chains (pid plus start time, so a reused pid is never hit);
//! 4. after OpenCode exited, every snapshotted process still alive and every process carrying
//!    the launch's marker (which includes everything re-parented to the agent from that launch)
//!    gets SIGKILL, in rounds until none is left; the agent then reaps the ones re-parented to
//!    it.
//!
//! Re-parented processes *without* the marker are deliberately left alone: the agent has other
//! legitimate children (the `--version` probe; a test binary's `git`), and a child's parent pid
//! alone cannot tell those from orphans.
//!
//! A process that both scrubs its environment and starts after the snapshot (or daemonises
//! under a crashed OpenCode with no subreaper) escapes this. A cgroup per launch (systemd
//! `KillMode=control-group`, or a delegated cgroup v2 subtree with `cgroup.kill`) would close
//! that hole and is the better design where the agent runs under systemd.

use crate::opencode::launch::MARKER_ENV;
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeSet;

/// One process, identified robustly against pid reuse.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ProcId {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Parent pid.
    pub ppid: i32,
    /// Process group id (kept by a zombie, unlike its environment).
    pub pgrp: i32,
    /// Start time (ticks since boot).
    pub start_time: u64,
    /// State letter (`R`, `S`, `Z`…).
    pub state: char,
}

/// Parses `/proc/<pid>/stat` (the command name may contain spaces and parentheses, so fields
/// are counted from the last `)`).
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn read_stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process now: pid and stat.
fn all_processes() -> Vec<(i32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// The value of `name` in `/proc/<pid>/environ`, if readable and present.
fn env_of(pid: i32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(prefix.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// The launch marker of a process, if any.
fn marker_of(pid: i32) -> Option<String> {
    env_of(pid, MARKER_ENV)
}

/// All descendants of `root` (not `root` itself), by parent chains.
pub fn descendants(root: i32) -> Vec<ProcId> {
    let procs = all_processes();
    let mut found: BTreeSet<i32> = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, st) in &procs {
            if st.ppid == parent && *pid != root && found.insert(*pid) {
                frontier.push(*pid);
            }
        }
    }
    procs
        .iter()
        .filter(|(pid, _)| found.contains(pid))
        .map(|(pid, st)| ProcId {
            pid: *pid,
            start_time: st.start_time,
        })
        .collect()
}

/// Pids of live OpenCode processes this agent spawned (never signalled or reaped here: tokio
/// owns them).
static KNOWN_CHILDREN: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// Orphans identified as OpenCode leftovers and re-parented to the agent: only these are ever
/// reaped with `waitpid`, so the agent never steals another child's exit status.
static ADOPTED: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// Launch markers of OpenCode processes being re-adopted: their tool processes are not strays.
static SPARED_MARKERS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Spares the tool processes of a re-adopted launch from [`stale_launches`].
pub fn spare_marker(marker: &str) {
    locked(&SPARED_MARKERS).insert(marker.to_owned());
}

/// Records a spawned OpenCode pid.
pub fn register_child(pid: i32) {
    locked(&KNOWN_CHILDREN).insert(pid);
}

/// Forgets an OpenCode pid after tokio reaped it.
pub fn unregister_child(pid: i32) {
    locked(&KNOWN_CHILDREN).remove(&pid);
}

fn my_pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// Makes the agent a child subreaper (Linux), so orphaned tool processes come to it.
///
/// # Errors
/// The `prctl` failed.
pub fn become_subreaper() -> std::io::Result<()> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(Into::into)
}

/// The processes to kill for the launch with `marker`: snapshotted ones still alive (same
/// start time) and ones carrying the marker. The agent itself and the OpenCode processes it
/// still runs are never included.
pub fn leftovers(marker: &str, snapshot: &[ProcId]) -> Vec<ProcId> {
    let me = my_pid();
    let known = locked(&KNOWN_CHILDREN).clone();
    let mut out = Vec::new();
    for (pid, st) in all_processes() {
        if pid == me || known.contains(&pid) || st.state == 'Z' {
            continue;
        }
        let id = ProcId {
            pid,
            start_time: st.start_time,
        };
        if snapshot.contains(&id) || marker_of(pid).as_deref() == Some(marker) {
            out.push(id);
        }
    }
    out
}

/// Processes of launches by an earlier run of the agent with the same state folder (it was
/// killed without stopping its OpenCode): they carry a launch marker and an `OPENCODE_CONFIG`
/// under `<state_dir>/opencode/`. Killed at start, since nothing supervises them any more.
pub fn stale_launches(state_dir: &std::path::Path) -> Vec<ProcId> {
    let me = my_pid();
    let known = locked(&KNOWN_CHILDREN).clone();
    let spared = locked(&SPARED_MARKERS).clone();
    let ours = state_dir.join("opencode");
    all_processes()
        .into_iter()
        .filter(|(pid, st)| *pid != me && !known.contains(pid) && st.state != 'Z')
        .filter(|(pid, _)| marker_of(*pid).is_some_and(|m| !spared.contains(&m)))
        .filter(|(pid, _)| {
            env_of(*pid, "OPENCODE_CONFIG")
                .is_some_and(|c| std::path::Path::new(&c).starts_with(&ours))
        })
        .map(|(pid, st)| ProcId {
            pid,
            start_time: st.start_time,
        })
        .collect()
}

/// SIGKILLs `targets` whose start time still matches; returns how many were signalled.
pub fn kill(targets: &[ProcId]) -> usize {
    let me = my_pid();
    let mut n = 0;
    for t in targets {
        let Some(st) = read_stat(t.pid) else { continue };
        if st.start_time != t.start_time {
            continue;
        }
        if st.ppid == me {
            locked(&ADOPTED).insert(t.pid);
        }
        if let Some(pid) = rustix::process::Pid::from_raw(t.pid)
            && rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok()
        {
            n += 1;
        }
    }
    n
}

/// Reaps adopted leftovers that have exited; also adopts live marked orphans for later.
/// Returns how many were reaped.
pub fn reap_adopted() -> usize {
    let me = my_pid();
    let known = locked(&KNOWN_CHILDREN).clone();
    for (pid, st) in all_processes() {
        if st.ppid == me && !known.contains(&pid) && st.state != 'Z' && marker_of(pid).is_some() {
            locked(&ADOPTED).insert(pid);
        }
    }
    let adopted: Vec<i32> = locked(&ADOPTED).iter().copied().collect();
    let mut reaped = 0;
    for pid in adopted {
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
            Ok(Some(_)) => {
                locked(&ADOPTED).remove(&pid);
                reaped += 1;
            }
            Ok(None) => {}
            // Not our child (any more): nothing to reap.
            Err(_) => {
                locked(&ADOPTED).remove(&pid);
            }
        }
    }
    reaped
}

/// Reaps the zombies a launch left with the agent, and counts the ones still waiting for
/// another parent (which come to the agent, a subreaper, once that parent is gone) or for
/// their other threads to exit.
///
/// A zombie's environment is gone, so the marker cannot name it; it belongs to the launch
/// when it is in `snapshot` (same start time) or in the launch's process group `group` (the
/// keeper's group: OpenCode and whatever it started without `setsid`). OpenCode itself ends
/// up here on every stop: the keeper dies of the group's SIGTERM first, and OpenCode is
/// re-parented to the agent. Returns `(reaped, waiting)`.
pub fn reap_launch_zombies(group: i32, snapshot: &[ProcId]) -> (usize, usize) {
    let me = my_pid();
    let known = locked(&KNOWN_CHILDREN).clone();
    let (mut reaped, mut waiting) = (0, 0);
    for (pid, st) in all_processes() {
        let id = ProcId {
            pid,
            start_time: st.start_time,
        };
        if st.state != 'Z' || known.contains(&pid) || !(st.pgrp == group || snapshot.contains(&id))
        {
            continue;
        }
        if st.ppid != me {
            waiting += 1;
            continue;
        }
        let Some(p) = rustix::process::Pid::from_raw(pid) else {
            continue;
        };
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
            Ok(Some(_)) => {
                locked(&ADOPTED).remove(&pid);
                reaped += 1;
            }
            // Not reapable yet: a dead leader whose other threads are still exiting (a large
            // OpenCode takes a while). Waited for by the caller; the periodic reaper is the
            // fallback.
            Ok(None) => {
                locked(&ADOPTED).insert(pid);
                waiting += 1;
            }
            Err(_) => {}
        }
    }
    (reaped, waiting)
}

/// A process's start time (ticks since boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|st| st.start_time)
}

/// Whether a process with this identity is still alive (and not a zombie).
pub fn is_alive(id: ProcId) -> bool {
    read_stat(id.pid).is_some_and(|st| st.start_time == id.start_time && st.state != 'Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        let line = "1234 (tricky) name)) S 99 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5555 1000 10 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ppid: 99,
                pgrp: 1234,
                start_time: 5555,
                state: 'S'
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn finds_own_descendants() {
        let me = my_pid();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let d = descendants(me);
        let found = d.iter().find(|p| p.pid == pid).copied().unwrap();
        assert!(is_alive(found));
        assert_eq!(kill(&[found]), 1);
        child.wait().unwrap();
        assert!(!is_alive(found));
        // A stale identity (wrong start time) is never signalled.
        assert_eq!(
            kill(&[ProcId {
                pid: me,
                start_time: 0
            }]),
            0
        );
        // Our own process has no marker, so nothing is a leftover of a made-up launch.
        assert!(leftovers("no-such-launch", &[]).iter().all(|p| p.pid != me));
    }
}
