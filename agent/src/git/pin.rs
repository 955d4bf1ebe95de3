//! Which repository an operation acts on, decided once and checked before anything else runs:
//! `git rev-parse` with discovery (beneath the root: `GIT_CEILING_DIRECTORIES`; a bare layout
//! is never discovered: `safe.bareRepository=explicit`) names the git directory, the common
//! git directory and the work tree; each is made canonical and must lie beneath the canonical
//! workspace root, as must every object directory named by `objects/info/alternates`. Every
//! later command of the operation runs with `GIT_DIR` and `GIT_WORK_TREE` set to the checked
//! paths, so a `.git` file, a `.git` link or `core.worktree` changed afterwards is not followed.
//! The repository's filter drivers and URL-specific cookie files are listed here too, so every
//! command can neutralize them.

use super::GitError;
use super::run::{Git, GitDir};
use std::path::{Path, PathBuf};

/// How deep alternates of alternates are followed (git's own limit is 5).
const MAX_ALTERNATE_DEPTH: usize = 5;

/// The checked repository of an operation.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// The git directory (canonical).
    pub git_dir: PathBuf,
    /// The work tree (canonical).
    pub work_tree: PathBuf,
    /// Repository settings neutralized on every command (key, value), see [`overrides`].
    pub overrides: Vec<(String, &'static str)>,
}

/// The pinned repository of `d`, resolved on first use.
///
/// # Errors
/// Not a repository; a refusal naming the rule; git failures.
pub async fn pinned(d: &GitDir) -> Result<&Pinned, GitError> {
    d.pinned.get_or_try_init(|| resolve(d)).await
}

fn refuse(d: &GitDir, rule: &'static str, why: &str) -> GitError {
    GitError::Repository {
        rule,
        dir: d.rel.clone(),
        why: why.to_owned(),
    }
}

async fn resolve(d: &GitDir) -> Result<Pinned, GitError> {
    let out = Git::new(
        d,
        [
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--show-toplevel",
        ],
    )
    .discovering()
    .await?;
    if !out.ok {
        let e = &out.stderr;
        return Err(if e.contains("cannot use bare repository") {
            refuse(
                d,
                "bare_repository",
                "is a bare repository layout; CodeMantle uses only repositories with a work tree",
            )
        } else if e.contains("must be run in a work tree") {
            refuse(
                d,
                "no_work_tree",
                "has no work tree (it is inside a git directory or a bare repository)",
            )
        } else if e.contains("not a git repository") {
            GitError::NotARepo { dir: d.rel.clone() }
        } else {
            GitError::failed("rev-parse", e)
        });
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let [git_dir, common, work_tree] = lines.as_slice() else {
        return Err(GitError::failed("rev-parse", "unexpected output"));
    };
    let root = canonical(d, &d.root)?;
    let beneath = |p: &str, what: &str| -> Result<PathBuf, GitError> {
        let c = canonical(d, Path::new(p))?;
        if c.starts_with(&root) {
            Ok(c)
        } else {
            Err(refuse(
                d,
                "repository_outside_root",
                &format!(
                    "has its {what} outside the workspace root; git operations act only on \
                     repositories entirely inside it (for a linked worktree or a submodule, make \
                     the main repository's folder the workspace)"
                ),
            ))
        }
    };
    let git_dir = beneath(git_dir, "git directory")?;
    let common = beneath(common, "git directory")?;
    let work_tree = beneath(work_tree, "work tree (core.worktree)")?;
    alternates(d, &root, &common.join("objects"), 0)?;
    let mut pinned = Pinned {
        git_dir,
        work_tree,
        overrides: Vec::new(),
    };
    pinned.overrides = overrides(d, &pinned).await?;
    Ok(pinned)
}

/// Settings of the pinned repository that a general `-c` override cannot reach, each with the
/// value that neutralizes it: every `filter.<driver>.clean|smudge|process` (emptied: git runs
/// no filter) and every URL-specific `http.<url>.cookieFile` (emptied) and
/// `http.<url>.saveCookies` (`false`), which win over the general `http.*` overrides.
async fn overrides(d: &GitDir, p: &Pinned) -> Result<Vec<(String, &'static str)>, GitError> {
    let out = Git::new(
        d,
        [
            "config",
            "-z",
            "--name-only",
            "--get-regexp",
            r"^(filter\..+\.(clean|smudge|process)|http\..+\.(cookiefile|savecookies))$",
        ],
    )
    .exec(Some(p))
    .await?;
    if !out.ok && !out.stderr.is_empty() {
        // Exit 1 without a message is "none configured"; anything else is not knowing.
        return Err(GitError::failed("config", &out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<(String, &'static str)> = Vec::new();
    for key in text.split('\0').filter(|k| !k.is_empty()) {
        if let Some((name, _)) = key.strip_prefix("filter.").and_then(|k| k.rsplit_once('.')) {
            for k in ["clean", "smudge", "process"] {
                found.push((format!("filter.{name}.{k}"), ""));
            }
        } else if key.ends_with(".savecookies") {
            found.push((key.to_owned(), "false"));
        } else {
            found.push((key.to_owned(), ""));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// A path made canonical; one that cannot be (gone, unreadable) is refused as outside.
fn canonical(d: &GitDir, p: &Path) -> Result<PathBuf, GitError> {
    std::fs::canonicalize(p).map_err(|_| {
        refuse(
            d,
            "repository_outside_root",
            "names a git directory or work tree that cannot be resolved",
        )
    })
}

/// Every object directory named by `objects/info/alternates` (recursively) is beneath `root`.
fn alternates(d: &GitDir, root: &Path, objects: &Path, depth: usize) -> Result<(), GitError> {
    let Ok(list) = std::fs::read_to_string(objects.join("info/alternates")) else {
        return Ok(());
    };
    let outside = || {
        refuse(
            d,
            "alternates_outside_root",
            "borrows objects (objects/info/alternates) from outside the workspace root",
        )
    };
    for line in list.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('"') {
            // A quoted path (C-style escapes): not worth decoding; refused.
            return Err(outside());
        }
        let Ok(c) = std::fs::canonicalize(objects.join(line)) else {
            continue; // git skips a missing alternate too
        };
        if !c.starts_with(root) {
            return Err(outside());
        }
        if depth + 1 >= MAX_ALTERNATE_DEPTH {
            return Err(outside());
        }
        alternates(d, root, &c, depth + 1)?;
    }
    Ok(())
}
