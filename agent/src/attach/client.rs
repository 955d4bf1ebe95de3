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
    let _left_to_opencode = interactive_signals_left_to_child();
    let status =
        command(&attached.server)
            .status()
            .map_err(|source| AttachError::OpencodeNotRunnable {
                path: attached.server.opencode.clone(),
                source,
            })?;
    // Ends the attach: the agent stops renewing OpenCode's lease for it.
    drop(attached.connection);
    Ok(status)
}

/// Installs do-nothing handlers for SIGINT, SIGQUIT, SIGTERM and SIGHUP in this process for as
/// long as the returned guard lives (`None` when they cannot be installed: then the defaults
/// stay). OpenCode gets the same signals (they go to the foreground group) and ends; this
/// process then reports its exit.
fn interactive_signals_left_to_child()
-> Option<(tokio::runtime::Runtime, Vec<tokio::signal::unix::Signal>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::quit(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ];
    let handlers = rt.block_on(async {
        kinds
            .into_iter()
            .map(|k| signal(k).ok())
            .collect::<Option<Vec<_>>>()
    })?;
    Some((rt, handlers))
}
