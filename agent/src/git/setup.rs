//! The operations that create or configure a repository: `git_init` (a new or empty folder),
//! `git_clone` (an allowed URL into a new folder, bounded in time and size, assembled in the
//! agent's staging folder and moved in when complete, see [`super::staging`]; its partial
//! folder removed when stopped or failed) and `git_config` (an allowlist of keys, see [`super::keys`]).
//! Folders are created and opened through folder containment; git runs in the opened folder.

use super::GitError;
use super::bounded;
use super::keys;
use super::ops::open;
use super::policy::GitSettings;
use super::run::{Git, GitDir};
use crate::fs::FsError;
use crate::fs::ops as fsops;
use crate::fs::path::RelPath;
use crate::fs::resolve::{Strategy, kind_at, open_parent, open_root};
use proto::git::{GitClone, GitCloned, GitConfigDone, GitConfigSet, GitInitialized, GitProgress};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};

/// The branch a new repository starts on.
const INITIAL_BRANCH: &str = "main";

/// Creates a folder beneath the root (on the blocking pool).
async fn mkdir(root: &Path, rel: &RelPath) -> Result<(), GitError> {
    let (root, rel) = (root.to_owned(), rel.clone());
    tokio::task::spawn_blocking(move || fsops::mkdir(&root, &rel, Strategy::Auto))
        .await
        .map_err(|e| GitError::failed("mkdir", &e.to_string()))??;
    Ok(())
}

/// The path of an opened folder, through its descriptor (never re-resolved by name).
pub(super) fn fd_path(d: &GitDir) -> PathBuf {
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

/// Where a clone is made.
#[derive(Debug)]
enum Place {
    /// In a staging folder of the agent ([`super::staging`]), moved to `leaf` in `parent` (the
    /// target's parent, opened through containment) when complete.
    Staged {
        staging: super::staging::Staging,
        parent: OwnedFd,
        leaf: String,
    },
    /// In the target folder itself, created here (so the clone never writes into anything that
    /// was there before, and removing it on failure removes only the clone): no staging folder
    /// is configured, or it is on another filesystem than the workspace. No submodules.
    InPlace { root: PathBuf, rel: RelPath },
}

/// A clone whose URL and folder were accepted: the folder it is made in exists and is open.
#[derive(Debug)]
pub struct PreparedClone {
    place: Place,
    d: GitDir,
    url: String,
}

impl PreparedClone {
    /// The new folder, relative to the root.
    pub fn dir(&self) -> &str {
        &self.d.rel
    }

    /// Runs the clone. `on_progress` sees each progress report; when `abort` resolves first,
    /// git is stopped. On any failure the folder is removed (staged: the staging folder; the
    /// workspace never shows the clone).
    ///
    /// # Errors
    /// Git failures; the time or size bound; an abort.
    pub async fn run(
        self,
        settings: &GitSettings,
        on_progress: impl FnMut(&GitProgress) + Send,
        abort: impl std::future::Future<Output = ()> + Send,
    ) -> Result<GitCloned, GitError> {
        let staged = matches!(self.place, Place::Staged { .. });
        let result = match run_clone(&self.d, &self.url, settings, staged, on_progress, abort).await
        {
            Ok(progress) => {
                let (branch, head) = checked_out(&self.d).await;
                let moved = match &self.place {
                    Place::Staged {
                        staging,
                        parent,
                        leaf,
                    } => staging.move_to(parent, leaf, &self.d.rel),
                    Place::InPlace { .. } => Ok(()),
                };
                moved.map(|()| GitCloned {
                    dir: self.d.rel.clone(),
                    branch,
                    head,
                    progress,
                })
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            match self.place {
                Place::Staged { staging, .. } => staging.remove().await,
                Place::InPlace { root, rel } => remove(&root, &rel, &self.d).await,
            }
        }
        result
    }
}

/// Checks a clone's URL and folder, and creates the folder the clone is made in: a staging
/// folder when the settings name one on the workspace's filesystem, else the target folder.
///
/// # Errors
/// A refused URL or folder; an existing folder; a staging folder that cannot be made.
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
    let Some(clones) = settings.clone_staging.clone() else {
        return prepare_in_place(root, rel, url).await;
    };
    let (root_owned, target) = (root.to_owned(), rel.clone());
    let staged = tokio::task::spawn_blocking(move || stage(&root_owned, &target, &clones))
        .await
        .map_err(|e| GitError::failed("clone", &e.to_string()))??;
    match staged {
        Some((staging, parent, leaf)) => {
            let fd = staging.fd.try_clone().map_err(|e| {
                GitError::failed("clone", &format!("cannot open the staging folder: {e}"))
            })?;
            let d = GitDir::new(fd, staging.path.clone(), rel.to_string());
            Ok(PreparedClone {
                place: Place::Staged {
                    staging,
                    parent,
                    leaf,
                },
                d,
                url,
            })
        }
        None => {
            tracing::info!(dir = %rel, "the agent's state folder is on another filesystem than the workspace: cloning in place (no submodules)");
            prepare_in_place(root, rel, url).await
        }
    }
}

/// Opens the target's parent (containment), checks the target name is free and not `.git`,
/// and makes a staging folder (`None`: it could not be moved there).
fn stage(
    root: &Path,
    rel: &RelPath,
    clones: &Path,
) -> Result<Option<(super::staging::Staging, OwnedFd, String)>, GitError> {
    let root_fd = open_root(root)?;
    let (parent, leaf) = open_parent(&root_fd, rel, Strategy::Auto, "git_clone")?;
    let shown = rel.to_string();
    if leaf.eq_ignore_ascii_case(".git") {
        return Err(GitError::Path(FsError::DotGit { path: shown }));
    }
    if kind_at(&parent, leaf).is_some() {
        return Err(GitError::Path(FsError::Exists { path: shown }));
    }
    let leaf = leaf.to_owned();
    Ok(super::staging::create(clones, &parent, &leaf)?.map(|s| (s, parent, leaf)))
}

async fn prepare_in_place(
    root: &Path,
    rel: RelPath,
    url: String,
) -> Result<PreparedClone, GitError> {
    mkdir(root, &rel).await?;
    let d = open(root, &rel.to_string())?;
    Ok(PreparedClone {
        place: Place::InPlace {
            root: root.to_owned(),
            rel,
        },
        d,
        url,
    })
}

/// Applies what every network step of a clone shares: git's transports limited to the
/// policy's, no redirect followed, objects checked, the host's ssh key.
fn networked<'a>(git: Git<'a>, settings: &GitSettings) -> Git<'a> {
    let mut git = git
        .config("http.followRedirects=false")
        .config("transfer.fsckObjects=true")
        .env("GIT_ALLOW_PROTOCOL", settings.allowed_protocols());
    if let Some(key) = &settings.ssh_key {
        git = git.env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -o BatchMode=yes -o IdentitiesOnly=yes -i {}",
                shell_quote(&key.to_string_lossy())
            ),
        );
    }
    git
}

/// The clone itself (never its submodules), then, when the host allows submodules, the
/// submodules whose URLs all pass the policy ([`super::submodules`]); one time bound for both.
/// Submodules are fetched only in a staging folder (`staged`): a clone made in place that
/// declares submodules fails.
async fn run_clone(
    d: &GitDir,
    url: &str,
    settings: &GitSettings,
    staged: bool,
    mut on_progress: impl FnMut(&GitProgress) + Send,
    abort: impl std::future::Future<Output = ()> + Send,
) -> Result<Option<GitProgress>, GitError> {
    let mut abort = std::pin::pin!(abort);
    let started = tokio::time::Instant::now();
    let clone = networked(
        Git::new(
            d,
            [
                "clone",
                "--progress",
                "--template=",
                "--no-recurse-submodules",
                "--",
                url,
                ".",
            ],
        ),
        settings,
    );
    let bounds = bounded::Bounds {
        time: settings.clone_timeout,
        max_bytes: settings.clone_max_bytes,
        what: "clone",
    };
    let mut last = bounded::run(
        d,
        clone.command(None),
        &bounds,
        &mut on_progress,
        abort.as_mut(),
    )
    .await?;
    if settings.submodules && !staged && super::submodules::declared(d).await? {
        return Err(GitError::failed(
            "clone",
            "submodules need the agent's state folder on the same filesystem as the workspace \
             (a clone with submodules is assembled there, out of OpenCode's reach, and moved \
             in); on this host they are on different filesystems. Run cm-agent with \
             --state-dir on the workspace's filesystem, or set [git] submodules = false; the \
             clone's folder was removed",
        ));
    }
    if settings.submodules && staged && super::submodules::checked(d, url, settings).await? {
        let update = networked(
            Git::new(d, ["submodule", "update", "--checkout", "--progress", "--"]),
            settings,
        );
        let pinned = super::pin::pinned(d).await?;
        let bounds = bounded::Bounds {
            time: settings.clone_timeout.saturating_sub(started.elapsed()),
            what: "submodule update",
            ..bounds
        };
        let sub = bounded::run(
            d,
            update.command(Some(pinned)),
            &bounds,
            &mut on_progress,
            abort.as_mut(),
        )
        .await?;
        last = sub.or(last);
    }
    Ok(last)
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
