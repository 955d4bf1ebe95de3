//! Containment for folder operations: a path from the network is validated without I/O
//! ([`path`]), opened beneath the workspace root without following any symbolic link
//! ([`resolve`]), and acted on only through directory fds ([`ops`]), so there is no window
//! between a check and a use in which a swapped-in link could redirect the operation.
//!
//! Every refusal is an [`FsError`] that names the rule and the path component; the operations
//! layer turns it into the operator's error and logs it as an audit event.

pub mod ops;
pub mod path;
pub mod resolve;

use path::PathRule;
use rustix::io::Errno;

/// Why a folder operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The path breaks a validation rule.
    #[error("refused ({rule}): {0}", rule = .0.as_str())]
    Rule(PathRule),
    /// A component is a symbolic link (never followed, wherever it points).
    #[error(
        "refused (symlink): {component} is a symbolic link; links are shown but never followed"
    )]
    Symlink {
        /// The path up to and including the link.
        component: String,
    },
    /// A component that must be a folder is a file.
    #[error("refused (not_a_directory): {component} is not a folder")]
    NotADirectory {
        /// The path up to and including it.
        component: String,
    },
    /// A component is a device, socket or FIFO.
    #[error("refused (special_file): {component} is a device, socket or FIFO")]
    Special {
        /// The path up to and including it.
        component: String,
    },
    /// The target's name is `.git` (any case): a `.git` file, link or folder decides which
    /// repository git uses.
    #[error(
        "refused (dot_git): {path} would be named .git; folder operations never create or move a .git"
    )]
    DotGit {
        /// The target path.
        path: String,
    },
    /// The operation would rename, delete or re-create the workspace root.
    #[error("refused (root): the workspace root itself cannot be the target of {op}")]
    RootProtected {
        /// The operation's wire name.
        op: &'static str,
    },
    /// A component does not exist.
    #[error("{component} does not exist")]
    NotFound {
        /// The path up to and including it.
        component: String,
    },
    /// The target exists already.
    #[error("{path} already exists")]
    Exists {
        /// The path.
        path: String,
    },
    /// `fs_rmdir` on a folder that still has entries.
    #[error("{path} is not empty; only empty folders can be deleted")]
    NotEmpty {
        /// The path.
        path: String,
    },
    /// The workspace root cannot be opened.
    #[error("the workspace root cannot be opened: {0}")]
    Root(std::io::Error),
    /// Any other OS error.
    #[error("{op} {path}: {source}")]
    Io {
        /// The system call.
        op: &'static str,
        /// The relative path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl FsError {
    pub(crate) fn io(op: &'static str, path: &str, e: Errno) -> Self {
        Self::Io {
            op,
            path: path.to_owned(),
            source: std::io::Error::from(e),
        }
    }

    /// The containment rule a refusal names (`None` for ordinary failures such as a missing
    /// path). Refusals are audit events.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Self::Rule(r) => Some(r.as_str()),
            Self::Symlink { .. } => Some("symlink"),
            Self::NotADirectory { .. } => Some("not_a_directory"),
            Self::Special { .. } => Some("special_file"),
            Self::RootProtected { .. } => Some("root"),
            Self::DotGit { .. } => Some("dot_git"),
            Self::NotFound { .. }
            | Self::Exists { .. }
            | Self::NotEmpty { .. }
            | Self::Root(_)
            | Self::Io { .. } => None,
        }
    }
}

impl From<PathRule> for FsError {
    fn from(r: PathRule) -> Self {
        Self::Rule(r)
    }
}
