//! The adversarial containment suite: folder and git operations sent to a real agent (its
//! operations layer serving forwarded streams, as the relay forwards them) that try every way
//! out of the workspace root. Each refusal must carry the right rule, and a sentinel folder
//! outside the root is hashed (blake3 over a sorted walk: names, kinds, modes, contents, link
//! targets) before and after and must be byte-for-byte unchanged.
//!
//! Folder and git operations never start OpenCode (their fixture names a missing binary); the
//! `opencode` module runs the real one with the test model.

#![allow(
    clippy::unwrap_used,
    unreachable_pub,
    missing_debug_implementations,
    reason = "test harness code"
)]

#[path = "../opencode/harness.rs"]
#[allow(dead_code, reason = "shared harness; this suite uses part of it")]
mod harness;

mod added;
mod fs;
mod git;
mod opencode;
mod race;
mod setup;
mod templates;

use anyhow::{Context as _, Result, bail};
use harness::Env;
use proto::header::Op;
use proto::message::Reply;
use proto::rbac::Role;
use proto::wire_error::{ErrorCode, WireError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace every test uses.
pub const WS: &str = "demo";

/// A blake3 hash of everything beneath `dir`, never following links.
pub fn hash_tree(dir: &Path) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = dir.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&full)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names.into_iter().rev() {
            let r = rel.join(&name);
            let p = dir.join(&r);
            let md = std::fs::symlink_metadata(&p).unwrap();
            h.update(r.as_os_str().as_encoded_bytes());
            h.update(&[0]);
            h.update(&md.mode().to_le_bytes());
            if md.is_symlink() {
                h.update(
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_encoded_bytes(),
                );
            } else if md.is_file() {
                h.update(&std::fs::read(&p).unwrap());
            } else if md.is_dir() {
                stack.push(r);
            }
            h.update(&[0]);
        }
    }
    h.finalize()
}

/// Runs git in `dir` (test set-up, with the test's own environment).
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git").args(args).current_dir(dir).output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One agent with workspace [`WS`] (a git repository) and a sentinel folder beside its root.
pub struct Fixture {
    pub env: Env,
    pub root: PathBuf,
    pub sentinel: PathBuf,
    before: blake3::Hash,
}

impl Fixture {
    pub async fn new() -> Result<Self> {
        // Folder and git operations never start OpenCode; a missing binary proves it.
        let env = Env::start(&[WS], Some(PathBuf::from("/nonexistent/opencode"))).await?;
        let root = env.root(WS);
        let sentinel = env.tmp.path().join("sentinel");
        std::fs::create_dir_all(sentinel.join("empty"))?;
        std::fs::create_dir_all(sentinel.join("full"))?;
        std::fs::write(sentinel.join("full/inner.txt"), "inner\n")?;
        std::fs::write(sentinel.join("secret.txt"), "do not touch\n")?;
        std::fs::set_permissions(
            sentinel.join("secret.txt"),
            std::fs::Permissions::from_mode(0o640),
        )?;
        git(&sentinel, &["init", "-q", "--bare", "outside.git"])?;
        let before = hash_tree(&sentinel);
        Ok(Self {
            env,
            root,
            sentinel,
            before,
        })
    }

    /// The sentinel is byte-for-byte what it was at set-up.
    pub fn assert_sentinel_unchanged(&self, case: &str) {
        assert_eq!(
            hash_tree(&self.sentinel),
            self.before,
            "{case}: the sentinel folder outside the root changed"
        );
    }

    /// One operation as an operator.
    pub async fn call<T: DeserializeOwned>(&self, op: Op, body: Value) -> Result<Reply<T>> {
        self.env
            .call_as(Role::Operator, op, Some(WS), None, Some(body))
            .await
    }

    /// An operation that must succeed.
    pub async fn ok<T: DeserializeOwned>(&self, op: Op, body: Value) -> Result<T> {
        match self.call::<T>(op, body.clone()).await? {
            Reply::Ok(t) => Ok(t),
            Reply::Error(e) => bail!("{} {body} failed: {e}", op.as_str()),
        }
    }

    /// An operation that must fail; its error.
    pub async fn err(&self, op: Op, body: Value) -> Result<WireError> {
        match self.call::<Value>(op, body.clone()).await? {
            Reply::Ok(v) => bail!("{} {body} succeeded: {v}", op.as_str()),
            Reply::Error(e) => Ok(e),
        }
    }

    /// An operation that must be refused by containment rule `rule` (code `forbidden`, message
    /// naming the rule), leaving the sentinel unchanged.
    pub async fn refused(&self, op: Op, body: Value, rule: &str) -> Result<WireError> {
        let e = self
            .err(op, body.clone())
            .await
            .with_context(|| format!("expected refusal {rule}"))?;
        assert_eq!(
            e.code,
            ErrorCode::Forbidden,
            "{} {body}: {}",
            op.as_str(),
            e.message
        );
        assert!(
            e.message.contains(&format!("refused ({rule})")),
            "{} {body}: expected rule {rule}, got: {}",
            op.as_str(),
            e.message
        );
        self.assert_sentinel_unchanged(&format!("{} {body}", op.as_str()));
        Ok(e)
    }
}
