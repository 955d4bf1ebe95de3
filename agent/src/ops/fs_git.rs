//! Handlers of the folder (`fs_*`) and git (`git_*`) operations: decode the body, run the
//! contained operation ([`crate::fs`], [`crate::git`]) on the workspace's root, and map refusals
//! to the operator's error. Every containment refusal is also logged as an audit event
//! (target `cm_agent::audit`, with the rule, the principal and the operation); the relay has
//! already audited the forwarded operation as allowed by role.

use super::error::OpError;
use super::frames::FrameReader;
use super::handlers::{json, optional, required};
use crate::fs::FsError;
use crate::fs::ops as fsops;
use crate::fs::path::RelPath;
use crate::fs::resolve::Strategy;
use crate::git::{GitError, ops as gitops};
use crate::workspaces::WorkspaceRuntime;
use proto::fs::{FsPath, FsRename};
use proto::git::{
    GitAdd, GitBranchCreate, GitCheckout, GitCommit, GitDiffQuery, GitLogQuery, GitRemoteQuery,
    GitScope,
};
use proto::header::Op;
use proto::ops::ForwardHeader;
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::AsyncRead;

/// Whether `op` is one of the operations served here.
pub(super) fn serves(op: Op) -> bool {
    matches!(
        op,
        Op::FsList
            | Op::FsMkdir
            | Op::FsRename
            | Op::FsRmdir
            | Op::GitStatus
            | Op::GitDiff
            | Op::GitLog
            | Op::GitBranchList
            | Op::GitAdd
            | Op::GitCommit
            | Op::GitBranchCreate
            | Op::GitCheckout
            | Op::GitPull
            | Op::GitPush
    )
}

/// Serves one folder or git operation on `rt`'s root.
pub(super) async fn serve<R: AsyncRead + Unpin>(
    rt: &WorkspaceRuntime,
    fwd: &ForwardHeader,
    body: &mut FrameReader<R>,
) -> Result<Value, OpError> {
    let op = fwd.header.op;
    let result = run(rt, fwd, body).await;
    if let Err(Refusal {
        rule: Some(rule),
        error,
    }) = &result
    {
        tracing::warn!(
            target: "cm_agent::audit",
            rule,
            op = op.as_str(),
            principal = %fwd.principal,
            cred = %fwd.cred_id,
            workspace = %rt.workspace.name,
            error = %error,
            "containment refusal"
        );
    }
    result.map_err(|r| r.error)
}

/// An error with the containment rule it came from, if any.
struct Refusal {
    rule: Option<&'static str>,
    error: OpError,
}

impl From<OpError> for Refusal {
    fn from(error: OpError) -> Self {
        Self { rule: None, error }
    }
}

impl From<FsError> for Refusal {
    fn from(e: FsError) -> Self {
        let rule = e.rule();
        let error = match &e {
            _ if rule.is_some() => OpError::Contained {
                rule: rule.unwrap_or("containment"),
                message: e.to_string(),
            },
            FsError::NotFound { .. } => OpError::NotFound(e.to_string()),
            FsError::Exists { .. } | FsError::NotEmpty { .. } => OpError::Conflict(e.to_string()),
            FsError::Io { op, path, source } => {
                tracing::warn!(op, path, error = %source, "folder operation failed");
                OpError::Conflict(format!(
                    "{op} {path:?} failed on the host: {}",
                    std::io::Error::from(source.kind())
                ))
            }
            _ => OpError::Unavailable(format!(
                "the workspace folder cannot be opened on the host ({e}); check the agent's log"
            )),
        };
        Self { rule, error }
    }
}

impl From<GitError> for Refusal {
    fn from(e: GitError) -> Self {
        match e {
            GitError::Path(fs) => fs.into(),
            e @ (GitError::Rule { .. } | GitError::Repository { .. }) => Self {
                rule: e.rule(),
                error: OpError::Contained {
                    rule: e.rule().unwrap_or("git"),
                    message: e.to_string(),
                },
            },
            e @ (GitError::NotARepo { .. } | GitError::NotFound(_)) => {
                OpError::NotFound(e.to_string()).into()
            }
            e @ GitError::Failed { .. } => OpError::Conflict(e.to_string()).into(),
            GitError::Spawn(err) => OpError::Unavailable(format!(
                "git cannot be run on this host ({err}); install git or fix the agent's PATH"
            ))
            .into(),
            e @ GitError::Timeout { .. } => OpError::Unavailable(format!("{e}; try again")).into(),
        }
    }
}

/// Runs a blocking folder operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FsError> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(Refusal::from),
        Err(e) => {
            Err(OpError::Unavailable(format!("the folder operation did not finish: {e}")).into())
        }
    }
}

fn rel(raw: &str) -> Result<RelPath, Refusal> {
    RelPath::parse(raw).map_err(|r| Refusal::from(FsError::from(r)))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, Refusal> {
    json(v).map_err(Refusal::from)
}

async fn run<R: AsyncRead + Unpin>(
    rt: &WorkspaceRuntime,
    fwd: &ForwardHeader,
    body: &mut FrameReader<R>,
) -> Result<Value, Refusal> {
    let op = fwd.header.op;
    let root: PathBuf = rt.workspace.root.clone();
    match op {
        Op::FsList => {
            let q: FsPath = optional(op, body).await?;
            let p = rel(&q.path)?;
            to_json(&blocking(move || fsops::list(&root, &p, Strategy::Auto)).await?)
        }
        Op::FsMkdir => {
            let q: FsPath = required(op, body).await?;
            let p = rel(&q.path)?;
            to_json(&blocking(move || fsops::mkdir(&root, &p, Strategy::Auto)).await?)
        }
        Op::FsRmdir => {
            let q: FsPath = required(op, body).await?;
            let p = rel(&q.path)?;
            to_json(&blocking(move || fsops::rmdir(&root, &p, Strategy::Auto)).await?)
        }
        Op::FsRename => {
            let q: FsRename = required(op, body).await?;
            let (from, to) = (rel(&q.from)?, rel(&q.to)?);
            to_json(&blocking(move || fsops::rename(&root, &from, &to, Strategy::Auto)).await?)
        }
        Op::GitStatus => {
            let q: GitScope = optional(op, body).await?;
            let d = gitops::open(&root, &q.dir)?;
            to_json(&gitops::status(&d).await?)
        }
        Op::GitBranchList => {
            let q: GitScope = optional(op, body).await?;
            let d = gitops::open(&root, &q.dir)?;
            to_json(&gitops::branches(&d).await?)
        }
        Op::GitDiff => {
            let q: GitDiffQuery = optional(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::diff(&d, &q).await?)
        }
        Op::GitLog => {
            let q: GitLogQuery = optional(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::log(&d, &q).await?)
        }
        Op::GitAdd => {
            let q: GitAdd = required(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::add(&d, &q).await?)
        }
        Op::GitCommit => {
            let q: GitCommit = required(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::commit(&d, &q, fwd.principal.as_str()).await?)
        }
        Op::GitBranchCreate => {
            let q: GitBranchCreate = required(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::branch_create(&d, &q).await?)
        }
        Op::GitCheckout => {
            let q: GitCheckout = required(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::checkout(&d, &q).await?)
        }
        Op::GitPull => {
            let q: GitRemoteQuery = optional(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::pull(&d, &q).await?)
        }
        Op::GitPush => {
            let q: GitRemoteQuery = optional(op, body).await?;
            let d = gitops::open(&root, &q.scope.dir)?;
            to_json(&gitops::push(&d, &q).await?)
        }
        _ => Err(OpError::UnknownOp(op).into()),
    }
}
