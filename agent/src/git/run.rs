//! Running the real `git` binary with a fixed environment and a fixed set of overrides, in a
//! folder opened beneath the workspace root, with bounded output and time.
//!
//! - The environment is cleared, then: `PATH`, `HOME` and `SSH_AUTH_SOCK` are kept (ssh keys
//!   for push and pull); `GIT_CONFIG_NOSYSTEM=1` and `GIT_CONFIG_GLOBAL=/dev/null` (only the
//!   repository's own config applies); `GIT_TERMINAL_PROMPT=0`, `GIT_EDITOR=true`,
//!   `GIT_PAGER=cat`, `GIT_SSH_COMMAND=ssh -o BatchMode=yes` (no prompt ever waits; this also
//!   overrides a `core.sshCommand` in the repository's config);
//!   `GIT_ALLOW_PROTOCOL=https:http:ssh:git` (no `file`, `ext` or other helper transports, also
//!   for submodules); `GIT_LITERAL_PATHSPECS=1` (no pathspec magic); `GIT_CEILING_DIRECTORIES`
//!   set to the root's parent (repository discovery never climbs above the root).
//! - Overrides on every command line (`-c`): `core.hooksPath=/dev/null` (no hooks run),
//!   `core.fsmonitor=false` (a repository cannot name a program for `status` to run),
//!   `protocol.file.allow=never`, `protocol.ext.allow=never`, `commit.gpgSign=false`,
//!   `tag.gpgSign=false`, `submodule.recurse=false`, `color.ui=false`,
//!   `safe.bareRepository=explicit` (a bare-repository layout inside the workspace is never
//!   discovered), `log.showSignature=false` and every `gpg.*program` set to a no-op (showing a
//!   signed commit never runs a verifier), `credential.helper=` (the empty value clears every
//!   helper, also URL-specific ones), `core.askPass` and `core.alternateRefsCommand` set to a
//!   no-op, `http.saveCookies=false`, `http.cookieFile=`; `--no-pager`.
//! - Environment overrides of settings a repository could set: `GIT_ASKPASS` and
//!   `SSH_ASKPASS` are a no-op program (`SSH_ASKPASS_REQUIRE=never`), `GIT_PROXY_COMMAND` is
//!   empty (git then ignores `core.gitProxy`, whose first value would otherwise win),
//!   `GIT_SEQUENCE_EDITOR` is a no-op.
//! - Every operation first resolves its repository with discovery ([`super::pin`]); every
//!   command afterwards runs with `GIT_DIR` and `GIT_WORK_TREE` set to the checked paths, so
//!   a `.git` file, link or `core.worktree` changed later is not followed, and with every
//!   filter driver the repository configures (`filter.<name>.clean`, `smudge`, `process`)
//!   emptied, so `.gitattributes` cannot make status, diff, add or checkout run a program,
//!   and every URL-specific `http.<url>.cookieFile`/`saveCookies` neutralized.
//! - The working directory is the fd from containment, entered via `/proc/self/fd/N`, so a folder
//!   swapped for a link after the check is not followed.

use super::GitError;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Command;

/// Bound for local git commands.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound for `pull` and `push`.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(180);
/// At most this much of stderr is kept (for the operator's error).
const MAX_STDERR: usize = 16 * 1024;
/// Default bound on stdout.
pub const MAX_STDOUT: usize = 8 * 1024 * 1024;

/// The `-c` overrides on every command line that need no program path.
const OVERRIDES: [&str; 13] = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "protocol.file.allow=never",
    "protocol.ext.allow=never",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "submodule.recurse=false",
    "color.ui=false",
    "safe.bareRepository=explicit",
    "log.showSignature=false",
    "credential.helper=",
    "http.saveCookies=false",
    "http.cookieFile=",
];

/// Settings that name a program, each set to the no-op program.
const PROGRAMS: [&str; 6] = [
    "gpg.program",
    "gpg.openpgp.program",
    "gpg.x509.program",
    "gpg.ssh.program",
    "core.askPass",
    "core.alternateRefsCommand",
];

/// An absolute path to a program that does nothing and fails (`false`), so a prompt or a
/// verifier gives up at once; never looked up in a `PATH` the workspace could influence.
fn no_op() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        ["/usr/bin/false", "/bin/false"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .unwrap_or("false")
    })
}

/// Where git runs: a folder opened beneath a workspace root.
#[derive(Debug)]
pub struct GitDir {
    /// The open folder (kept open while git runs).
    pub fd: OwnedFd,
    /// The workspace root (for the discovery ceiling).
    pub root: PathBuf,
    /// The folder relative to the root, for messages.
    pub rel: String,
    /// The repository resolved and checked once per operation ([`super::pin`]).
    pub pinned: tokio::sync::OnceCell<super::pin::Pinned>,
}

impl GitDir {
    /// A folder opened beneath `root`.
    pub fn new(fd: OwnedFd, root: PathBuf, rel: String) -> Self {
        Self {
            fd,
            root,
            rel,
            pinned: tokio::sync::OnceCell::new(),
        }
    }
}

/// What a finished git command produced.
#[derive(Debug)]
pub struct Output {
    /// Exit success.
    pub ok: bool,
    /// Stdout, at most the limit.
    pub stdout: Vec<u8>,
    /// Whether stdout was longer than the limit (the command was stopped).
    pub truncated: bool,
    /// Stderr, bounded.
    pub stderr: String,
}

/// One git invocation.
#[derive(Debug)]
pub struct Git<'a> {
    dir: &'a GitDir,
    args: Vec<OsString>,
    env: Vec<(&'static str, String)>,
    limit: usize,
    timeout: Duration,
    /// More `-c` overrides, after the fixed ones (so they win).
    config: Vec<String>,
}

impl<'a> Git<'a> {
    /// `git <args…>` in `dir`.
    pub fn new(dir: &'a GitDir, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Self {
            dir,
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            limit: MAX_STDOUT,
            timeout: LOCAL_TIMEOUT,
            config: Vec::new(),
        }
    }

    /// Appends arguments.
    #[must_use]
    pub fn args(mut self, more: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.args.extend(more.into_iter().map(Into::into));
        self
    }

    /// Sets an extra environment variable.
    #[must_use]
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.env.push((key, value.into()));
        self
    }

    /// Bounds stdout (the command is stopped past it and the output marked truncated).
    #[must_use]
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// Bounds the run time.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Adds a `-c key=value` override (after the fixed ones, so it wins over them).
    #[must_use]
    pub fn config(mut self, key_value: impl Into<String>) -> Self {
        self.config.push(key_value.into());
        self
    }

    pub(super) fn command(&self, pinned: Option<&super::pin::Pinned>) -> Command {
        let mut cmd = Command::new("git");
        cmd.env_clear();
        for key in ["PATH", "HOME", "SSH_AUTH_SOCK"] {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        cmd.env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_EDITOR", "true")
            .env("GIT_PAGER", "cat")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
            .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:git")
            .env("GIT_LITERAL_PATHSPECS", "1")
            .env("GIT_ASKPASS", no_op())
            .env("SSH_ASKPASS", no_op())
            .env("SSH_ASKPASS_REQUIRE", "never")
            .env("GIT_PROXY_COMMAND", "")
            .env("GIT_SEQUENCE_EDITOR", "true");
        if let Some(parent) = self.dir.root.parent() {
            cmd.env("GIT_CEILING_DIRECTORIES", parent);
        }
        if let Some(p) = pinned {
            cmd.env("GIT_DIR", &p.git_dir)
                .env("GIT_WORK_TREE", &p.work_tree);
            // The repository's filter drivers and URL-specific cookie files, neutralized.
            // Passed as GIT_CONFIG_KEY_n/VALUE_n, which needs no quoting of the names.
            cmd.env("GIT_CONFIG_COUNT", p.overrides.len().to_string());
            for (i, (key, value)) in p.overrides.iter().enumerate() {
                cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
                    .env(format!("GIT_CONFIG_VALUE_{i}"), value);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.arg("--no-pager");
        for o in OVERRIDES {
            cmd.arg("-c").arg(o);
        }
        for key in PROGRAMS {
            cmd.arg("-c").arg(format!("{key}={}", no_op()));
        }
        for kv in &self.config {
            cmd.arg("-c").arg(kv);
        }
        cmd.args(&self.args)
            .current_dir(Path::new("/proc/self/fd").join(self.dir.fd.as_raw_fd().to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs to completion (or the bounds).
    ///
    /// # Errors
    /// Git missing, or the time bound passed.
    pub async fn output(self) -> Result<Output, GitError> {
        let pinned = super::pin::pinned(self.dir).await?;
        self.exec(Some(pinned)).await
    }

    /// Runs with git's own repository discovery instead of the pinned repository (only
    /// [`super::pin`] does, to find the repository).
    ///
    /// # Errors
    /// As [`Self::output`].
    pub(super) async fn discovering(self) -> Result<Output, GitError> {
        self.exec(None).await
    }

    /// Runs in `pinned` (only [`super::pin`] calls it directly, while pinning).
    ///
    /// # Errors
    /// As [`Self::output`].
    pub(super) async fn exec(
        self,
        pinned: Option<&super::pin::Pinned>,
    ) -> Result<Output, GitError> {
        let what = self
            .args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut child = self.command(pinned).spawn().map_err(GitError::Spawn)?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let run = async {
            let (out, err) = tokio::join!(
                read_bounded(stdout, self.limit),
                read_bounded(stderr, MAX_STDERR)
            );
            let (stdout, truncated) = out;
            if truncated {
                let _ = child.start_kill();
            }
            let status = child.wait().await;
            (stdout, truncated, err.0, status)
        };
        let (stdout, truncated, stderr, status) = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| GitError::Timeout {
                what: what.clone(),
                after: self.timeout,
            })?;
        let ok = status.map(|s| s.success()).unwrap_or(false) || truncated;
        Ok(Output {
            ok,
            stdout,
            truncated,
            stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
        })
    }

    /// Runs and requires success; a failure carries git's message.
    ///
    /// # Errors
    /// As [`Self::output`], or [`GitError::Failed`].
    pub async fn run(self) -> Result<Output, GitError> {
        let what = self
            .args
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self.output().await?;
        if out.ok {
            Ok(out)
        } else {
            Err(GitError::failed(&what, &out.stderr))
        }
    }
}

/// Reads at most `limit` bytes; reports whether there was more.
async fn read_bounded<R: AsyncRead + Unpin>(r: Option<R>, limit: usize) -> (Vec<u8>, bool) {
    let Some(r) = r else {
        return (Vec::new(), false);
    };
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut take = r.take(cap);
    if take.read_to_end(&mut buf).await.is_err() {
        return (buf, false);
    }
    if buf.len() > limit {
        buf.truncate(limit);
        return (buf, true);
    }
    (buf, false)
}
