//! Workspaces made from folders beneath a workspace root: a host whose `[[workspace]]` has
//! `subworkspaces = true` lets operators list that root's immediate subfolders
//! (`workspace_candidates`), turn one into a workspace of its own (`workspace_add`, with the
//! root's tool permissions and sandbox) and forget it again (`workspace_remove`; its files stay).

use serde::{Deserialize, Serialize};

/// Most candidates one `workspace_candidates` answer lists (then `truncated`).
pub const MAX_CANDIDATES: usize = 500;

/// The answer of `workspace_candidates`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCandidates {
    /// Folders, by root and then folder name.
    pub candidates: Vec<WorkspaceCandidate>,
    /// More folders than [`MAX_CANDIDATES`] (the rest left out).
    #[serde(default)]
    pub truncated: bool,
}

/// One immediate subfolder of a root that allows subworkspaces (never a link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCandidate {
    /// The workspace whose root holds the folder.
    pub root: String,
    /// The folder's name in that root.
    pub folder: String,
    /// Whether the folder has a `.git`.
    pub is_git: bool,
    /// The checked-out branch, when the folder's `.git/HEAD` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The workspace the folder already is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
}

/// The body of `workspace_add` (the header's workspace is the root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceAdd {
    /// An immediate subfolder of the root (one name, no `/`).
    pub folder: String,
    /// The new workspace's name (default: the folder's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The answer of `workspace_remove` (the header's workspace is the one removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRemoved {
    /// The workspace forgotten.
    pub name: String,
    /// Its folder, left as it was.
    pub root: String,
    /// The folder inside it.
    pub folder: String,
}
