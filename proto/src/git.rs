//! Bodies of the git operations (`git_*`) the agent serves inside a workspace.
//!
//! The agent runs the real `git` binary in the workspace root (or a folder beneath it named by
//! [`GitScope::dir`]), with a fixed environment, and never lets a value from these bodies
//! become a git option: paths go after `--`, branch names and revisions are validated (the
//! rules of `git check-ref-format`, never starting with `-`), and remotes must be configured
//! remotes whose URL is not a local path, `file://` or `ext::` (see `docs/security-model.md`,
//! "Containment").
//!
//! | op | body | answer `T` in `Reply<T>` |
//! | --- | --- | --- |
//! | `git_status` | optional [`GitScope`] | [`GitStatus`] |
//! | `git_diff` | optional [`GitDiffQuery`] | [`GitDiff`] |
//! | `git_log` | optional [`GitLogQuery`] | [`GitLog`] |
//! | `git_branch_list` | optional [`GitScope`] | [`GitBranches`] |
//! | `git_add` | required [`GitAdd`] | [`GitStatus`] |
//! | `git_commit` | required [`GitCommit`] | [`GitCommitted`] |
//! | `git_branch_create` | required [`GitBranchCreate`] | [`GitBranches`] |
//! | `git_checkout` | required [`GitCheckout`] | [`GitBranches`] |
//! | `git_pull` | optional [`GitRemoteQuery`] | [`GitOutput`] |
//! | `git_push` | optional [`GitRemoteQuery`] | [`GitOutput`] |
//! | `git_init` | required [`GitScope`] | [`GitInitialized`] |
//! | `git_clone` | required [`GitClone`] | [`GitCloneStarted`], then [`GitCloneEvent`]s |
//! | `git_config` | required [`GitConfigSet`] | [`GitConfigDone`] |

use serde::{Deserialize, Serialize};

/// Default number of commits `git_log` returns.
pub const DEFAULT_LOG_LIMIT: u32 = 50;
/// Most commits `git_log` returns, whatever is asked.
pub const MAX_LOG_LIMIT: u32 = 500;
/// Most bytes of patch text `git_diff` returns; more sets [`GitDiff::truncated`].
pub const MAX_DIFF_BYTES: usize = 512 * 1024;
/// Most status entries `git_status` returns; more sets [`GitStatus::truncated`].
pub const MAX_STATUS_ENTRIES: usize = 2000;
/// Longest accepted commit message, in bytes.
pub const MAX_COMMIT_MESSAGE: usize = 64 * 1024;

/// Which folder of the workspace git runs in (the repository is found from there, as git does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitScope {
    /// Folder relative to the workspace root; `""` is the root.
    #[serde(default)]
    pub dir: String,
}

/// One changed path in `git_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitStatusEntry {
    /// Path relative to the repository's top level.
    pub path: String,
    /// The staged state, one letter as in `git status --short` (`M`, `A`, `D`, `R`, `C`, `U`,
    /// `?` for untracked, `.` for unchanged).
    pub index: String,
    /// The working-tree state, same letters.
    pub worktree: String,
    /// The old path of a rename or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Answer to `git_status` and `git_add`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitStatus {
    /// The checked-out branch; `None` when detached.
    #[serde(default)]
    pub branch: Option<String>,
    /// The current commit id; `None` before the first commit.
    #[serde(default)]
    pub head: Option<String>,
    /// The upstream branch, if one is set.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Commits ahead of the upstream.
    #[serde(default)]
    pub ahead: u32,
    /// Commits behind the upstream.
    #[serde(default)]
    pub behind: u32,
    /// Changed, staged, untracked and conflicted paths (at most [`MAX_STATUS_ENTRIES`]).
    #[serde(default)]
    pub entries: Vec<GitStatusEntry>,
    /// Whether more entries exist than were returned.
    #[serde(default)]
    pub truncated: bool,
}

/// Body of `git_diff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitDiffQuery {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// The staged changes (`--cached`) instead of the unstaged ones.
    #[serde(default)]
    pub staged: bool,
    /// Only these paths (relative to `dir`); empty means all.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Answer to `git_diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitDiff {
    /// Unified diff text (at most [`MAX_DIFF_BYTES`], cut at a line end).
    pub patch: String,
    /// Whether the diff was longer.
    #[serde(default)]
    pub truncated: bool,
}

/// Body of `git_log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitLogQuery {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// How many commits (default [`DEFAULT_LOG_LIMIT`], at most [`MAX_LOG_LIMIT`]).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Start from this branch or revision instead of `HEAD` (validated like a branch name).
    #[serde(default)]
    pub rev: Option<String>,
}

/// One commit of `git_log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommitInfo {
    /// Full commit id.
    pub id: String,
    /// Author name.
    pub author: String,
    /// Author time, unix seconds.
    pub time: i64,
    /// First line of the message.
    pub subject: String,
}

/// Answer to `git_log`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitLog {
    /// The commits.
    pub commits: Vec<GitCommitInfo>,
}

/// One branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitBranch {
    /// Short name (`main`, `origin/main` for remote-tracking ones).
    pub name: String,
    /// Whether it is checked out.
    #[serde(default)]
    pub current: bool,
    /// Whether it is a remote-tracking branch.
    #[serde(default)]
    pub remote: bool,
    /// Its upstream, for local branches that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// Answer to `git_branch_list`, `git_branch_create` and `git_checkout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitBranches {
    /// The checked-out branch; `None` when detached.
    #[serde(default)]
    pub current: Option<String>,
    /// Local branches first, then remote-tracking ones, each sorted by name.
    #[serde(default)]
    pub branches: Vec<GitBranch>,
}

/// Body of `git_add`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitAdd {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// Paths to stage (relative to `dir`, at least one; `.` stages everything there).
    pub paths: Vec<String>,
}

/// Body of `git_commit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommit {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// The message (non-empty, at most [`MAX_COMMIT_MESSAGE`] bytes).
    pub message: String,
    /// Stage every tracked modified file first (`git commit --all`).
    #[serde(default)]
    pub all: bool,
}

/// Answer to `git_commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCommitted {
    /// The new commit.
    pub id: String,
    /// Its branch; `None` when detached.
    #[serde(default)]
    pub branch: Option<String>,
}

/// Body of `git_branch_create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitBranchCreate {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// The new branch's name.
    pub name: String,
    /// Where it starts (a branch or revision; default `HEAD`).
    #[serde(default)]
    pub start: Option<String>,
    /// Switch to it afterwards.
    #[serde(default)]
    pub checkout: bool,
}

/// Body of `git_checkout`: switch to an existing local branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCheckout {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// The branch.
    pub branch: String,
}

/// Body of `git_pull` and `git_push`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitRemoteQuery {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// A configured remote's name (default: the branch's upstream remote, else `origin`).
    #[serde(default)]
    pub remote: Option<String>,
    /// The branch to pull or push (default: the current branch).
    #[serde(default)]
    pub branch: Option<String>,
}

/// Answer to `git_pull` and `git_push`: what git reported (bounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOutput {
    /// Git's output, trimmed.
    pub output: String,
}

/// Answer to `git_init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInitialized {
    /// The folder, relative to the root (`""` for the root).
    pub dir: String,
}

/// Body of `git_clone`: clone `url` into the new folder `dir` beneath the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitClone {
    /// The remote; it must match the host's `[git] clone_from` (default: `https://…`,
    /// `ssh://…` or `user@host:path`).
    pub url: String,
    /// The new folder, relative to the root; it must not exist yet (its parent must).
    pub dir: String,
}

/// One progress report of a clone, parsed from `git clone --progress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitProgress {
    /// Git's phase, e.g. `Counting objects`, `Receiving objects`, `Resolving deltas`.
    pub phase: String,
    /// Percent of the phase done, when git says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Bytes received so far, when git says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// First answer to `git_clone`: the URL and folder were accepted and the folder created;
/// [`GitCloneEvent`]s follow until `done` or `failed`. Closing the stream before the end aborts
/// the clone (its folder is removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCloneStarted {
    /// The new folder, relative to the root.
    pub dir: String,
}

/// Each frame of `git_clone` after the first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitCloneEvent {
    /// Git reported progress.
    Progress(GitProgress),
    /// The clone finished; the last frame.
    Done(GitCloned),
    /// The clone failed or was stopped (its folder was removed); the last frame.
    Failed(crate::wire_error::WireError),
}

/// The result of a finished `git_clone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitCloned {
    /// The new folder, relative to the root.
    pub dir: String,
    /// The checked-out branch; `None` for an empty repository or a detached HEAD.
    #[serde(default)]
    pub branch: Option<String>,
    /// The checked-out commit; `None` for an empty repository.
    #[serde(default)]
    pub head: Option<String>,
    /// The last progress git reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<GitProgress>,
}

/// Body of `git_config`: set one key of the repository's own config (an allowlist:
/// `user.name`, `user.email`, `remote.<name>.url`, `branch.<name>.remote`,
/// `branch.<name>.merge`, `core.autocrlf`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitConfigSet {
    /// Folder to run in.
    #[serde(default, flatten)]
    pub scope: GitScope,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// Answer to `git_config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitConfigDone {
    /// The key, as git names it (lower-case section and name).
    pub key: String,
    /// The value now set.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_json() {
        let q = GitDiffQuery {
            scope: GitScope { dir: "sub".into() },
            staged: true,
            paths: vec!["a.rs".into()],
        };
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"dir":"sub","staged":true,"paths":["a.rs"]}"#
        );
        let s = GitStatus {
            branch: Some("main".into()),
            head: Some("abc".into()),
            upstream: None,
            ahead: 1,
            behind: 0,
            entries: vec![GitStatusEntry {
                path: "b".into(),
                index: "R".into(),
                worktree: ".".into(),
                from: Some("a".into()),
            }],
            truncated: false,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"branch":"main","head":"abc","upstream":null,"ahead":1,"behind":0,"entries":[{"path":"b","index":"R","worktree":".","from":"a"}],"truncated":false}"#
        );
        let c = GitCommit {
            scope: GitScope::default(),
            message: "m".into(),
            all: false,
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"dir":"","message":"m","all":false}"#
        );
        let b = GitBranches {
            current: Some("main".into()),
            branches: vec![GitBranch {
                name: "main".into(),
                current: true,
                remote: false,
                upstream: Some("origin/main".into()),
            }],
        };
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            r#"{"current":"main","branches":[{"name":"main","current":true,"remote":false,"upstream":"origin/main"}]}"#
        );
        let r = GitRemoteQuery {
            remote: Some("origin".into()),
            ..GitRemoteQuery::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"dir":"","remote":"origin","branch":null}"#
        );
    }

    #[test]
    fn setup_bodies_golden_json() {
        let c = GitClone {
            url: "https://github.com/a/b.git".into(),
            dir: "b".into(),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"url":"https://github.com/a/b.git","dir":"b"}"#
        );
        let k = GitConfigSet {
            scope: GitScope { dir: "b".into() },
            key: "user.name".into(),
            value: "Ada".into(),
        };
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"{"dir":"b","key":"user.name","value":"Ada"}"#
        );
        let done = GitCloned {
            dir: "b".into(),
            branch: Some("main".into()),
            head: None,
            progress: Some(GitProgress {
                phase: "Receiving objects".into(),
                percent: Some(100),
                bytes: Some(2048),
            }),
        };
        assert_eq!(
            serde_json::to_string(&done).unwrap(),
            r#"{"dir":"b","branch":"main","head":null,"progress":{"phase":"Receiving objects","percent":100,"bytes":2048}}"#
        );
    }

    #[test]
    fn bodies_default_their_optional_fields() {
        let q: GitLogQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(q, GitLogQuery::default());
        let a: GitAdd = serde_json::from_str(r#"{"paths":["x"],"future":true}"#).unwrap();
        assert_eq!(a.scope.dir, "");
        assert_eq!(a.paths, vec!["x".to_owned()]);
        let s: GitStatus = serde_json::from_str("{}").unwrap();
        assert!(s.entries.is_empty());
    }
}
