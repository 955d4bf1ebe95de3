//! One `cm-agent run` per state folder. Two agents on the same state folder would re-adopt
//! each other's OpenCode, replace each other on the relay, and the one that exits would stop an
//! OpenCode the other still serves. `run` therefore takes an exclusive `flock` on
//! `<state_dir>/run.lock` (which also holds its pid, for the refusal message) and keeps it for
//! its whole life. The kernel drops the lock when the process dies, however it dies, so a
//! crashed agent never blocks the next one. The file is opened close-on-exec, so OpenCode and
//! the keeper never inherit the lock.

use rustix::fs::{FlockOperation, flock};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name in the state folder (`lock` is `cm-agent lock`'s file).
pub const FILE_NAME: &str = "run.lock";

/// Held while the agent runs; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another agent holds it.
    #[error(
        "another cm-agent{} is already running with the state folder {}; stop it first, or give this one its own --state-dir and config",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        dir.display()
    )]
    Held {
        /// The running agent's pid, as it recorded it.
        pid: Option<u32>,
        /// The state folder.
        dir: PathBuf,
    },
    /// The file could not be created, locked or written.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Takes the lock for `state_dir` (creating the folder, 0700) or says who holds it.
///
/// # Errors
/// [`RunLockError::Held`] when another agent runs on this folder; I/O failures otherwise.
pub fn acquire(state_dir: &Path) -> Result<RunLock, RunLockError> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let path = state_dir.join(FILE_NAME);
    let io = |source| RunLockError::Io {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(RunLockError::Held {
                pid: text.trim().parse().ok(),
                dir: state_dir.to_owned(),
            });
        }
        Err(e) => return Err(io(e.into())),
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_names_the_holder_until_it_is_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let first = acquire(&dir).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts too.
        match acquire(&dir) {
            Err(RunLockError::Held { pid, dir: d }) => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(d, dir);
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        let again = acquire(&dir).unwrap();
        drop(again);
    }
}
