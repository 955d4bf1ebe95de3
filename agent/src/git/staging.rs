//! Where a clone is assembled: a new folder `<state>/clones/<random>` (the `clones` folder is
//! 0700), outside every folder OpenCode may write. Git clones, checks the submodules and runs
//! `git submodule update` there, so nothing running in the workspace can add a filter driver to
//! `.git/config`, plant a submodule's git directory (`.git/modules/<name>`, which `git
//! submodule update` would reuse) or change a recorded URL while git checks files out; the
//! finished folder is then moved into the workspace with one `renameat2(RENAME_NOREPLACE)` from
//! the `clones` folder's descriptor to the descriptor of the target's parent (opened through
//! folder containment), so the operator-visible folder appears only when complete.
//!
//! A rename cannot cross filesystems (or mounts): [`create`] first asks the kernel with a
//! rename of a name that does not exist (`EXDEV` before `ENOENT`) and answers `None` when the
//! staged folder could not be moved in; the clone is then made in place (see
//! [`super::setup`]). Staging folders left by an agent that stopped mid-clone are removed the
//! first time this process stages a clone in that state folder.

use super::GitError;
use rustix::fs::{Mode, OFlags, RenameFlags, mkdirat, openat, renameat_with};
use rustix::io::Errno;
use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// A clone's staging folder, open.
#[derive(Debug)]
pub struct Staging {
    /// The `clones` folder.
    clones: OwnedFd,
    /// The staging folder's name in it.
    name: String,
    /// Its path (the agent's own state folder: never written by OpenCode).
    pub path: PathBuf,
    /// The staging folder.
    pub fd: OwnedFd,
}

fn failed(message: String) -> GitError {
    GitError::Failed {
        what: "clone".into(),
        message,
    }
}

fn random_name() -> Result<String, GitError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)
        .map_err(|e| failed(format!("cannot name the clone's staging folder: {e}")))?;
    Ok(hex::encode(bytes))
}

fn open_dir(at: &OwnedFd, name: &str) -> rustix::io::Result<OwnedFd> {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Creates (0700) and opens the `clones` folder.
fn open_clones(clones: &Path) -> Result<OwnedFd, GitError> {
    let cannot = |e: &dyn std::fmt::Display| {
        failed(format!(
            "cannot prepare the agent's staging folder {}: {e}",
            clones.display()
        ))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(clones)
        .map_err(|e| cannot(&e))?;
    let fd = rustix::fs::open(
        clones,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| cannot(&e))?;
    // One made earlier with other rights is tightened: only the agent's user enters it.
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|e| cannot(&e))?;
    Ok(fd)
}

/// Removes what earlier runs left in `clones`, once per process and folder (one agent runs per
/// state folder, so nothing there belongs to a clone still running).
fn sweep_once(clones: &Path) {
    static SWEPT: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let swept = SWEPT.get_or_init(|| Mutex::new(HashSet::new()));
    let Ok(mut swept) = swept.lock() else { return };
    if !swept.insert(clones.to_owned()) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(clones) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let done = if e.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(err) = done {
            tracing::warn!(path = %p.display(), error = %err, "cannot remove a leftover clone staging folder");
        }
    }
}

/// A new, empty staging folder in `clones`, or `None` when a folder there could not be moved
/// to `leaf` in `target_parent` (another filesystem or mount). Blocking.
///
/// # Errors
/// The `clones` folder cannot be made or used.
pub fn create(
    clones: &Path,
    target_parent: &OwnedFd,
    leaf: &str,
) -> Result<Option<Staging>, GitError> {
    let fd = open_clones(clones)?;
    sweep_once(clones);
    // The kernel checks the mounts of both sides before it looks up the source.
    let probe = format!(".probe-{}", random_name()?);
    match renameat_with(&fd, &probe, target_parent, leaf, RenameFlags::NOREPLACE) {
        Err(Errno::XDEV) => return Ok(None),
        Err(Errno::NOENT) => {}
        Ok(()) => {
            return Err(failed(
                "the staging probe unexpectedly existed; try again".into(),
            ));
        }
        Err(e) => {
            return Err(failed(format!(
                "cannot check where the clone's folder can be made: {e}"
            )));
        }
    }
    let name = random_name()?;
    // A new name, made here (failing if it exists): never a folder something else prepared.
    mkdirat(&fd, &name, Mode::from_raw_mode(0o755)).map_err(|e| {
        failed(format!(
            "cannot create the clone's staging folder in {}: {e}",
            clones.display()
        ))
    })?;
    let folder = open_dir(&fd, &name)
        .map_err(|e| failed(format!("cannot open the clone's staging folder: {e}")))?;
    Ok(Some(Staging {
        path: clones.join(&name),
        clones: fd,
        name,
        fd: folder,
    }))
}

impl Staging {
    /// Moves the finished folder to `leaf` in `target_parent`; the name must still be free.
    /// `shown` names the target in messages.
    ///
    /// # Errors
    /// Something took the name meanwhile; the rename failed.
    pub fn move_to(
        &self,
        target_parent: &OwnedFd,
        leaf: &str,
        shown: &str,
    ) -> Result<(), GitError> {
        renameat_with(
            &self.clones,
            &self.name,
            target_parent,
            leaf,
            RenameFlags::NOREPLACE,
        )
        .map_err(|e| match e {
            Errno::EXIST | Errno::NOTEMPTY => failed(format!(
                "{shown:?} was created in the workspace while the clone ran; the clone was \
                 discarded (choose another folder)"
            )),
            e => failed(format!(
                "cannot move the finished clone into the workspace as {shown:?}: {e}; the clone \
                 was discarded"
            )),
        })
    }

    /// Removes the staging folder (on the blocking pool).
    pub async fn remove(self) {
        let path = self.path.clone();
        let done = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await;
        if !matches!(done, Ok(Ok(()))) {
            tracing::warn!(path = %self.path.display(), "could not remove a clone's staging folder");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode_of(p: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(p)?.permissions().mode() & 0o7777)
    }

    fn dir_fd(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn a_staging_folder_is_new_and_empty_and_leftovers_with_modules_are_never_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let clones = tmp.path().join("state/clones");
        // What an earlier run left: a staging folder with a submodule's git directory whose
        // config names a smudge filter.
        let old = clones.join("0123abcd");
        std::fs::create_dir_all(old.join(".git/modules/sub")).unwrap();
        std::fs::write(
            old.join(".git/modules/sub/config"),
            "[filter \"x\"]\n\tsmudge = sh -c 'touch pwned'\n",
        )
        .unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let s = create(&clones, &dir_fd(&ws), "c").unwrap().unwrap();
        assert!(s.path.starts_with(&clones));
        assert_eq!(std::fs::read_dir(&s.path).unwrap().count(), 0);
        assert!(!old.exists(), "the leftover was not removed");
        assert_eq!(mode_of(&clones).unwrap(), 0o700);
        // A second staging folder beside the first: a different, empty one.
        let t = create(&clones, &dir_fd(&ws), "d").unwrap().unwrap();
        assert_ne!(s.path, t.path);
        assert!(s.path.is_dir(), "a running clone's folder was swept");
        // Moved in under a free name only.
        std::fs::write(s.path.join("f"), "x").unwrap();
        s.move_to(&dir_fd(&ws), "c", "c").unwrap();
        assert_eq!(std::fs::read_to_string(ws.join("c/f")).unwrap(), "x");
        let e = t.move_to(&dir_fd(&ws), "c", "c").unwrap_err();
        assert!(e.to_string().contains("while the clone ran"), "{e}");
        assert!(t.path.is_dir());
    }
}
