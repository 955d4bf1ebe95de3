//! Workspaces added at run time from an immediate subfolder of a root that allows it
//! (`[[workspace]] subworkspaces = true`): the rules a folder and a name must pass, and the
//! record kept in `<state_dir>/added-workspaces.json` (rewritten atomically, 0600) so they come
//! back after a restart.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file in the state directory.
pub const FILE_NAME: &str = "added-workspaces.json";
/// Most workspaces a host keeps added (a heartbeat lists at most 256 names in all).
pub const MAX_ADDED: usize = 128;
/// Longest folder name accepted.
const MAX_FOLDER_LEN: usize = 255;

/// One added workspace as recorded: its name, the root workspace and the folder in that root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedRecord {
    /// The workspace's name.
    pub name: String,
    /// The configured workspace whose root holds the folder.
    pub parent: String,
    /// The folder's name in that root.
    pub folder: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AddedFile {
    version: u32,
    workspaces: Vec<AddedRecord>,
}

/// Why adding or removing a workspace was refused.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The root does not allow subworkspaces.
    #[error(
        "refused (subworkspaces_off): workspace {root} does not allow subworkspaces; the host \
         enables them with `subworkspaces = true` in that [[workspace]] table of agent.toml"
    )]
    NotAllowed {
        /// The root asked for.
        root: String,
    },
    /// The folder is not one plain name of an immediate subfolder.
    #[error(
        "refused (folder_name): folder {folder:?} {why}; give the name of a folder directly in \
         the root, as workspace_candidates lists it"
    )]
    FolderName {
        /// The folder asked for (first 64 characters).
        folder: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The folder is not a real folder directly in the root (missing, a link, a file).
    #[error("refused ({rule}): {folder:?} in workspace {root}'s folder {why}")]
    NotAFolder {
        /// The rule's short name.
        rule: &'static str,
        /// The root workspace.
        root: String,
        /// The folder.
        folder: String,
        /// What is wrong.
        why: String,
    },
    /// The name is not a valid workspace name.
    #[error(
        "{name:?} is not a valid workspace name (ASCII letters, digits, '-', '_' and '.', not \
         starting with '-' or '.'); give one with --name"
    )]
    BadName {
        /// The name (first 64 characters).
        name: String,
    },
    /// The name or the folder is taken.
    #[error("{0}")]
    Taken(String),
    /// Too many added workspaces.
    #[error("this host already has {MAX_ADDED} added workspaces; remove one first")]
    TooMany,
    /// The workspace was configured by the host, not added.
    #[error(
        "refused (configured_workspace): workspace {name} is configured in the host's \
         agent.toml; only workspaces added with workspace_add can be removed"
    )]
    Configured {
        /// The workspace.
        name: String,
    },
    /// The record could not be written.
    #[error("cannot record the added workspaces on this host ({0}); nothing was changed")]
    Persist(std::io::Error),
}

/// Checks that `folder` is one plain name (no separator, not `.`/`..`, not hidden).
///
/// # Errors
/// [`AddError::FolderName`].
pub fn check_folder(folder: &str) -> Result<(), AddError> {
    let why = if folder.is_empty() {
        Some("is empty")
    } else if folder.len() > MAX_FOLDER_LEN {
        Some("is too long")
    } else if folder.contains(['/', '\\']) {
        Some("holds a path separator (only immediate subfolders can be workspaces)")
    } else if folder == "." || folder == ".." {
        Some("is not a folder name")
    } else if folder.starts_with('.') {
        Some("is hidden (starts with '.')")
    } else if folder.chars().any(char::is_control) {
        Some("holds a control character")
    } else {
        None
    };
    why.map_or(Ok(()), |why| {
        Err(AddError::FolderName {
            folder: folder.chars().take(64).collect(),
            why,
        })
    })
}

/// Checks that `root/folder` is a real folder directly in `root` (canonical: no link on the
/// way) and returns its path.
///
/// # Errors
/// [`AddError::NotAFolder`] naming the rule.
pub fn check_child(root_name: &str, root: &Path, folder: &str) -> Result<PathBuf, AddError> {
    let refuse = |rule: &'static str, why: String| AddError::NotAFolder {
        rule,
        root: root_name.to_owned(),
        folder: folder.to_owned(),
        why,
    };
    let path = root.join(folder);
    let md = std::fs::symlink_metadata(&path)
        .map_err(|e| refuse("not_found", format!("cannot be read: {e}")))?;
    if md.file_type().is_symlink() {
        return Err(refuse(
            "symlink",
            "is a symbolic link; links are never followed".into(),
        ));
    }
    if !md.is_dir() {
        return Err(refuse("not_a_folder", "is not a folder".into()));
    }
    let canonical = std::fs::canonicalize(&path)
        .map_err(|e| refuse("not_found", format!("cannot be resolved: {e}")))?;
    if canonical != path || canonical.parent() != Some(root) {
        return Err(refuse(
            "outside_root",
            "does not resolve to a folder directly in the root".into(),
        ));
    }
    Ok(path)
}

/// Whether an added workspace's root is still the real folder it was added as (no link
/// swapped in on the way since): the check before every operation on it.
pub fn still_in_place(root: &Path) -> bool {
    std::fs::symlink_metadata(root).is_ok_and(|m| m.is_dir())
        && std::fs::canonicalize(root).is_ok_and(|c| c == root)
}

/// Reads the records (missing file: none; an unreadable one is logged and taken as none).
pub fn load(state_dir: &Path) -> Vec<AddedRecord> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<AddedFile>(&bytes) {
            Ok(f) => f.workspaces,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot parse the added workspaces; none restored");
                Vec::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the added workspaces; none restored");
            Vec::new()
        }
    }
}

/// Rewrites the records atomically (a new 0600 file renamed over the old one).
///
/// # Errors
/// I/O failures.
pub fn save(state_dir: &Path, records: &[AddedRecord]) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(&AddedFile {
        version: 1,
        workspaces: records.to_vec(),
    })
    .map_err(std::io::Error::other)?;
    crate::private_file::write_atomic(&state_dir.join(FILE_NAME), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_must_be_one_plain_visible_name() {
        for ok in ["app", "my app", "a.b", "x-1"] {
            assert!(check_folder(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", "/etc", ".git", "a\\b", "a\nb"] {
            assert!(
                matches!(check_folder(bad), Err(AddError::FolderName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn records_survive_a_rewrite_and_a_symlinked_child_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let r = vec![AddedRecord {
            name: "app".into(),
            parent: "src".into(),
            folder: "app".into(),
        }];
        save(&state, &r).unwrap();
        save(&state, &r).unwrap();
        assert_eq!(load(&state), r);
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        assert_eq!(check_child("w", &root, "real").unwrap(), root.join("real"));
        assert!(matches!(
            check_child("w", &root, "link"),
            Err(AddError::NotAFolder {
                rule: "symlink",
                ..
            })
        ));
        assert!(matches!(
            check_child("w", &root, "missing"),
            Err(AddError::NotAFolder {
                rule: "not_found",
                ..
            })
        ));
        assert!(still_in_place(&root.join("real")));
        assert!(!still_in_place(&root.join("link")));
    }
}
