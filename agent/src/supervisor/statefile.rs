//! The agent's state file (`<state dir>/agent-state.json`, mode 0600): which OpenCode children
//! are running (pid, process start time, port, password, launch marker, workspace, start time,
//! lease) and, per workspace, the event sequence numbers already handed out. A restarted agent
//! reads it to re-adopt children that are still alive and still answer with their password,
//! and to keep numbering events above every number an earlier run used.
//!
//! The record and its rules are pure ([`StateRecord`]); [`Registry`] is the thin shell that
//! keeps the current record in memory and rewrites the file atomically (write a temporary file
//! 0600, fsync, rename) on every change.
//!
//! The password is kept in this file rather than the secret store: it is a per-launch secret
//! for a server bound to 127.0.0.1, readable by the agent's user anyway (OpenCode's own
//! environment carries it), and the file has the same 0600 protection as the secrets fallback.

use super::leftovers::{self, ProcId};
use crate::hub::{EventHub, SEQ_BLOCK};
pub use crate::state_file_name::FILE_NAME;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A running OpenCode child as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// Process id (the process group leader the agent spawned).
    pub pid: i32,
    /// Its start time in clock ticks since boot, so a reused pid is never adopted.
    pub start_time: u64,
    /// OpenCode's port on 127.0.0.1.
    pub port: u16,
    /// OpenCode's HTTP Basic password.
    pub password: String,
    /// The launch marker (`CM_AGENT_LAUNCH`) its tool processes carry.
    pub marker: String,
    /// When it was started, unix ms.
    pub started_ms: u64,
    /// The launch lease, when one is bound (opaque to this module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<serde_json::Value>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    /// Format version (1).
    #[serde(default)]
    pub version: u32,
    /// The agent that wrote it (a keeper whose own agent died stays while this one lives and
    /// lists it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<ProcId>,
    /// Running children by workspace.
    #[serde(default)]
    pub children: BTreeMap<String, ChildRecord>,
    /// Per workspace, every event number up to this one may have been used.
    #[serde(default)]
    pub seq_reserved: BTreeMap<String, u64>,
}

impl StateRecord {
    /// Parses the file; a damaged file counts as empty (its children are then stopped as
    /// strays, and numbering moves on from the event numbers OpenCode cannot know anyway).
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// The first number a new run may use for `workspace`, and the reservation to record
    /// before using it.
    pub fn resume_seq(&self, workspace: &str) -> (u64, u64) {
        let used = self.seq_reserved.get(workspace).copied().unwrap_or(0);
        (used + 1, used + SEQ_BLOCK)
    }
}

/// The in-memory record plus its file.
#[derive(Debug)]
pub struct Registry {
    path: PathBuf,
    record: Mutex<StateRecord>,
    /// Children of an earlier run that are alive, by workspace, waiting for their supervisor.
    candidates: Mutex<BTreeMap<String, ChildRecord>>,
}

impl Registry {
    /// Reads `<state_dir>/agent-state.json` (missing = empty). Children of a configured
    /// workspace whose pid still runs with the recorded start time become adoption candidates,
    /// and are registered as known so the start-up sweep of strays spares them; the others are
    /// dropped from the record (and, if alive, swept as strays).
    pub fn load(state_dir: &Path, workspaces: &[&str]) -> Arc<Self> {
        let path = state_dir.join(FILE_NAME);
        let record = match std::fs::read_to_string(&path) {
            Ok(t) => StateRecord::parse(&t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateRecord::default(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the agent state file; not re-adopting OpenCode");
                StateRecord::default()
            }
        };
        let mut candidates = BTreeMap::new();
        for (ws, child) in &record.children {
            let id = ProcId {
                pid: child.pid,
                start_time: child.start_time,
            };
            if !workspaces.contains(&ws.as_str()) {
                tracing::info!(workspace = %ws, pid = child.pid, "OpenCode of an earlier run serves a workspace no longer configured; not re-adopting it");
            } else if leftovers::is_alive(id) {
                leftovers::register_child(child.pid);
                leftovers::spare_marker(&child.marker);
                candidates.insert(ws.clone(), child.clone());
            } else {
                tracing::info!(workspace = %ws, pid = child.pid, "OpenCode of an earlier run is gone");
            }
        }
        let mut record = record;
        record.version = 1;
        record.children.retain(|ws, _| candidates.contains_key(ws));
        let me = rustix::process::getpid().as_raw_nonzero().get();
        record.agent = leftovers::start_time(me).map(|start_time| ProcId {
            pid: me,
            start_time,
        });
        let registry = Self {
            path,
            record: Mutex::new(record),
            candidates: Mutex::new(candidates),
        };
        // At once: keepers of the candidates see a live agent that lists them.
        registry.write(&registry.lock());
        Arc::new(registry)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StateRecord> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The child of an earlier run to try re-adopting for `workspace` (once).
    pub fn take_candidate(&self, workspace: &str) -> Option<ChildRecord> {
        self.candidates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(workspace)
    }

    /// The running children now, by workspace.
    pub fn children(&self) -> BTreeMap<String, ChildRecord> {
        self.lock().children.clone()
    }

    /// Records (or, with `None`, forgets) `workspace`'s running child and rewrites the file.
    pub fn set_child(&self, workspace: &str, child: Option<ChildRecord>) {
        let mut r = self.lock();
        match child {
            Some(c) => r.children.insert(workspace.to_owned(), c),
            None => r.children.remove(workspace),
        };
        self.write(&r);
    }

    /// A hub for `workspace` that numbers events above every number an earlier run used,
    /// reserving them in blocks of [`SEQ_BLOCK`].
    pub fn hub(self: &Arc<Self>, workspace: &str) -> EventHub {
        let (first, reserved) = {
            let mut r = self.lock();
            let (first, reserved) = r.resume_seq(workspace);
            r.seq_reserved.insert(workspace.to_owned(), reserved);
            self.write(&r);
            (first, reserved)
        };
        let me = Arc::clone(self);
        let ws = workspace.to_owned();
        EventHub::numbered_from(
            first,
            reserved,
            Box::new(move |upto| {
                let mut r = me.lock();
                r.seq_reserved.insert(ws.clone(), upto);
                me.write(&r);
            }),
        )
    }

    /// Rewrites the file atomically, 0600. Failures are logged: the agent keeps working, it
    /// only loses the ability to re-adopt after a crash.
    fn write(&self, record: &StateRecord) {
        if let Err(e) = write_atomic(&self.path, record) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the agent state file");
        }
    }
}

fn write_atomic(path: &Path, record: &StateRecord) -> std::io::Result<()> {
    // The state directory holds the OpenCode passwords: owner-only when created here.
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    crate::private_file::write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn numbering_resumes_above_the_reservation() {
        let mut r = StateRecord::default();
        assert_eq!(r.resume_seq("w"), (1, SEQ_BLOCK));
        r.seq_reserved.insert("w".into(), 25_000);
        assert_eq!(r.resume_seq("w"), (25_001, 25_000 + SEQ_BLOCK));
        assert_eq!(StateRecord::parse("not json"), StateRecord::default());
    }

    #[test]
    fn only_live_children_of_configured_workspaces_are_candidates() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("300")
            .spawn()
            .unwrap();
        let pid = i32::try_from(sleeper.id()).unwrap();
        let child = |pid: i32, start_time: u64| ChildRecord {
            pid,
            start_time,
            port: 1,
            password: "p".into(),
            marker: "m".into(),
            started_ms: 0,
            lease: None,
        };
        let start = leftovers::start_time(pid).unwrap();
        let reg = Registry::load(tmp.path(), &["a", "b", "c"]);
        reg.set_child("a", Some(child(pid, start)));
        reg.set_child("b", Some(child(pid, start + 1))); // a reused pid
        reg.set_child("c", Some(child(pid, start)));
        let again = Registry::load(tmp.path(), &["a", "b"]);
        assert!(again.take_candidate("a").is_some());
        assert!(again.take_candidate("b").is_none(), "start time differs");
        assert!(again.take_candidate("c").is_none(), "not configured");
        let record =
            StateRecord::parse(&std::fs::read_to_string(tmp.path().join(FILE_NAME)).unwrap());
        assert_eq!(record.children.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(record.agent.is_some());
        leftovers::unregister_child(pid);
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }

    #[tokio::test]
    async fn the_file_is_private_and_a_new_run_numbers_above_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::load(tmp.path(), &["w"]);
        let hub = reg.hub("w");
        assert_eq!(hub.next_seq(), 1);
        reg.set_child(
            "w",
            Some(ChildRecord {
                pid: i32::MAX - 1,
                start_time: 1,
                port: 1,
                password: "p".into(),
                marker: "m".into(),
                started_ms: 0,
                lease: None,
            }),
        );
        let path = tmp.path().join(FILE_NAME);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        for _ in 0..3 {
            hub.publish(proto::event::Event::Resync { reason: "x".into() });
        }
        // A second run: the dead child is dropped, numbering starts above the reservation.
        let again = Registry::load(tmp.path(), &["w"]);
        assert!(again.take_candidate("w").is_none());
        assert_eq!(again.hub("w").next_seq(), SEQ_BLOCK + 1);
        let third = Registry::load(tmp.path(), &["w"]);
        assert_eq!(third.hub("w").next_seq(), 2 * SEQ_BLOCK + 1);
    }

    #[test]
    fn a_stale_world_readable_temp_file_does_not_leak_the_password() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let path = dir.join(FILE_NAME);
        write_atomic(&path, &StateRecord::default()).unwrap();
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            dir_mode & 0o777,
            0o700,
            "a new state directory is owner-only"
        );
        let stale = path.with_extension("json.tmp");
        std::fs::write(&stale, "left by a crash").unwrap();
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut record = StateRecord::default();
        record.seq_reserved.insert("w".into(), 7);
        write_atomic(&path, &record).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!stale.exists());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(StateRecord::parse(&text).seq_reserved.get("w"), Some(&7));
    }
}
