//! Bodies of the folder operations (`fs_*`) the agent serves beneath a workspace root.
//!
//! Every path is a relative string with `/` separators, interpreted beneath the root of the
//! workspace named in the stream header; `""` and `"."` name the root itself. Absolute paths,
//! `..` that would climb above the root, NUL bytes, over-long paths (over [`MAX_PATH_LEN`]
//! bytes) and names (over [`MAX_NAME_LEN`] bytes) are refused by the agent, which also refuses
//! to follow symbolic links (see `docs/security-model.md`, "Containment").
//!
//! | op | body | answer `T` in `Reply<T>` |
//! | --- | --- | --- |
//! | `fs_list` | optional [`FsPath`] (default: the root) | [`FsListing`] |
//! | `fs_mkdir` | required [`FsPath`] | [`FsDone`] |
//! | `fs_rename` | required [`FsRename`] | [`FsDone`] |
//! | `fs_rmdir` | required [`FsPath`] | [`FsDone`] |

use serde::{Deserialize, Serialize};

/// Longest accepted relative path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;
/// Longest accepted single name, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;
/// At most this many entries are listed; more sets [`FsListing::truncated`].
pub const MAX_LIST_ENTRIES: usize = 1000;

/// Body of `fs_list`, `fs_mkdir` and `fs_rmdir`: one path relative to the workspace root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsPath {
    /// Relative path; `""` or `"."` is the root.
    #[serde(default)]
    pub path: String,
}

/// Body of `fs_rename`: both paths relative to the same workspace root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRename {
    /// What to rename (never the root).
    pub from: String,
    /// The new path; must not exist yet.
    pub to: String,
}

/// What a directory entry is. Symbolic links are reported as such and never followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsKind {
    /// A folder.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (not followed, wherever it points).
    Symlink,
    /// A device, socket or FIFO: listed, never operated on.
    Special,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsEntry {
    /// The name inside the listed folder.
    pub name: String,
    /// Its kind.
    pub kind: FsKind,
    /// Size in bytes, for regular files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Answer to `fs_list`: folders first, then the rest, each group sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsListing {
    /// The listed folder, normalized (`""` for the root).
    pub path: String,
    /// The entries, at most [`MAX_LIST_ENTRIES`].
    pub entries: Vec<FsEntry>,
    /// Whether the folder holds more entries than were listed.
    #[serde(default)]
    pub truncated: bool,
}

/// Answer to `fs_mkdir`, `fs_rename` and `fs_rmdir`: the normalized path now affected (the new
/// path for a rename).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsDone {
    /// Normalized relative path.
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_json() {
        assert_eq!(
            serde_json::to_string(&FsPath { path: "src".into() }).unwrap(),
            r#"{"path":"src"}"#
        );
        assert_eq!(
            serde_json::to_string(&FsRename {
                from: "a".into(),
                to: "b/c".into()
            })
            .unwrap(),
            r#"{"from":"a","to":"b/c"}"#
        );
        let l = FsListing {
            path: "src".into(),
            entries: vec![
                FsEntry {
                    name: "lib".into(),
                    kind: FsKind::Dir,
                    size: None,
                },
                FsEntry {
                    name: "main.rs".into(),
                    kind: FsKind::File,
                    size: Some(12),
                },
                FsEntry {
                    name: "etc".into(),
                    kind: FsKind::Symlink,
                    size: None,
                },
            ],
            truncated: false,
        };
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"path":"src","entries":[{"name":"lib","kind":"dir"},{"name":"main.rs","kind":"file","size":12},{"name":"etc","kind":"symlink"}],"truncated":false}"#
        );
        assert_eq!(
            serde_json::to_string(&FsDone { path: "a/b".into() }).unwrap(),
            r#"{"path":"a/b"}"#
        );
        assert_eq!(
            serde_json::to_string(&FsKind::Special).unwrap(),
            r#""special""#
        );
    }

    #[test]
    fn bodies_tolerate_missing_and_unknown_fields() {
        let p: FsPath = serde_json::from_str("{}").unwrap();
        assert_eq!(p.path, "");
        let l: FsListing = serde_json::from_str(r#"{"path":"","entries":[],"future":1}"#).unwrap();
        assert!(!l.truncated);
    }
}
