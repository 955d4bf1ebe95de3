//! The command's side: ask the running agent over its control socket, then run OpenCode's TUI
//! on this terminal while holding the connection open (the agent keeps OpenCode alive as long).

use super::wire::{MAX_REPLY, Refusal, Reply, Request, Server};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// Bound on the agent's answer (it starts OpenCode first, itself bounded by twice
/// `[opencode] ready_timeout`).
const REPLY_TIMEOUT: Duration = Duration::from_secs(600);

/// Why `cm-agent attach` did not attach; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// No agent listens on the state folder's control socket.
    #[error(
        "no cm-agent is running with the state folder {} (nothing answers at {}): start it with `cm-agent run` (or `systemctl --user start cm-agent`) using the same --state-dir and --config as this command; an agent older than this command has no control socket: restart it",
        state_dir.display(), socket.display()
    )]
    AgentNotRunning {
        /// The state folder.
        state_dir: PathBuf,
        /// The socket tried.
        socket: PathBuf,
    },
    /// The socket is there but this user may not open it.
    #[error(
        "cannot open the agent's control socket {}: permission denied; run this as the user the agent runs as (the owner of {}), e.g. `sudo -u USER -H cm-agent attach WORKSPACE`",
        socket.display(), state_dir.display()
    )]
    NotAgentUser {
        /// The state folder.
        state_dir: PathBuf,
        /// The socket.
        socket: PathBuf,
    },
    /// Talking to the agent failed.
    #[error("cannot talk to the agent at {}: {source}", socket.display())]
    Io {
        /// The socket.
        socket: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The agent refused.
    #[error("{0}")]
    Refused(Refusal),
    /// The agent's answer makes no sense to this build.
    #[error(
        "the agent answered something this cm-agent does not understand ({0}); restart the agent so both are the same version"
    )]
    Protocol(String),
    /// The OpenCode binary the agent named does not run here.
    #[error(
        "cannot run OpenCode's TUI ({}): {source}; install it with scripts/install-opencode.sh or set [opencode] binary in agent.toml, then restart the agent",
        path.display()
    )]
    OpencodeNotRunnable {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// An attach the agent agreed to: the open connection (close it to end the attach) and how
/// to reach OpenCode.
#[derive(Debug)]
pub struct Attached {
    /// Held open while the TUI runs.
    pub connection: UnixStream,
    /// OpenCode's server.
    pub server: Server,
}

/// Asks the agent running with `state_dir` to attach `workspace`.
///
/// # Errors
/// [`AttachError`] says why not.
pub fn request(state_dir: &Path, workspace: &str) -> Result<Attached, AttachError> {
    let socket = super::socket_path(state_dir);
    let io = |source| AttachError::Io {
        socket: socket.clone(),
        source,
    };
    let mut connection = UnixStream::connect(&socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            AttachError::AgentNotRunning {
                state_dir: state_dir.to_owned(),
                socket: socket.clone(),
            }
        }
        std::io::ErrorKind::PermissionDenied => AttachError::NotAgentUser {
            state_dir: state_dir.to_owned(),
            socket: socket.clone(),
        },
        _ => io(e),
    })?;
    let mut line = serde_json::to_vec(&Request::Attach {
        workspace: workspace.to_owned(),
    })
    .map_err(|e| AttachError::Protocol(e.to_string()))?;
    line.push(b'\n');
    // A failed write is not the end yet: an agent that refused early has left its reason.
    let written = connection.write_all(&line);
    connection
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .map_err(io)?;
    let mut reply = Vec::new();
    let read = BufReader::new((&connection).take(MAX_REPLY as u64)).read_until(b'\n', &mut reply);
    if reply.is_empty() {
        let why = match (written, read) {
            (Err(e), _) | (Ok(()), Err(e)) => e.to_string(),
            (Ok(()), Ok(_)) => "it closed the connection".into(),
        };
        return Err(AttachError::Protocol(format!(
            "no answer from the agent: {why}"
        )));
    }
    connection.set_read_timeout(None).map_err(io)?;
    match serde_json::from_slice(&reply).map_err(|e| AttachError::Protocol(e.to_string()))? {
        Reply::Ready(server) => Ok(Attached { connection, server }),
        Reply::Refused(refusal) => Err(AttachError::Refused(refusal)),
    }
}

/// `opencode attach URL --dir ROOT` for `server`, the password in the environment (not on the
/// command line, where `ps` shows it), with the outbound calls the agent's own OpenCode makes
/// none of switched off here too: auto-update (the agent runs this binary), the model
/// catalogue fetch (retried at start and hourly), LSP downloads and sharing.
pub fn command(server: &Server) -> Command {
    let mut cmd = Command::new(&server.opencode);
    cmd.arg("attach")
        .arg(&server.url)
        .arg("--dir")
        .arg(&server.directory)
        .current_dir(&server.directory)
        .env("OPENCODE_SERVER_PASSWORD", &server.password)
        .env_remove("OPENCODE_SERVER_USERNAME");
    for off in [
        "OPENCODE_DISABLE_AUTOUPDATE",
        "OPENCODE_DISABLE_MODELS_FETCH",
        "OPENCODE_DISABLE_LSP_DOWNLOAD",
        "OPENCODE_DISABLE_SHARE",
    ] {
        cmd.env(off, "1");
    }
    cmd
}

/// Attaches `workspace` and runs OpenCode's TUI on this terminal until it exits.
///
/// # Errors
/// [`AttachError`] says why it did not run.
pub fn run(state_dir: &Path, workspace: &str) -> Result<ExitStatus, AttachError> {
    let attached = request(state_dir, workspace)?;
    // While OpenCode's TUI runs in the foreground, a signal for the whole foreground group (a
    // Ctrl-C the terminal turns into SIGINT, a hang-up, what OpenCode sends its group when it
    // quits) is OpenCode's to handle, so this process only notes it and waits for OpenCode to
    // end. Handlers, not SIG_IGN: OpenCode itself starts with the default dispositions.
    let signals = interactive_signals_left_to_child();
    // Spawned by std from this thread (a TUI spawned through tokio showed a blank screen now
    // and then), waited for on a thread of its own.
    let mut child =
        command(&attached.server)
            .spawn()
            .map_err(|source| AttachError::OpencodeNotRunnable {
                path: attached.server.opencode.clone(),
                source,
            })?;
    let pid = child.id();
    if let Some((rt, handlers)) = signals {
        // Told when OpenCode has exited but before it is reaped, so its pid stays OpenCode's
        // (a zombie) for as long as signals are passed on to it.
        let (done, exited) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            wait_for_exit_unreaped(pid);
            let _ = done.send(());
        });
        rt.block_on(pass_on_termination(pid, handlers, exited));
    }
    let status = child
        .wait()
        .map_err(|source| AttachError::OpencodeNotRunnable {
            path: attached.server.opencode.clone(),
            source,
        })?;
    // Ends the attach: the agent stops renewing OpenCode's lease for it.
    drop(attached.connection);
    Ok(status)
}

/// Until OpenCode's TUI has exited: a SIGTERM or SIGHUP sent to this process is passed on to
/// it (a `kill` of `cm-agent attach` alone, a service manager stopping it), so the TUI does not
/// outlive the attach; SIGINT and SIGQUIT come only from the terminal, to the whole group, and
/// reach OpenCode by themselves. A signal sent to the whole group reaches OpenCode twice, which
/// ends it the same way.
async fn pass_on_termination(
    pid: u32,
    [mut interrupt, mut quit, mut terminate, mut hangup]: [tokio::signal::unix::Signal; 4],
    mut exited: tokio::sync::oneshot::Receiver<()>,
) {
    let pass_on = |signal: rustix::process::Signal| {
        let target = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(target) = target {
            let _ = rustix::process::kill_process(target, signal);
        }
    };
    loop {
        tokio::select! {
            _ = &mut exited => return,
            _ = terminate.recv() => pass_on(rustix::process::Signal::TERM),
            _ = hangup.recv() => pass_on(rustix::process::Signal::HUP),
            _ = interrupt.recv() => {}
            _ = quit.recv() => {}
        }
    }
}

/// Returns once process `pid` (a child of this process) has exited, leaving it to be reaped.
fn wait_for_exit_unreaped(pid: u32) {
    use rustix::process::{Pid, WaitId, WaitIdOptions, waitid};
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => {}
            // Exited, or cannot be waited for at all (then the reaping wait says why).
            _ => return,
        }
    }
}

/// Installs do-nothing handlers for SIGINT, SIGQUIT, SIGTERM and SIGHUP in this process for as
/// long as the returned handlers live (`None` when they cannot be installed: then the defaults
/// stay). OpenCode gets the terminal's signals (they go to the foreground group) and ends; this
/// process then reports its exit.
fn interactive_signals_left_to_child()
-> Option<(tokio::runtime::Runtime, [tokio::signal::unix::Signal; 4])> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let handlers = rt.block_on(async {
        Some([
            signal(SignalKind::interrupt()).ok()?,
            signal(SignalKind::quit()).ok()?,
            signal(SignalKind::terminate()).ok()?,
            signal(SignalKind::hangup()).ok()?,
        ])
    })?;
    Some((rt, handlers))
}
