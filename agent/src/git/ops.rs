//! One function per git operation. Each validates its values with [`args`](super::args) first,
//! then runs git with them after `--end-of-options` or `--`.

use super::GitError;
use super::args::{message, pathspec, ref_name, remote_name, remote_urls};
use super::parse;
use super::run::{Git, GitDir, NETWORK_TIMEOUT};
use crate::fs::path::RelPath;
use crate::fs::resolve::{Strategy, open_dir, open_root};
use proto::git::{
    DEFAULT_LOG_LIMIT, GitAdd, GitBranchCreate, GitBranches, GitCheckout, GitCommit, GitCommitted,
    GitDiff, GitDiffQuery, GitLog, GitLogQuery, GitOutput, GitRemoteQuery, GitStatus,
    MAX_DIFF_BYTES, MAX_LOG_LIMIT,
};
use std::path::Path;

/// Most bytes of pull/push output returned.
const MAX_NETWORK_OUTPUT: usize = 16 * 1024;

/// Opens the folder git runs in, through folder containment.
///
/// # Errors
/// Containment refusals.
pub fn open(root: &Path, dir: &str) -> Result<GitDir, GitError> {
    let rel = RelPath::parse(dir).map_err(crate::fs::FsError::from)?;
    let root_fd = open_root(root)?;
    let fd = open_dir(&root_fd, &rel, Strategy::Auto)?;
    Ok(GitDir::new(fd, root.to_owned(), rel.to_string()))
}

/// Git's failure, with "not a repository" said in the operator's terms.
fn not_repo(d: &GitDir) -> impl Fn(GitError) -> GitError + '_ {
    move |e| match e {
        GitError::Failed { message, .. } if message.contains("not a git repository") => {
            GitError::NotARepo { dir: d.rel.clone() }
        }
        e => e,
    }
}

/// `git status`.
///
/// # Errors
/// Not a repository; git failures.
pub async fn status(d: &GitDir) -> Result<GitStatus, GitError> {
    let out = Git::new(
        d,
        [
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--ignore-submodules=all",
        ],
    )
    .env("GIT_OPTIONAL_LOCKS", "0")
    .run()
    .await
    .map_err(not_repo(d))?;
    let mut st = parse::status(&out.stdout);
    st.truncated |= out.truncated;
    Ok(st)
}

/// `git diff` (unstaged, or staged with `staged`), bounded.
///
/// # Errors
/// Refused paths; not a repository; git failures.
pub async fn diff(d: &GitDir, q: &GitDiffQuery) -> Result<GitDiff, GitError> {
    let paths = q
        .paths
        .iter()
        .map(|p| pathspec(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut args = vec![
        "diff",
        "--no-ext-diff",
        "--no-textconv",
        "--no-color",
        "--ignore-submodules=all",
    ];
    if q.staged {
        args.push("--cached");
    }
    args.push("--");
    let out = Git::new(d, args)
        .args(paths)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .limit(MAX_DIFF_BYTES)
        .run()
        .await
        .map_err(not_repo(d))?;
    let mut patch = out.stdout;
    if out.truncated
        && let Some(end) = patch.iter().rposition(|b| *b == b'\n')
    {
        patch.truncate(end + 1);
    }
    Ok(GitDiff {
        patch: String::from_utf8_lossy(&patch).into_owned(),
        truncated: out.truncated,
    })
}

/// `git log`, newest first, bounded.
///
/// # Errors
/// A refused revision; not a repository; git failures.
pub async fn log(d: &GitDir, q: &GitLogQuery) -> Result<GitLog, GitError> {
    let n = q.limit.unwrap_or(DEFAULT_LOG_LIMIT).clamp(1, MAX_LOG_LIMIT);
    let mut args = vec![
        "log".to_owned(),
        "--no-show-signature".to_owned(),
        parse::LOG_FORMAT.to_owned(),
        "-n".to_owned(),
        n.to_string(),
        "--end-of-options".to_owned(),
    ];
    if let Some(rev) = &q.rev {
        args.push(ref_name("revision", rev)?.to_owned());
    }
    args.push("--".to_owned());
    let out = Git::new(d, args).output().await?;
    if !out.ok {
        if out.stderr.contains("does not have any commits yet") {
            return Ok(GitLog {
                commits: Vec::new(),
            });
        }
        return Err(not_repo(d)(GitError::failed("log", &out.stderr)));
    }
    Ok(GitLog {
        commits: parse::log(&out.stdout),
    })
}

/// Local and remote-tracking branches.
///
/// # Errors
/// Not a repository; git failures.
pub async fn branches(d: &GitDir) -> Result<GitBranches, GitError> {
    let out = Git::new(
        d,
        [
            "for-each-ref",
            parse::BRANCH_FORMAT,
            "refs/heads",
            "refs/remotes",
        ],
    )
    .run()
    .await
    .map_err(not_repo(d))?;
    Ok(parse::branches(&out.stdout))
}

/// `git add -- paths…`, then the status.
///
/// # Errors
/// Refused or no paths; git failures.
pub async fn add(d: &GitDir, req: &GitAdd) -> Result<GitStatus, GitError> {
    if req.paths.is_empty() {
        return Err(GitError::Rule {
            rule: "no_paths",
            what: "git add".into(),
            value: String::new(),
        });
    }
    let paths = req
        .paths
        .iter()
        .map(|p| pathspec(p))
        .collect::<Result<Vec<_>, _>>()?;
    Git::new(d, ["add", "--"])
        .args(paths)
        .run()
        .await
        .map_err(not_repo(d))?;
    status(d).await
}

/// A name git accepts as an author: the principal's id without `<`, `>` or control characters.
fn ident(principal: &str) -> String {
    let s: String = principal
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '<' | '>'))
        .collect();
    if s.trim().is_empty() {
        "operator".into()
    } else {
        s
    }
}

/// `git commit`: authored by the operator (`<principal>@codemantle`); committed by the
/// repository's configured identity, or the operator when it has none.
///
/// # Errors
/// A refused message; nothing to commit; git failures.
pub async fn commit(
    d: &GitDir,
    req: &GitCommit,
    principal: &str,
) -> Result<GitCommitted, GitError> {
    let msg = message(&req.message)?;
    let who = ident(principal);
    let email = format!("{who}@codemantle");
    let has_identity = Git::new(d, ["config", "--get", "user.name"])
        .output()
        .await?
        .ok;
    let mut git = Git::new(d, ["commit", "--no-verify", "--cleanup=strip"])
        .env("GIT_AUTHOR_NAME", who.clone())
        .env("GIT_AUTHOR_EMAIL", email.clone());
    if !has_identity {
        git = git
            .env("GIT_COMMITTER_NAME", who)
            .env("GIT_COMMITTER_EMAIL", email);
    }
    if req.all {
        git = git.args(["--all"]);
    }
    let out = git.args([format!("--message={msg}")]).output().await?;
    if !out.ok {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let text = if out.stderr.is_empty() {
            stdout.trim()
        } else {
            out.stderr.as_str()
        };
        return Err(not_repo(d)(GitError::failed("commit", text)));
    }
    let id = Git::new(d, ["rev-parse", "--verify", "HEAD"]).run().await?;
    Ok(GitCommitted {
        id: String::from_utf8_lossy(&id.stdout).trim().to_owned(),
        branch: current_branch(d).await?,
    })
}

/// The checked-out branch; `None` when detached.
async fn current_branch(d: &GitDir) -> Result<Option<String>, GitError> {
    let out = Git::new(d, ["symbolic-ref", "--short", "-q", "HEAD"])
        .output()
        .await?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((out.ok && !name.is_empty()).then_some(name))
}

/// Creates a branch (optionally from `start`, optionally switching to it).
///
/// # Errors
/// Refused names; an existing branch; git failures.
pub async fn branch_create(d: &GitDir, req: &GitBranchCreate) -> Result<GitBranches, GitError> {
    let name = ref_name("branch", &req.name)?;
    let mut args = vec!["branch", "--end-of-options", name];
    if let Some(start) = &req.start {
        args.push(ref_name("start", start)?);
    }
    Git::new(d, args).run().await.map_err(not_repo(d))?;
    if req.checkout {
        Git::new(d, ["switch", "--no-guess", "--end-of-options", name])
            .run()
            .await?;
    }
    branches(d).await
}

/// Switches to an existing local branch.
///
/// # Errors
/// A refused or unknown branch; uncommitted changes in the way; git failures.
pub async fn checkout(d: &GitDir, req: &GitCheckout) -> Result<GitBranches, GitError> {
    let name = ref_name("branch", &req.branch)?;
    let exists = Git::new(d, ["show-ref", "--verify", "--quiet"])
        .args([format!("refs/heads/{name}")])
        .output()
        .await?;
    if !exists.ok {
        if exists.stderr.contains("not a git repository") {
            return Err(GitError::NotARepo { dir: d.rel.clone() });
        }
        return Err(GitError::NotFound(format!(
            "there is no local branch {name}"
        )));
    }
    Git::new(d, ["switch", "--no-guess", "--end-of-options", name])
        .run()
        .await?;
    branches(d).await
}

/// The remote and branch a pull or push uses, both checked; the remote's URLs must all be
/// network URLs.
async fn remote_target(
    d: &GitDir,
    q: &GitRemoteQuery,
    push: bool,
) -> Result<(String, String), GitError> {
    let branch = match &q.branch {
        Some(b) => ref_name("branch", b)?.to_owned(),
        None => current_branch(d)
            .await
            .map_err(not_repo(d))?
            .ok_or_else(|| {
                GitError::NotFound("HEAD is detached; name the branch to pull or push".into())
            })?,
    };
    let remote = match &q.remote {
        Some(r) => remote_name(r)?.to_owned(),
        None => {
            let out = Git::new(d, ["config", "--get"])
                .args([format!("branch.{branch}.remote")])
                .output()
                .await?;
            let r = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.ok && !r.is_empty() {
                remote_name(&r)?.to_owned()
            } else {
                "origin".to_owned()
            }
        }
    };
    let listed = Git::new(d, ["remote"]).run().await.map_err(not_repo(d))?;
    if !String::from_utf8_lossy(&listed.stdout)
        .lines()
        .any(|l| l == remote)
    {
        return Err(GitError::NotFound(format!(
            "no remote named {remote} is configured in this repository"
        )));
    }
    let mut args = vec!["remote", "get-url", "--all"];
    if push {
        args.push("--push");
    }
    args.push(&remote);
    let urls = Git::new(d, args).run().await?;
    let urls: Vec<String> = String::from_utf8_lossy(&urls.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    remote_urls(&remote, &urls)?;
    Ok((remote, branch))
}

fn network_output(out: &super::run::Output) -> GitOutput {
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), out.stderr);
    GitOutput {
        output: text.trim().chars().take(MAX_NETWORK_OUTPUT).collect(),
    }
}

/// `git pull --ff-only <remote> <branch>`.
///
/// # Errors
/// Refused remote or branch; a local or helper remote; git failures.
pub async fn pull(d: &GitDir, q: &GitRemoteQuery) -> Result<GitOutput, GitError> {
    let (remote, branch) = remote_target(d, q, false).await?;
    let out = Git::new(
        d,
        [
            "pull",
            "--ff-only",
            "--no-rebase",
            "--no-stat",
            "--no-recurse-submodules",
            &remote,
            &branch,
        ],
    )
    .timeout(NETWORK_TIMEOUT)
    .limit(MAX_NETWORK_OUTPUT)
    .output()
    .await?;
    if !out.ok {
        return Err(GitError::failed("pull", &out.stderr));
    }
    Ok(network_output(&out))
}

/// `git push <remote> <branch>` (never forced).
///
/// # Errors
/// Refused remote or branch; a local or helper remote; git failures.
pub async fn push(d: &GitDir, q: &GitRemoteQuery) -> Result<GitOutput, GitError> {
    let (remote, branch) = remote_target(d, q, true).await?;
    let out = Git::new(d, ["push", "--no-verify", &remote, &branch])
        .timeout(NETWORK_TIMEOUT)
        .limit(MAX_NETWORK_OUTPUT)
        .output()
        .await?;
    if !out.ok {
        return Err(GitError::failed("push", &out.stderr));
    }
    Ok(network_output(&out))
}
