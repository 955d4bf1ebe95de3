//! Release binaries as child processes: `cm-relay run` (its readiness is the "relay listening"
//! log line, which also carries the OS-chosen address) and `cm-agent`. Children are stopped
//! on drop.

use anyhow::{Context, Result, bail, ensure};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest wait for a child's log line.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// A release binary in `bin_dir`, or an error saying how to build it.
///
/// # Errors
/// The binary is missing.
pub fn binary(bin_dir: &Path, name: &str) -> Result<PathBuf> {
    let path = bin_dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing; build it with `cargo build --release -p {name}`",
            path.display()
        );
    }
    Ok(path)
}

/// A child killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    pid: u32,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Proc {
    /// Starts `cmd` with stderr captured line by line (and drained until it exits).
    ///
    /// # Errors
    /// The process cannot start.
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd:?}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("CM_BENCH_VERBOSE").is_some() {
                    eprintln!("[child] {line}");
                }
                // The receiver may be gone; keep draining so the child never blocks.
                let _ = tx.send((Instant::now(), line));
            }
        });
        Ok(Self {
            pid: child.id(),
            child: Some(child),
            lines,
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for a log line containing `needle` and returns it.
    ///
    /// # Errors
    /// The child exits or stays silent for too long.
    pub fn wait_for(&self, needle: &str) -> Result<String> {
        Ok(self.wait_for_nth(needle, 1, LINE_WAIT)?.1)
    }

    /// Waits for the `n`-th log line containing `needle`; returns when it was read, and it.
    ///
    /// # Errors
    /// The child exits, or `wait` passes first.
    pub fn wait_for_nth(
        &self,
        needle: &str,
        n: usize,
        wait: Duration,
    ) -> Result<(Instant, String)> {
        let deadline = Instant::now() + wait;
        let mut seen = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("child logged {needle:?} {seen} of {n} times"))?;
            if line.contains(needle) {
                seen += 1;
                if seen >= n {
                    return Ok((at, line));
                }
            }
        }
    }

    /// SIGTERM, then wait (SIGKILL after 5 s).
    pub fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(());
        });
        if rx.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cm-relay run` on 127.0.0.1 with an OS-chosen port; returns it, its address, and
/// the time from launch to its "relay listening" line.
///
/// # Errors
/// The binary is missing or the relay does not come up.
pub fn relay(bin_dir: &Path, state_dir: &Path) -> Result<(Proc, SocketAddr, Duration)> {
    let mut cmd = Command::new(binary(bin_dir, "cm-relay")?);
    cmd.arg("--state-dir")
        .arg(state_dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info");
    let start = Instant::now();
    let proc = Proc::spawn(cmd)?;
    let line = proc.wait_for("relay listening")?;
    let ready = start.elapsed();
    Ok((proc, local_addr(&line)?, ready))
}

/// The `local_addr=` field of a log line.
///
/// # Errors
/// The field is missing or not an address.
pub fn local_addr(line: &str) -> Result<SocketAddr> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("local_addr="))
        .context("no local_addr in the listening line")?
        .parse()
        .context("bad local_addr")
}

/// `cm-agent enroll TOKEN` for an agent whose config and state live under `root`
/// (`agent.toml`, `state/`), with the 0600 file secret store.
///
/// # Errors
/// A missing binary or a failed enroll (its stderr in the message).
pub fn enroll_agent(bin_dir: &Path, root: &Path, token: &str) -> Result<()> {
    let out = Command::new(binary(bin_dir, "cm-agent")?)
        .arg("--config")
        .arg(root.join("agent.toml"))
        .arg("--state-dir")
        .arg(root.join("state"))
        .args(["enroll", token])
        .env("CM_SECRET_STORE", "file")
        .output()?;
    ensure!(
        out.status.success(),
        "cm-agent enroll failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `cm-agent run` for the agent enrolled under `root` (info logs, file secret store).
///
/// # Errors
/// A missing binary.
pub fn agent_cmd(bin_dir: &Path, root: &Path) -> Result<Command> {
    let mut cmd = Command::new(binary(bin_dir, "cm-agent")?);
    cmd.arg("--config")
        .arg(root.join("agent.toml"))
        .arg("--state-dir")
        .arg(root.join("state"))
        .arg("run")
        .env("RUST_LOG", "info")
        .env("CM_SECRET_STORE", "file");
    Ok(cmd)
}
