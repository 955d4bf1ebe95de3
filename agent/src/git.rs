//! Git operations inside a workspace: the real `git` binary, run by [`run`] in a folder opened
//! through folder containment, with every network value checked by [`args`] and placed after
//! `--end-of-options` or `--`, so nothing from an operator can become a git option, a program to
//! run, or a repository outside the root. Outputs are parsed by [`parse`]; [`ops`] has one
//! function per operation; [`setup`] creates and configures repositories (`git_init`,
//! `git_clone` under the host's URL [`policy`], `git_config` for the [`keys`] allowlist).

pub mod args;
pub mod bounded;
pub mod keys;
pub mod ops;
pub mod parse;
pub mod pin;
pub mod policy;
pub mod progress;
pub mod run;
pub mod setup;
pub mod staging;
pub mod submodules;

use crate::fs::FsError;
use std::time::Duration;

/// Most of git's message kept in an operator-facing failure.
const MAX_MESSAGE: usize = 2000;

/// Why a git operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// A value breaks a rule (it could have become an option, a local path, a program…).
    #[error("refused ({rule}): {what} {value:?} is not accepted")]
    Rule {
        /// The rule's short name.
        rule: &'static str,
        /// Which argument.
        what: String,
        /// The value (first 64 characters).
        value: String,
    },
    /// The folder (or a path argument) breaks a containment rule.
    #[error(transparent)]
    Path(#[from] FsError),
    /// The folder's repository breaks a containment rule (outside the root, bare, no work
    /// tree).
    #[error("refused ({rule}): the repository of folder {dir:?} {why}")]
    Repository {
        /// The rule's short name.
        rule: &'static str,
        /// The folder, relative to the root.
        dir: String,
        /// What is wrong with it.
        why: String,
    },
    /// The folder is not inside a git repository beneath the root.
    #[error("{dir:?} is not inside a git repository in this workspace")]
    NotARepo {
        /// The folder, relative to the root.
        dir: String,
    },
    /// A named remote or branch does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Git ran and refused (nothing to commit, conflict, rejected push…).
    #[error("git {what} failed: {message}")]
    Failed {
        /// The subcommand.
        what: String,
        /// Git's message (bounded).
        message: String,
    },
    /// Git could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// Git took too long and was stopped.
    #[error("git {what} did not finish within {after:?} and was stopped")]
    Timeout {
        /// The subcommand.
        what: String,
        /// The bound.
        after: Duration,
    },
}

impl GitError {
    pub(crate) fn failed(what: &str, stderr: &str) -> Self {
        let mut message: String = stderr.chars().take(MAX_MESSAGE).collect();
        if message.is_empty() {
            message = "no message".into();
        }
        Self::Failed {
            what: what.to_owned(),
            message,
        }
    }

    /// The containment rule a refusal names; `None` for ordinary failures.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            Self::Rule { rule, .. } | Self::Repository { rule, .. } => Some(rule),
            Self::Path(e) => e.rule(),
            _ => None,
        }
    }
}
