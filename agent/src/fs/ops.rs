//! The four folder operations, each acting only on directory fds opened by
//! [`resolve`](super::resolve). Blocking: the operations layer runs them on the blocking pool.

use super::FsError;
use super::path::RelPath;
use super::resolve::{Strategy, kind_at, open_dir, open_parent, open_root};
use proto::fs::{FsDone, FsEntry, FsKind, FsListing, MAX_LIST_ENTRIES};
use rustix::fs::{AtFlags, Dir, FileType, Mode, RenameFlags};
use rustix::io::Errno;
use std::path::Path;

/// A listing reads at most this many names before sorting (a folder with millions of entries
/// costs bounded time); more marks the listing truncated.
const MAX_SCAN: usize = 20 * MAX_LIST_ENTRIES;

/// Mode of folders created by `fs_mkdir` (before the umask).
const DIR_MODE: u32 = 0o755;

fn kind_of(t: FileType) -> FsKind {
    match t {
        FileType::Directory => FsKind::Dir,
        FileType::RegularFile => FsKind::File,
        FileType::Symlink => FsKind::Symlink,
        _ => FsKind::Special,
    }
}

/// Lists a folder: folders first, then everything else, each sorted by name; at most
/// [`MAX_LIST_ENTRIES`]. Symbolic links are listed as such, never followed.
///
/// # Errors
/// Containment refusals and OS errors.
pub fn list(root: &Path, path: &RelPath, strategy: Strategy) -> Result<FsListing, FsError> {
    let root = open_root(root)?;
    let dir = open_dir(&root, path, strategy)?;
    let shown = path.to_string();
    let mut stream = Dir::read_from(&dir).map_err(|e| FsError::io("read", &shown, e))?;
    let mut found: Vec<(FsKind, String)> = Vec::new();
    let mut truncated = false;
    for entry in stream.by_ref() {
        let entry = entry.map_err(|e| FsError::io("read", &shown, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        if found.len() == MAX_SCAN {
            truncated = true;
            break;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => kind_at(&dir, &name).map_or(FsKind::Special, kind_of),
            t => kind_of(t),
        };
        found.push((kind, name));
    }
    found.sort_by(|a, b| (a.0 != FsKind::Dir, &a.1).cmp(&(b.0 != FsKind::Dir, &b.1)));
    if found.len() > MAX_LIST_ENTRIES {
        truncated = true;
        found.truncate(MAX_LIST_ENTRIES);
    }
    let entries = found
        .into_iter()
        .map(|(kind, name)| {
            let size = (kind == FsKind::File)
                .then(|| rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).ok())
                .flatten()
                .and_then(|st| u64::try_from(st.st_size).ok());
            FsEntry { name, kind, size }
        })
        .collect();
    Ok(FsListing {
        path: shown,
        entries,
        truncated,
    })
}

/// Creates one folder (its parent must exist).
///
/// # Errors
/// The root, an existing name, containment refusals, OS errors.
pub fn mkdir(root: &Path, path: &RelPath, strategy: Strategy) -> Result<FsDone, FsError> {
    let root = open_root(root)?;
    let (parent, name) = open_parent(&root, path, strategy, "fs_mkdir")?;
    let shown = path.to_string();
    refuse_dot_git(name, &shown)?;
    rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(DIR_MODE)).map_err(|e| match e {
        Errno::EXIST => FsError::Exists {
            path: shown.clone(),
        },
        e => FsError::io("mkdir", &shown, e),
    })?;
    Ok(FsDone { path: shown })
}

/// Deletes one empty folder. A link, file or special file at the path is refused, not removed.
///
/// # Errors
/// The root, a non-empty folder, containment refusals, OS errors.
pub fn rmdir(root: &Path, path: &RelPath, strategy: Strategy) -> Result<FsDone, FsError> {
    let root = open_root(root)?;
    let (parent, name) = open_parent(&root, path, strategy, "fs_rmdir")?;
    let shown = path.to_string();
    refuse_odd(&parent, name, &shown, true)?;
    // unlinkat(AT_REMOVEDIR) acts on the name itself: a link swapped in after the check above
    // fails with ENOTDIR instead of being followed.
    rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).map_err(|e| match e {
        Errno::NOTEMPTY | Errno::EXIST => FsError::NotEmpty {
            path: shown.clone(),
        },
        Errno::NOTDIR => FsError::NotADirectory {
            component: shown.clone(),
        },
        Errno::NOENT => FsError::NotFound {
            component: shown.clone(),
        },
        e => FsError::io("rmdir", &shown, e),
    })?;
    Ok(FsDone { path: shown })
}

/// Renames a file, folder or link within the workspace; the target must not exist
/// (`RENAME_NOREPLACE`), and neither side may be the root.
///
/// # Errors
/// The root, an existing target, containment refusals, OS errors.
pub fn rename(
    root: &Path,
    from: &RelPath,
    to: &RelPath,
    strategy: Strategy,
) -> Result<FsDone, FsError> {
    let root = open_root(root)?;
    let (from_dir, from_name) = open_parent(&root, from, strategy, "fs_rename")?;
    let (to_dir, to_name) = open_parent(&root, to, strategy, "fs_rename")?;
    let from_shown = from.to_string();
    let to_shown = to.to_string();
    refuse_dot_git(to_name, &to_shown)?;
    refuse_odd(&from_dir, from_name, &from_shown, false)?;
    rustix::fs::renameat_with(
        &from_dir,
        from_name,
        &to_dir,
        to_name,
        RenameFlags::NOREPLACE,
    )
    .map_err(|e| match e {
        Errno::EXIST | Errno::NOTEMPTY => FsError::Exists {
            path: to_shown.clone(),
        },
        Errno::NOENT => FsError::NotFound {
            component: from_shown.clone(),
        },
        e => FsError::io("rename", &from_shown, e),
    })?;
    Ok(FsDone { path: to_shown })
}

/// Refuses `.git` (in any case) as the name of a new or renamed entry: a `.git` file or link
/// could point git at a repository outside the root.
fn refuse_dot_git(name: &str, shown: &str) -> Result<(), FsError> {
    if name.eq_ignore_ascii_case(".git") {
        return Err(FsError::DotGit {
            path: shown.to_owned(),
        });
    }
    Ok(())
}

/// Refuses special files (and, for `rmdir`, anything but a folder) at `name` before acting.
fn refuse_odd(
    dir: &impl rustix::fd::AsFd,
    name: &str,
    shown: &str,
    dir_only: bool,
) -> Result<(), FsError> {
    match kind_at(dir, name) {
        None => Err(FsError::NotFound {
            component: shown.to_owned(),
        }),
        Some(FileType::Directory) => Ok(()),
        Some(FileType::Symlink) if dir_only => Err(FsError::Symlink {
            component: shown.to_owned(),
        }),
        Some(FileType::RegularFile) if dir_only => Err(FsError::NotADirectory {
            component: shown.to_owned(),
        }),
        Some(FileType::Symlink | FileType::RegularFile) => Ok(()),
        Some(_) => Err(FsError::Special {
            component: shown.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn p(s: &str) -> RelPath {
        RelPath::parse(s).unwrap()
    }

    /// Both strategies behave the same on every case.
    fn both(f: impl Fn(Strategy)) {
        f(Strategy::Auto);
        f(Strategy::Walk);
    }

    #[test]
    fn list_orders_folders_first_and_reports_links() {
        both(|s| {
            let tmp = tempfile::tempdir().unwrap();
            let r = tmp.path();
            std::fs::create_dir(r.join("zdir")).unwrap();
            std::fs::create_dir(r.join("adir")).unwrap();
            std::fs::write(r.join("b.txt"), "12345").unwrap();
            symlink("/etc", r.join("etc")).unwrap();
            let l = list(r, &p(""), s).unwrap();
            let got: Vec<_> = l
                .entries
                .iter()
                .map(|e| (e.name.as_str(), e.kind))
                .collect();
            assert_eq!(
                got,
                [
                    ("adir", FsKind::Dir),
                    ("zdir", FsKind::Dir),
                    ("b.txt", FsKind::File),
                    ("etc", FsKind::Symlink)
                ]
            );
            assert_eq!(l.entries[2].size, Some(5));
            assert!(!l.truncated);
            // Listing through the link is refused, naming it.
            let err = list(r, &p("etc"), s).unwrap_err();
            assert!(
                matches!(&err, FsError::Symlink { component } if component == "etc"),
                "{err}"
            );
            let err = list(r, &p("b.txt"), s).unwrap_err();
            assert!(matches!(&err, FsError::NotADirectory { .. }), "{err}");
            let err = list(r, &p("adir/none"), s).unwrap_err();
            assert!(
                matches!(&err, FsError::NotFound { component } if component == "adir/none"),
                "{err}"
            );
        });
    }

    #[test]
    fn list_is_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..MAX_LIST_ENTRIES + 5 {
            std::fs::write(tmp.path().join(format!("f{i:05}")), "").unwrap();
        }
        std::fs::create_dir(tmp.path().join("zz")).unwrap();
        let l = list(tmp.path(), &p(""), Strategy::Auto).unwrap();
        assert_eq!(l.entries.len(), MAX_LIST_ENTRIES);
        assert!(l.truncated);
        assert_eq!(l.entries[0].name, "zz", "folders come first even when cut");
    }

    #[test]
    fn mkdir_rmdir_rename_and_the_root() {
        both(|s| {
            let tmp = tempfile::tempdir().unwrap();
            let r = tmp.path();
            assert_eq!(mkdir(r, &p("a"), s).unwrap().path, "a");
            assert!(matches!(mkdir(r, &p("a"), s), Err(FsError::Exists { .. })));
            mkdir(r, &p("a/b"), s).unwrap();
            assert!(matches!(
                rmdir(r, &p("a"), s),
                Err(FsError::NotEmpty { .. })
            ));
            rename(r, &p("a/b"), &p("c"), s).unwrap();
            assert!(r.join("c").is_dir());
            std::fs::write(r.join("f"), "").unwrap();
            assert!(matches!(
                rename(r, &p("f"), &p("c"), s),
                Err(FsError::Exists { .. })
            ));
            assert!(matches!(
                rmdir(r, &p("f"), s),
                Err(FsError::NotADirectory { .. })
            ));
            rmdir(r, &p("c"), s).unwrap();
            for root in ["", "."] {
                assert!(matches!(
                    rmdir(r, &p(root), s),
                    Err(FsError::RootProtected { .. })
                ));
                assert!(matches!(
                    mkdir(r, &p(root), s),
                    Err(FsError::RootProtected { .. })
                ));
                assert!(matches!(
                    rename(r, &p(root), &p("x"), s),
                    Err(FsError::RootProtected { .. })
                ));
                assert!(matches!(
                    rename(r, &p("a"), &p(root), s),
                    Err(FsError::RootProtected { .. })
                ));
            }
        });
    }

    #[test]
    fn links_in_the_middle_or_at_the_end_are_never_followed() {
        both(|s| {
            let tmp = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            std::fs::create_dir(outside.path().join("keep")).unwrap();
            let r = tmp.path();
            symlink(outside.path(), r.join("out")).unwrap();
            let err = mkdir(r, &p("out/new"), s).unwrap_err();
            assert!(
                matches!(&err, FsError::Symlink { component } if component == "out"),
                "{err}"
            );
            let err = rmdir(r, &p("out/keep"), s).unwrap_err();
            assert!(matches!(&err, FsError::Symlink { .. }), "{err}");
            // rmdir on the link itself: refused, and the link stays.
            let err = rmdir(r, &p("out"), s).unwrap_err();
            assert!(matches!(&err, FsError::Symlink { .. }), "{err}");
            assert!(r.join("out").is_symlink());
            std::fs::create_dir(r.join("d")).unwrap();
            let err = rename(r, &p("d"), &p("out/d"), s).unwrap_err();
            assert!(matches!(&err, FsError::Symlink { .. }), "{err}");
            assert!(outside.path().join("keep").is_dir());
            assert!(!outside.path().join("new").exists());
            assert!(!outside.path().join("d").exists());
        });
    }
}
