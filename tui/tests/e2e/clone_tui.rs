//! Cloning from the full-screen app (issue 17) through the real binaries: `c` on the
//! workspaces screen, a URL of a repository served by `git daemon` on 127.0.0.1, Enter; the
//! form shows git's progress moving and how the clone ended; Esc aborts a clone under way and
//! the host removes its folder.
//!
//! The daemon sends through a deliberately slow pipe (a few hundred KiB a second), so a clone
//! of a 2 MiB repository takes seconds on any machine: long enough to watch and abort it. The
//! test waits on the screen and the folder, never on time.

use crate::harness::*;
use crate::tmux::{Tmux, line_with};
use anyhow::{Context as _, Result, ensure};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Bytes the daemon may send per slice of [`SLICE`].
const CHUNK: usize = 16 * 1024;
/// How often a chunk may go: 16 KiB every 50 ms is 320 KiB/s.
const SLICE: Duration = Duration::from_millis(50);

/// Runs git (test set-up).
fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A bare repository `name.git` beneath `base` with one commit holding `files` files of
/// `size` bytes each that do not compress (so the pack is as large). Git's percent counts
/// objects: many files make it move while the bytes arrive.
fn bare_repo(base: &Path, name: &str, files: usize, size: usize) -> Result<()> {
    let work = base.join(format!("{name}-work"));
    std::fs::create_dir(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                // xorshift64: incompressible enough for zlib.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        std::fs::write(work.join(format!("blob-{i}.bin")), data)?;
    }
    std::fs::write(work.join("README.md"), format!("{name}\n"))?;
    git(&work, &["add", "."])?;
    git(&work, &["commit", "-qm", "first"])?;
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            &format!("{name}-work"),
            &format!("{name}.git"),
        ],
    )?;
    Ok(())
}

/// `git daemon --inetd` behind a listener on 127.0.0.1 serving the repositories beneath
/// `base`, its answers sent at most [`CHUNK`] per [`SLICE`]; stops with the test's runtime.
async fn slow_git_daemon(base: &Path) -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let base_path = format!("--base-path={}", base.display());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let child = tokio::process::Command::new("git")
                .args(["daemon", "--inetd", "--export-all", &base_path])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn();
            let Ok(mut child) = child else { continue };
            let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take())
            else {
                continue;
            };
            let (mut from_client, mut to_client) = socket.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut stdin).await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; CHUNK];
                let mut tick = tokio::time::interval(SLICE);
                loop {
                    tick.tick().await;
                    match stdout.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if to_client.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = to_client.shutdown().await;
                let _ = child.wait().await;
            });
        }
    });
    Ok(port)
}

/// The progress line's percent on `screen`, if a clone is shown under way.
fn percent(screen: &str) -> Option<u8> {
    let line = line_with(screen, "Receiving objects")?;
    let before = line.split('%').next()?;
    before.split_whitespace().last()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_from_the_full_screen_app_shows_progress_and_aborts() -> Result<()> {
    let served = tempfile::tempdir()?;
    bare_repo(served.path(), "small", 1, 1024)?;
    bare_repo(served.path(), "big", 200, 10 * 1024)?;
    let daemon = format!("git://127.0.0.1:{}", slow_git_daemon(served.path()).await?);
    let world =
        World::start_with(&format!("\n[git]\nclone_from = [\"{daemon}/*\"]\n"), &[]).await?;
    let tmux = Tmux::start(&world)?;
    tmux.wait_for("box online in the host list", |s| {
        line_with(s, " box ").is_some_and(|l| l.contains("● online"))
    })?;
    tmux.press("Enter")?;
    tmux.wait_for("the demo workspace", |s| {
        s.contains("box › workspaces") && line_with(s, "▶ demo").is_some()
    })?;

    // A clone to its end: the folder follows the URL; the form says where it went.
    tmux.press("c")?;
    tmux.wait_text(&["clone into demo", "Enter clone"])?;
    tmux.type_text(&format!("{daemon}/small.git"))?;
    tmux.wait_text(&["folder   small"])?;
    tmux.press("Enter")?;
    let done = tmux.wait_text(&["✓ cloned into small", "branch main at"])?;
    ensure!(done.contains("cloned into small"), "{done}");
    ensure!(
        std::fs::read_to_string(world.workspace.join("small/README.md"))? == "small\n",
        "the clone is in the workspace"
    );
    tmux.press("Enter")?;
    tmux.wait_for("the form to close", |s| !s.contains("clone into demo"))?;

    // A slow clone: progress moves on screen, Esc aborts it, the host removes the folder.
    tmux.press("c")?;
    tmux.wait_text(&["clone into demo"])?;
    tmux.type_text(&format!("{daemon}/big.git"))?;
    tmux.wait_text(&["folder   big"])?;
    tmux.press("Enter")?;
    let first = tmux.wait_for("clone progress under 100%", |s| {
        percent(s).is_some_and(|p| p < 90)
    })?;
    let seen = percent(&first).unwrap_or_default();
    let moved = tmux.wait_for("the progress to move", |s| {
        percent(s).is_some_and(|p| p > seen && p < 100)
    })?;
    ensure!(moved.contains("░"), "the bar is not full yet:\n{moved}");
    // The clone is assembled in the agent's state folder; the workspace shows it when done.
    let staging = world.agent_state.join("clones");
    ensure!(
        !world.workspace.join("big").exists()
            && std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()),
        "the clone is under way in {}, not in the workspace",
        staging.display()
    );
    tmux.press("Escape")?;
    tmux.wait_text(&["clone aborted"])?;
    let deadline = Instant::now() + WAIT;
    while std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some()) {
        ensure!(
            Instant::now() < deadline,
            "the aborted clone's folder is still there"
        );
        // Polling the host's folder (another process removes it); bounded by the deadline.
        std::thread::park_timeout(Duration::from_millis(100));
    }
    tmux.press("q")?;
    Ok(())
}

/// The last percent of "Receiving objects" in `cm-tui git … clone`'s stderr so far (git's
/// progress lines are redrawn with `\r`).
fn cli_percent(stderr: &str) -> Option<u8> {
    let last = stderr.rsplit("Receiving objects").next()?;
    if std::ptr::eq(last, stderr) {
        return None;
    }
    last.split('%')
        .next()?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_from_the_command_line_shows_moving_progress_and_ctrl_c_removes_the_folder()
-> Result<()> {
    use std::io::Read as _;
    let served = tempfile::tempdir()?;
    bare_repo(served.path(), "big", 200, 10 * 1024)?;
    let daemon = format!("git://127.0.0.1:{}", slow_git_daemon(served.path()).await?);
    let world =
        World::start_with(&format!("\n[git]\nclone_from = [\"{daemon}/*\"]\n"), &[]).await?;
    let mut child = std::process::Command::new(bin("cm-tui")?)
        .args([
            "git",
            "box",
            "demo",
            "clone",
            &format!("{daemon}/big.git"),
            "big",
        ])
        .envs(world.tui_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    // Read stderr until git's percent has moved twice below 100 (the clone takes seconds).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = String::new();
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            if tx.send(all.clone()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut last = String::new();
    while seen.len() < 2 {
        last = rx
            .recv_timeout(WAIT)
            .with_context(|| format!("no moving progress; stderr so far: {last:?}"))?;
        if let Some(p) = cli_percent(&last).filter(|p| *p < 100 && seen.last() != Some(p)) {
            seen.push(p);
        }
    }
    ensure!(seen[0] < seen[1], "progress did not move: {seen:?}");
    // Assembled in the agent's state folder until done (the workspace shows it complete).
    let staging = world.agent_state.join("clones");
    let under_way = |dir: &Path| std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    ensure!(
        under_way(&staging),
        "the clone is under way in {}",
        staging.display()
    );
    // Ctrl-C: the command says what it undid and the host removes the folder.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    ensure!(sent.success(), "kill -INT failed");
    let status = child.wait()?;
    ensure!(!status.success(), "an interrupted clone does not succeed");
    let mut rest = last;
    while let Ok(more) = rx.recv_timeout(WAIT) {
        rest = more;
    }
    ensure!(
        rest.contains("clone aborted; the host removes big"),
        "{rest:?}"
    );
    let deadline = Instant::now() + WAIT;
    while under_way(&staging) || world.workspace.join("big").exists() {
        ensure!(
            Instant::now() < deadline,
            "the interrupted clone's folder is still there"
        );
        // Polling the host's folder (another process removes it); bounded by the deadline.
        std::thread::park_timeout(Duration::from_millis(100));
    }
    Ok(())
}
