//! Handlers of the folder (`fs_*`) and git (`git_*`) operations: decode the body, run the
//! contained operation ([`crate::fs`], [`crate::git`]) on the workspace's root, and map refusals
//! to the operator's error. Every containment refusal is also logged as an audit event
//! (target `cm_agent::audit`, with the rule, the principal and the operation); the relay has
//! already audited the forwarded operation as allowed by role.

use super::error::OpError;
use super::frames::write_frame;
use super::handler::{Cx, Handler, StreamHandler};
use crate::fs::FsError;
use crate::fs::ops as fsops;
use crate::fs::path::RelPath;
use crate::fs::resolve::Strategy;
use crate::git::{GitError, ops as gitops, setup as gitsetup};
use proto::frame::MAX_FRAME_LEN;
use proto::fs::{FsDone, FsListing, FsPath, FsRename};
use proto::git::{
    GitAdd, GitBranchCreate, GitBranches, GitCheckout, GitClone, GitCloneEvent, GitCloneStarted,
    GitCommit, GitCommitted, GitConfigDone, GitConfigSet, GitDiff, GitDiffQuery, GitInitialized,
    GitLog, GitLogQuery, GitOutput, GitProgress, GitRemoteQuery, GitScope, GitStatus,
};
use proto::message::Reply;
use proto::op;
use std::future::Future;
use std::path::PathBuf;
use tokio::io::AsyncWrite;

/// Runs one folder or git operation, logging a containment refusal as an audit event.
async fn contained<T>(
    cx: &Cx<'_>,
    run: impl Future<Output = Result<T, Refusal>>,
) -> Result<T, OpError> {
    let result = run.await;
    if let Err(Refusal {
        rule: Some(rule),
        error,
    }) = &result
    {
        let fwd = cx.fwd;
        tracing::warn!(
            target: "cm_agent::audit",
            rule,
            op = fwd.header.op.as_str(),
            principal = %fwd.principal,
            cred = %fwd.cred_id,
            workspace = fwd.header.workspace.as_deref().unwrap_or("-"),
            error = %error,
            "containment refusal"
        );
    }
    result.map_err(|r| r.error)
}

/// The workspace's root.
fn root(cx: &Cx<'_>) -> Result<PathBuf, OpError> {
    Ok(cx.rt()?.workspace.root.clone())
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

/// A handler for a folder operation: `$body` → `$reply` by a blocking call on the root.
macro_rules! fs_handler {
    ($name:ident, $body:ty => $reply:ty, |$root:ident, $q:ident| $run:expr) => {
        impl Handler for op::$name {
            async fn handle(cx: &Cx<'_>, $q: $body) -> Result<$reply, OpError> {
                let $root = root(cx)?;
                contained(cx, async move { $run }).await
            }
        }
    };
}

fs_handler!(FsList, FsPath => FsListing, |root, q| {
    let p = rel(&q.path)?;
    blocking(move || fsops::list(&root, &p, Strategy::Auto)).await
});
fs_handler!(FsMkdir, FsPath => FsDone, |root, q| {
    let p = rel(&q.path)?;
    blocking(move || fsops::mkdir(&root, &p, Strategy::Auto)).await
});
fs_handler!(FsRmdir, FsPath => FsDone, |root, q| {
    let p = rel(&q.path)?;
    blocking(move || fsops::rmdir(&root, &p, Strategy::Auto)).await
});
fs_handler!(FsRename, FsRename => FsDone, |root, q| {
    let (from, to) = (rel(&q.from)?, rel(&q.to)?);
    blocking(move || fsops::rename(&root, &from, &to, Strategy::Auto)).await
});

/// A handler for a git operation: opens the repository at the body's folder and runs `$run`.
macro_rules! git_handler {
    ($name:ident, $body:ty => $reply:ty, |$cx:ident, $d:ident, $q:ident| $dir:expr, $run:expr) => {
        impl Handler for op::$name {
            async fn handle($cx: &Cx<'_>, $q: $body) -> Result<$reply, OpError> {
                let root = root($cx)?;
                contained($cx, async {
                    let $d = gitops::open(&root, $dir)?;
                    Ok::<_, Refusal>($run.await?)
                })
                .await
            }
        }
    };
}

git_handler!(GitStatus, GitScope => GitStatus, |cx, d, q| &q.dir, gitops::status(&d));
git_handler!(GitBranchList, GitScope => GitBranches, |cx, d, q| &q.dir, gitops::branches(&d));
git_handler!(GitDiff, GitDiffQuery => GitDiff, |cx, d, q| &q.scope.dir, gitops::diff(&d, &q));
git_handler!(GitLog, GitLogQuery => GitLog, |cx, d, q| &q.scope.dir, gitops::log(&d, &q));
git_handler!(GitAdd, GitAdd => GitStatus, |cx, d, q| &q.scope.dir, gitops::add(&d, &q));
git_handler!(GitCommit, GitCommit => GitCommitted, |cx, d, q| &q.scope.dir,
    gitops::commit(&d, &q, cx.fwd.principal.as_str()));
git_handler!(GitBranchCreate, GitBranchCreate => GitBranches, |cx, d, q| &q.scope.dir,
    gitops::branch_create(&d, &q));
git_handler!(GitCheckout, GitCheckout => GitBranches, |cx, d, q| &q.scope.dir,
    gitops::checkout(&d, &q));
git_handler!(GitPull, GitRemoteQuery => GitOutput, |cx, d, q| &q.scope.dir, gitops::pull(&d, &q));
git_handler!(GitPush, GitRemoteQuery => GitOutput, |cx, d, q| &q.scope.dir, gitops::push(&d, &q));
git_handler!(GitConfig, GitConfigSet => GitConfigDone, |cx, d, q| &q.scope.dir,
    gitsetup::config(&d, &q, cx.workspaces.git_settings()));

impl Handler for op::GitInit {
    async fn handle(cx: &Cx<'_>, q: GitScope) -> Result<GitInitialized, OpError> {
        let root = root(cx)?;
        contained(cx, async {
            Ok::<_, Refusal>(gitsetup::init(&root, &q.dir).await?)
        })
        .await
    }
}

impl StreamHandler for op::GitClone {
    async fn serve<W, G>(cx: &Cx<'_>, q: GitClone, send: &mut W, peer_gone: G)
    where
        W: AsyncWrite + Unpin + Send,
        G: Future<Output = ()> + Send,
    {
        let settings = cx.workspaces.git_settings();
        let prepared = match root(cx) {
            Ok(root) => {
                contained(cx, async {
                    Ok::<_, Refusal>(gitsetup::prepare_clone(&root, &q, settings).await?)
                })
                .await
            }
            Err(e) => Err(e),
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                super::write_reply(send, Err(e)).await;
                return;
            }
        };
        let started = GitCloneStarted {
            dir: prepared.dir().to_owned(),
        };
        if write_frame(send, &Reply::Ok(started), MAX_FRAME_LEN)
            .await
            .is_err()
        {
            // The operator is gone before the clone started: nothing to keep.
            let _ = prepared.run(settings, |_| {}, std::future::ready(())).await;
            return;
        }
        // Progress goes out when its phase or percent changes; a slow reader loses reports,
        // never the clone.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<GitProgress>(16);
        let mut shown: Option<(String, Option<u8>)> = None;
        let report = move |p: &GitProgress| {
            let key = (p.phase.clone(), p.percent);
            if shown.as_ref() != Some(&key) {
                shown = Some(key);
                let _ = tx.try_send(p.clone());
            }
        };
        let clone = prepared.run(settings, report, peer_gone);
        tokio::pin!(clone);
        let result = loop {
            tokio::select! {
                r = &mut clone => break r,
                Some(p) = rx.recv() => {
                    let _ = write_frame(send, &GitCloneEvent::Progress(p), MAX_FRAME_LEN).await;
                }
            }
        };
        let last = match contained(cx, async { result.map_err(Refusal::from) }).await {
            Ok(done) => GitCloneEvent::Done(done),
            Err(e) => GitCloneEvent::Failed(e.public()),
        };
        let _ = write_frame(send, &last, MAX_FRAME_LEN).await;
    }
}
