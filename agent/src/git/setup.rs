//! The operations that create or configure a repository: `git_init` (a new or empty folder),
//! `git_clone` (an allowed URL into a new folder, bounded in time and size, its partial folder
//! removed when stopped or failed) and `git_config` (an allowlist of keys, see [`super::keys`]).
//! Folders are created and opened through folder containment; git runs in the opened folder.

use super::GitError;
use super::keys;
use super::ops::open;
use super::policy::GitSettings;
use super::progress;
use super::run::{Git, GitDir};
use crate::fs::FsError;
use crate::fs::ops as fsops;
use crate::fs::path::RelPath;
use crate::fs::resolve::Strategy;
use proto::git::{GitClone, GitCloned, GitConfigDone, GitConfigSet, GitInitialized, GitProgress};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncReadExt as _;

/// The branch a new repository starts on.
const INITIAL_BRANCH: &str = "main";
/// How often a running clone's folder is measured.
const SIZE_CHECK: Duration = Duration::from_millis(500);
/// Most bytes of git's non-progress messages kept for an error.
const MAX_MESSAGE: usize = 8 * 1024;

/// Creates a folder beneath the root (on the blocking pool).
async fn mkdir(root: &Path, rel: &RelPath) -> Result<(), GitError> {
    let (root, rel) = (root.to_owned(), rel.clone());
    tokio::task::spawn_blocking(move || fsops::mkdir(&root, &rel, Strategy::Auto))
        .await
        .map_err(|e| GitError::failed("mkdir", &e.to_string()))??;
    Ok(())
}

/// The path of an opened folder, through its descriptor (never re-resolved by name).
fn fd_path(d: &GitDir) -> PathBuf {
    Path::new("/proc/self/fd").join(d.fd.as_raw_fd().to_string())
}

/// Whether the opened folder has no entries.
fn is_empty(d: &GitDir) -> Result<bool, GitError> {
    let mut entries = std::fs::read_dir(fd_path(d)).map_err(|e| GitError::Failed {
        what: "init".into(),
        message: format!("cannot read folder {:?}: {e}", d.rel),
    })?;
    Ok(entries.next().is_none())
}

/// `git init` in a new folder, or an existing empty one (the root too, when empty).
///
/// # Errors
/// Containment refusals; a folder that is not empty; git failures.
pub async fn init(root: &Path, dir: &str) -> Result<GitInitialized, GitError> {
    let rel = RelPath::parse(dir).map_err(FsError::from)?;
    if !rel.is_root() {
        match mkdir(root, &rel).await {
            Ok(()) | Err(GitError::Path(FsError::Exists { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    let d = open(root, &rel.to_string())?;
    if !is_empty(&d)? {
        return Err(GitError::Failed {
            what: "init".into(),
            message: format!(
                "folder {:?} is not empty; git_init needs a new or empty folder (git_clone \
                 copies an existing repository)",
                d.rel
            ),
        });
    }
    let folder = d.fd.try_clone().map_err(|e| init_failed(&d, &e))?;
    tokio::task::spawn_blocking(move || write_repository(&folder))
        .await
        .map_err(|e| GitError::failed("init", &e.to_string()))?
        .map_err(|e| init_failed(&d, &e))?;
    // What git makes of it: a repository with a work tree, entirely beneath the root.
    super::pin::pinned(&d).await?;
    Ok(GitInitialized { dir: d.rel.clone() })
}

fn init_failed(d: &GitDir, e: &std::io::Error) -> GitError {
    GitError::Failed {
        what: "init".into(),
        message: format!(
            "cannot create the repository in {:?}: {e} (something else changed the folder?)",
            d.rel
        ),
    }
}

/// The config of a new repository (what `git init` writes on Linux).
const NEW_CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\
                          \tbare = false\n\tlogallrefupdates = true\n";

/// Writes an empty repository (`.git` with `HEAD`, `config`, `objects/`, `refs/heads/`,
/// `refs/tags/`) into the opened folder. Every step is relative to a descriptor this function
/// created: each folder is made with `mkdirat` (failing if the name exists) and opened without
/// following links, each file created exclusively. Unlike running `git init`, a `.git` link
/// swapped in by something else in the workspace can make this fail but never makes it write
/// elsewhere.
fn write_repository(folder: &std::os::fd::OwnedFd) -> std::io::Result<()> {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    use std::io::Write as _;
    let dir_mode = Mode::from_raw_mode(0o755);
    let open_dir = |at: &std::os::fd::OwnedFd, name: &str| {
        openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let write_new = |at: &std::os::fd::OwnedFd, name: &str, text: &str| -> std::io::Result<()> {
        let fd = openat(
            at,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
        std::fs::File::from(fd).write_all(text.as_bytes())
    };
    mkdirat(folder, ".git", dir_mode)?;
    let git = open_dir(folder, ".git")?;
    mkdirat(&git, "objects", dir_mode)?;
    mkdirat(&git, "refs", dir_mode)?;
    let refs = open_dir(&git, "refs")?;
    mkdirat(&refs, "heads", dir_mode)?;
    mkdirat(&refs, "tags", dir_mode)?;
    write_new(&git, "config", NEW_CONFIG)?;
    write_new(&git, "HEAD", &format!("ref: refs/heads/{INITIAL_BRANCH}\n"))?;
    Ok(())
}

/// Sets one allowlisted key in the repository's own config.
///
/// # Errors
/// A key outside the allowlist (with the list); a refused value; not a repository.
pub async fn config(
    d: &GitDir,
    q: &GitConfigSet,
    settings: &GitSettings,
) -> Result<GitConfigDone, GitError> {
    let key = keys::check(&q.key, &q.value, settings)?;
    Git::new(
        d,
        ["config", "--local", "--replace-all", "--end-of-options"],
    )
    .args([key.as_str(), q.value.as_str()])
    .run()
    .await
    .map_err(|e| match e {
        GitError::Failed { message, .. } if message.contains("not a git repository") => {
            GitError::NotARepo { dir: d.rel.clone() }
        }
        e => e,
    })?;
    Ok(GitConfigDone {
        key,
        value: q.value.clone(),
    })
}

/// A single-quoted word for the shell git runs `GIT_SSH_COMMAND` with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A clone whose URL and folder were accepted: the folder exists (created here, so the clone
/// never writes into anything that was there before, and removing it on failure removes only
/// the clone) and is open.
#[derive(Debug)]
pub struct PreparedClone {
    root: PathBuf,
    rel: RelPath,
    d: GitDir,
    url: String,
}

impl PreparedClone {
    /// The new folder, relative to the root.
    pub fn dir(&self) -> &str {
        &self.d.rel
    }

    /// Runs the clone. `on_progress` sees each progress report; when `abort` resolves first,
    /// git is stopped. On any failure the folder is removed.
    ///
    /// # Errors
    /// Git failures; the time or size bound; an abort.
    pub async fn run(
        self,
        settings: &GitSettings,
        on_progress: impl FnMut(&GitProgress) + Send,
        abort: impl std::future::Future<Output = ()> + Send,
    ) -> Result<GitCloned, GitError> {
        let result = run_clone(&self.d, &self.url, settings, on_progress, abort).await;
        match result {
            Ok(progress) => {
                let (branch, head) = checked_out(&self.d).await;
                Ok(GitCloned {
                    dir: self.d.rel.clone(),
                    branch,
                    head,
                    progress,
                })
            }
            Err(e) => {
                remove(&self.root, &self.rel, &self.d).await;
                Err(e)
            }
        }
    }
}

/// Checks a clone's URL and folder and creates the folder.
///
/// # Errors
/// A refused URL or folder; an existing folder.
pub async fn prepare_clone(
    root: &Path,
    q: &GitClone,
    settings: &GitSettings,
) -> Result<PreparedClone, GitError> {
    let url = settings.check_url("clone URL", &q.url)?.to_owned();
    let rel = RelPath::parse(&q.dir).map_err(FsError::from)?;
    if rel.is_root() {
        return Err(GitError::Path(FsError::Exists {
            path: "the workspace root".into(),
        }));
    }
    mkdir(root, &rel).await?;
    let d = open(root, &rel.to_string())?;
    Ok(PreparedClone {
        root: root.to_owned(),
        rel,
        d,
        url,
    })
}

/// Why a clone was stopped.
enum Stopped {
    Time,
    Size(u64),
    Aborted,
}

async fn run_clone(
    d: &GitDir,
    url: &str,
    settings: &GitSettings,
    mut on_progress: impl FnMut(&GitProgress) + Send,
    abort: impl std::future::Future<Output = ()> + Send,
) -> Result<Option<GitProgress>, GitError> {
    let submodules = if settings.submodules {
        "--recurse-submodules"
    } else {
        "--no-recurse-submodules"
    };
    let mut git = Git::new(
        d,
        [
            "clone",
            "--progress",
            "--template=",
            submodules,
            "--",
            url,
            ".",
        ],
    )
    .config("http.followRedirects=false")
    .config("transfer.fsckObjects=true")
    .env("GIT_ALLOW_PROTOCOL", settings.allowed_protocols())
    .timeout(settings.clone_timeout);
    if let Some(key) = &settings.ssh_key {
        git = git.env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -o BatchMode=yes -o IdentitiesOnly=yes -i {}",
                shell_quote(&key.to_string_lossy())
            ),
        );
    }
    let bound = git.time_bound();
    let mut child = git.command(None).spawn().map_err(GitError::Spawn)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut last: Option<GitProgress> = None;
    let mut messages = String::new();
    let run = async {
        let drain = async {
            if let Some(mut out) = stdout {
                let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
            }
        };
        let read = async {
            let Some(mut err) = stderr else { return };
            let mut pending = String::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                let Some(end) = pending.rfind(['\r', '\n']) else {
                    continue;
                };
                let complete: String = pending.drain(..=end).collect();
                for line in progress::lines(&complete) {
                    if let Some(p) = progress::parse_line(line) {
                        tracing::debug!(phase = %p.phase, percent = ?p.percent, bytes = ?p.bytes, "clone progress");
                        on_progress(&p);
                        last = Some(p);
                    } else if messages.len() < MAX_MESSAGE {
                        messages.push_str(line.trim());
                        messages.push('\n');
                    }
                }
            }
            if messages.len() < MAX_MESSAGE {
                messages.push_str(pending.trim());
            }
        };
        tokio::join!(drain, read);
        child.wait().await
    };
    let path = fd_path(d);
    let outcome = tokio::select! {
        status = run => Ok(status),
        () = tokio::time::sleep(bound) => Err(Stopped::Time),
        size = too_large(path, settings.clone_max_bytes) => Err(Stopped::Size(size)),
        () = abort => Err(Stopped::Aborted),
    };
    match outcome {
        Ok(Ok(status)) if status.success() => {
            // Measured once more: a clone faster than the periodic check is bounded too.
            let p = fd_path(d);
            let size = tokio::task::spawn_blocking(move || size_of(&p))
                .await
                .unwrap_or(0);
            if size > settings.clone_max_bytes {
                return Err(too_large_error(size, settings));
            }
            Ok(last)
        }
        Ok(Ok(_)) => Err(GitError::failed("clone", messages.trim())),
        Ok(Err(e)) => Err(GitError::Spawn(e)),
        Err(stopped) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(match stopped {
                Stopped::Time => GitError::Timeout {
                    what: "clone".into(),
                    after: bound,
                },
                Stopped::Size(size) => too_large_error(size, settings),
                Stopped::Aborted => GitError::Failed {
                    what: "clone".into(),
                    message: "aborted by the operator; its folder was removed".into(),
                },
            })
        }
    }
}

fn too_large_error(size: u64, settings: &GitSettings) -> GitError {
    GitError::Failed {
        what: "clone".into(),
        message: format!(
            "stopped: the clone grew to {size} bytes, past this host's limit of {} bytes \
             ([git] clone_max_size); its folder was removed",
            settings.clone_max_bytes
        ),
    }
}

/// Resolves with the folder's size once it is above `max` (measured every [`SIZE_CHECK`]).
async fn too_large(path: PathBuf, max: u64) -> u64 {
    let mut tick = tokio::time::interval(SIZE_CHECK);
    loop {
        tick.tick().await;
        let p = path.clone();
        let size = tokio::task::spawn_blocking(move || size_of(&p))
            .await
            .unwrap_or(0);
        if size > max {
            return size;
        }
    }
}

/// Bytes of the files beneath `dir`, never following links.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                total = total.saturating_add(md.len());
            }
        }
    }
    total
}

/// The checked-out branch and commit of a fresh clone (`None`s for an empty repository).
async fn checked_out(d: &GitDir) -> (Option<String>, Option<String>) {
    let text = |o: Result<super::run::Output, GitError>| {
        o.ok()
            .filter(|o| o.ok)
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let branch = text(
        Git::new(d, ["symbolic-ref", "--short", "-q", "HEAD"])
            .output()
            .await,
    );
    let head = text(
        Git::new(d, ["rev-parse", "--verify", "-q", "HEAD"])
            .output()
            .await,
    );
    (branch, head)
}

/// Removes a failed clone's folder: its entries through the opened descriptor (links are
/// removed, never followed), then the folder itself through containment.
async fn remove(root: &Path, rel: &RelPath, d: &GitDir) {
    let path = fd_path(d);
    let (root, rel) = (root.to_owned(), rel.clone());
    let done = tokio::task::spawn_blocking(move || {
        if let Ok(entries) = std::fs::read_dir(&path) {
            for e in entries.flatten() {
                let p = e.path();
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let _ = if is_dir {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        fsops::rmdir(&root, &rel, Strategy::Auto)
    })
    .await;
    if !matches!(done, Ok(Ok(_))) {
        tracing::warn!(dir = %d.rel, "could not remove a failed clone's folder");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_folder(p: &Path) -> std::os::fd::OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn a_git_link_planted_in_the_folder_is_never_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let folder = tmp.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        std::os::unix::fs::symlink(&outside, folder.join(".git")).unwrap();
        assert!(write_repository(&open_folder(&folder)).is_err());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

        let fresh = tmp.path().join("fresh");
        std::fs::create_dir(&fresh).unwrap();
        write_repository(&open_folder(&fresh)).unwrap();
        assert_eq!(
            std::fs::read_to_string(fresh.join(".git/HEAD")).unwrap(),
            "ref: refs/heads/main\n"
        );
        assert!(fresh.join(".git/refs/heads").is_dir());
    }
}
