//! Running a clone step (`git clone`, `git submodule update`) bounded in time and in the size
//! of its folder, abortable, with git's `--progress` reported as it comes.

use super::GitError;
use super::progress;
use super::run::GitDir;
use super::setup::fd_path;
use proto::git::GitProgress;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

/// How often a running clone's folder is measured.
const SIZE_CHECK: Duration = Duration::from_millis(500);
/// Most bytes of git's non-progress messages kept for an error.
const MAX_MESSAGE: usize = 8 * 1024;

/// The bounds of one step.
#[derive(Debug)]
pub struct Bounds<'a> {
    /// Stop after this long.
    pub time: Duration,
    /// Stop when the folder grows past this many bytes.
    pub max_bytes: u64,
    /// The step's name in messages (`clone`).
    pub what: &'a str,
}

/// Why a step was stopped.
enum Stopped {
    Time,
    Size(u64),
    Aborted,
}

/// Runs `cmd` (in folder `d`) to its end or a bound. `on_progress` sees each progress report;
/// when `abort` resolves first, git is stopped. The last progress report on success.
///
/// # Errors
/// Git failures (with git's messages); the time or size bound; an abort.
pub async fn run<A: std::future::Future<Output = ()> + Send>(
    d: &GitDir,
    mut cmd: Command,
    bounds: &Bounds<'_>,
    on_progress: &mut (impl FnMut(&GitProgress) + Send),
    abort: Pin<&mut A>,
) -> Result<Option<GitProgress>, GitError> {
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
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
        () = tokio::time::sleep(bounds.time) => Err(Stopped::Time),
        size = too_large(path, bounds.max_bytes) => Err(Stopped::Size(size)),
        () = abort => Err(Stopped::Aborted),
    };
    match outcome {
        Ok(Ok(status)) if status.success() => {
            // Measured once more: a step faster than the periodic check is bounded too.
            let p = fd_path(d);
            let size = tokio::task::spawn_blocking(move || size_of(&p))
                .await
                .unwrap_or(0);
            if size > bounds.max_bytes {
                return Err(too_large_error(size, bounds.max_bytes));
            }
            Ok(last)
        }
        Ok(Ok(_)) => Err(GitError::failed(bounds.what, messages.trim())),
        Ok(Err(e)) => Err(GitError::Spawn(e)),
        Err(stopped) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            Err(match stopped {
                Stopped::Time => GitError::Timeout {
                    what: bounds.what.into(),
                    after: bounds.time,
                },
                Stopped::Size(size) => too_large_error(size, bounds.max_bytes),
                Stopped::Aborted => GitError::Failed {
                    what: bounds.what.into(),
                    message: "aborted by the operator; its folder was removed".into(),
                },
            })
        }
    }
}

fn too_large_error(size: u64, max: u64) -> GitError {
    GitError::Failed {
        what: "clone".into(),
        message: format!(
            "stopped: the clone grew to {size} bytes, past this host's limit of {max} bytes \
             ([git] clone_max_size); its folder was removed"
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
