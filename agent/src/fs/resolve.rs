//! Opening a validated [`RelPath`] beneath a workspace root without ever following a symbolic
//! link, so a link can neither point out of the root nor be swapped in between a check and a use:
//! every operation afterwards acts on the directory fd this returns (`mkdirat`, `renameat`,
//! `unlinkat`, `getdents`), never on a path string again.
//!
//! On Linux 5.6+ one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`
//! does it. Where `openat2` is missing (`ENOSYS`: old kernels, some sandboxes) the fallback walks
//! the names one by one with `openat(O_NOFOLLOW | O_DIRECTORY)` from the root fd; since a
//! [`RelPath`] has no `..`, `.` or `/` in a name, each step can only go one level down into a
//! real directory. When `openat2` refuses, the walk runs too, to name the component at fault.

use super::FsError;
use super::path::RelPath;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `openat2` answered `ENOSYS`; later calls go straight to the walk.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// How to resolve (the fallback is selectable so tests can exercise it on any kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `openat2` when the kernel has it, else the walk.
    Auto,
    /// Always the component-wise walk.
    Walk,
}

/// Flags for opening a directory to work in: read-only (for listing), never following a final
/// link, close-on-exec, and non-blocking (a FIFO in the way must fail, not wait for a writer).
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK
}

/// Opens a workspace root (a trusted path from the agent's configuration).
///
/// # Errors
/// [`FsError::Root`] when it cannot be opened as a directory.
pub fn open_root(root: &Path) -> Result<OwnedFd, FsError> {
    rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| FsError::Root(std::io::Error::from(e)))
}

/// Opens the directory at `path` beneath `root`.
///
/// # Errors
/// A symbolic link, a non-directory or a missing name on the way, named by its component.
pub fn open_dir(root: &OwnedFd, path: &RelPath, strategy: Strategy) -> Result<OwnedFd, FsError> {
    if path.is_root() {
        return rustix::fs::openat(root, ".", dir_flags(), Mode::empty())
            .map_err(|e| FsError::io("open", "", e));
    }
    if strategy == Strategy::Auto && !NO_OPENAT2.load(Ordering::Relaxed) {
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(root, path.to_string(), dir_flags(), Mode::empty(), resolve) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOSYS) => {
                tracing::info!("openat2 is not available; resolving paths component by component");
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            Err(Errno::AGAIN | Errno::INTR) => {
                // RESOLVE_BENEATH answers EAGAIN when a rename raced the lookup; the walk is
                // as safe and does not need a retry loop.
            }
            Err(e) => {
                // Diagnose with the walk, which names the component. If the walk succeeds
                // (the tree changed in between), its answer is as safe as openat2's.
                tracing::debug!(error = %e, path = %path, "openat2 refused; walking to name the component");
            }
        }
    }
    walk(root, path)
}

/// The fallback: one `openat(O_NOFOLLOW | O_DIRECTORY)` per name.
///
/// # Errors
/// As [`open_dir`].
pub fn walk(root: &OwnedFd, path: &RelPath) -> Result<OwnedFd, FsError> {
    let mut cur = rustix::fs::openat(root, ".", dir_flags(), Mode::empty())
        .map_err(|e| FsError::io("open", "", e))?;
    for (i, name) in path.names().iter().enumerate() {
        match rustix::fs::openat(&cur, name.as_str(), dir_flags(), Mode::empty()) {
            Ok(next) => cur = next,
            Err(e) => return Err(classify(&cur, name, &path.prefix(i + 1), e)),
        }
    }
    Ok(cur)
}

/// Turns a failed step into the precise error: what is at `name` in `dir` instead of a folder.
fn classify(dir: &OwnedFd, name: &str, component: &str, e: Errno) -> FsError {
    match e {
        Errno::NOENT => FsError::NotFound {
            component: component.to_owned(),
        },
        Errno::LOOP | Errno::NOTDIR | Errno::XDEV => match kind_at(dir, name) {
            Some(FileType::Symlink) => FsError::Symlink {
                component: component.to_owned(),
            },
            Some(FileType::Directory) => FsError::io("open", component, e),
            Some(FileType::RegularFile) => FsError::NotADirectory {
                component: component.to_owned(),
            },
            Some(_) => FsError::Special {
                component: component.to_owned(),
            },
            None => FsError::NotFound {
                component: component.to_owned(),
            },
        },
        e => FsError::io("open", component, e),
    }
}

/// What `name` in `dir` is, without following it; `None` when it does not exist.
pub fn kind_at(dir: impl AsFd, name: &str) -> Option<FileType> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))
}

/// Opens the parent of `path` and returns it with the last name; the root has no parent.
///
/// # Errors
/// [`FsError::RootProtected`] for the root; else as [`open_dir`].
pub fn open_parent<'p>(
    root: &OwnedFd,
    path: &'p RelPath,
    strategy: Strategy,
    op: &'static str,
) -> Result<(OwnedFd, &'p str), FsError> {
    let (parent, last) = path.split_last().ok_or(FsError::RootProtected { op })?;
    let parent = RelPath::parse(&parent.join("/")).map_err(FsError::Rule)?;
    Ok((open_dir(root, &parent, strategy)?, last))
}
