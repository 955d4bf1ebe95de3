//! The file in which the running agent notes which transport each link is connected over
//! (`links.json`, written by `link`), read by `cm-agent status` (which reads files, never asks
//! the running agent).

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name in the state folder.
pub const LINKS_FILE_NAME: &str = "links.json";

/// One connected link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkNow {
    /// The relay address (its QUIC address).
    pub relay: String,
    /// `QUIC`, `TCP` or `TCP via proxy`.
    pub transport: String,
    /// Since when (ms since the Unix epoch).
    pub since_ms: u64,
    /// The agent process that wrote it (absent in files of older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

/// Whether `pid` is a running `cm-agent` (a process killed with `kill -9` leaves its file).
fn is_running_agent(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end() == "cm-agent")
}

/// The file's links as written, whether their writer still runs or not (empty without a
/// readable file).
pub fn read_as_written(state_dir: &Path) -> Vec<LinkNow> {
    std::fs::read_to_string(state_dir.join(LINKS_FILE_NAME))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The connected links as the running agent last wrote them (empty when it is not running or
/// none is connected; the links of an agent that died without clearing its file are dropped).
pub fn read(state_dir: &Path) -> Vec<LinkNow> {
    read_as_written(state_dir)
        .into_iter()
        .filter(|l| l.pid.is_none_or(is_running_agent))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, pid: Option<u32>) {
        let links = vec![LinkNow {
            relay: "192.0.2.1:7443".into(),
            transport: "QUIC".into(),
            since_ms: 1,
            pid,
        }];
        std::fs::write(
            dir.join(LINKS_FILE_NAME),
            serde_json::to_vec(&links).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn links_of_an_agent_that_is_gone_are_not_shown() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that has exited: its pid is free (or reused by something not cm-agent).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        write(tmp.path(), Some(gone));
        assert!(read(tmp.path()).is_empty());
        // This test process is not cm-agent either.
        write(tmp.path(), Some(std::process::id()));
        assert!(read(tmp.path()).is_empty());
        // A file without pid (an older agent) is shown as it is.
        write(tmp.path(), None);
        assert_eq!(read(tmp.path()).len(), 1);
    }
}
