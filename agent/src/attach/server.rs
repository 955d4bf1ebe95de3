//! The agent's side of the control socket: bind it in the state folder, answer each
//! connection's attach request, and keep the attached workspace's OpenCode alive (lease and idle
//! timer) while the connection stays open.

use super::wire::{MAX_REQUEST, Refusal, Reply, Request, Server};
use crate::opencode::binary::Search;
use crate::workspaces::Workspaces;
use proto::message::Control;
use proto::rbac::Role;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest gap between two renewals of an attached workspace's lease and idle timer.
const MAX_RENEW_EVERY: Duration = Duration::from_secs(30);

/// The bound control socket; the file is removed on drop.
#[derive(Debug)]
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `<state_dir>/control.sock` (0600). Call while holding the run lock: a socket file
/// left there is a dead agent's and is replaced.
///
/// # Errors
/// The socket cannot be created (e.g. the path is longer than a Unix socket address allows).
pub fn bind(state_dir: &Path) -> std::io::Result<ControlSocket> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = super::socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(ControlSocket { listener, path })
}

/// Serves the socket until `cancel` fires; each connection on its own task.
pub async fn serve(socket: ControlSocket, workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    tracing::info!(socket = %socket.path.display(), "control socket ready (cm-agent attach)");
    loop {
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    continue;
                }
            },
        };
        let (workspaces, cancel) = (Arc::clone(&workspaces), cancel.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &workspaces, &cancel).await {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
}

async fn connection(
    stream: UnixStream,
    workspaces: &Workspaces,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    let agent = rustix::process::geteuid().as_raw();
    let peer = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    // Read first, also from a stranger: a reply sent before the request is read makes the
    // sender's write fail instead of showing the refusal.
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut read)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    };
    if peer != agent {
        tracing::warn!(target: "cm_agent::audit", peer, "control socket: refused a connection from another user");
        return send(
            &mut write,
            &Reply::Refused(Refusal::OtherUser { agent, peer }),
        )
        .await;
    }
    let workspace = match request {
        Ok(Request::Attach { workspace }) => workspace,
        Err(message) => {
            return send(&mut write, &Reply::Refused(Refusal::BadRequest { message })).await;
        }
    };
    let reply = match prepare(workspaces, &workspace).await {
        Ok(server) => server,
        Err(refusal) => {
            tracing::info!(workspace, reason = %refusal, "cm-agent attach refused");
            return send(&mut write, &Reply::Refused(refusal)).await;
        }
    };
    send(&mut write, &Reply::Ready(reply)).await?;
    tracing::info!(target: "cm_agent::audit", workspace, "local attach: OpenCode's TUI attached at the desk (cm-agent attach)");
    workspaces.local_notices().push(Control::LocalAttach {
        workspace: workspace.clone(),
        at_ms: cm_client::time::now_ms(),
    });
    keep_alive(workspaces, &workspace, &mut read, cancel).await;
    tracing::info!(workspace, "cm-agent attach ended");
    Ok(())
}

/// The request line, or what is wrong with it.
async fn read_request(
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
) -> std::io::Result<Result<Request, String>> {
    let mut line = Vec::new();
    let mut limited = read.take(MAX_REQUEST as u64 + 1);
    limited.read_until(b'\n', &mut line).await?;
    if line.len() > MAX_REQUEST {
        return Ok(Err(format!("request longer than {MAX_REQUEST} bytes")));
    }
    Ok(serde_json::from_slice(&line).map_err(|e| e.to_string()))
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.flush().await
}

/// Checks the workspace, starts its OpenCode if needed, and says how to reach it.
async fn prepare(workspaces: &Workspaces, name: &str) -> Result<Server, Refusal> {
    let rt = workspaces
        .get(name)
        .ok_or_else(|| Refusal::UnknownWorkspace {
            name: name.to_owned(),
            known: workspaces.names(),
        })?;
    root_usable(&rt)?;
    let opencode = Search::from_env(workspaces.opencode_config().binary.clone())
        .resolve()
        .map_err(|e| Refusal::OpencodeMissing {
            message: e.to_string(),
        })?;
    let not_started = |message: String| Refusal::NotStarted {
        name: name.to_owned(),
        message,
    };
    rt.supervisor
        .ensure_ready()
        .await
        .map_err(|e| not_started(e.to_string()))?;
    let (port, password) = workspaces
        .server_of(name)
        .ok_or_else(|| not_started("it stopped again at once".into()))?;
    Ok(Server {
        url: format!("http://127.0.0.1:{port}"),
        password,
        directory: rt.workspace.root.clone(),
        opencode,
    })
}

/// The workspace's folder must be a readable folder (and an added workspace's still the real
/// folder directly in its root), as for every remote operation.
fn root_usable(rt: &crate::workspaces::WorkspaceRuntime) -> Result<(), Refusal> {
    rt.root_problem().map_or(Ok(()), |reason| {
        Err(Refusal::RootUnavailable {
            name: rt.workspace.name.clone(),
            path: rt.workspace.root.display().to_string(),
            reason,
        })
    })
}

/// While the connection is open (the TUI runs), renews the workspace's launch lease as the
/// host's owner would and postpones its idle stop.
async fn keep_alive(
    workspaces: &Workspaces,
    name: &str,
    read: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    cancel: &CancellationToken,
) {
    let Some(rt) = workspaces.get(name) else {
        return;
    };
    let mut every = workspaces.leases().renew_every().min(MAX_RENEW_EVERY);
    if let Some(idle) = workspaces.opencode_config().idle_stop {
        every = every.min(idle / 2).max(Duration::from_millis(100));
    }
    let mut tick = tokio::time::interval(every);
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {
                workspaces.leases().renew(name, Role::Owner);
                rt.supervisor.touch();
            }
            // The command sends nothing more: any read's end (EOF, error) is its exit.
            n = read.read(&mut sink) => if !matches!(n, Ok(n) if n > 0) {
                return;
            },
        }
    }
}

/// Binds the control socket and serves it on a task until `cancel` fires. A socket that cannot
/// be bound is logged, not fatal: the agent serves the relay all the same.
pub fn start(state_dir: &Path, workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    match bind(state_dir) {
        Ok(socket) => {
            tokio::spawn(serve(socket, workspaces, cancel));
        }
        Err(e) => tracing::warn!(
            socket = %super::socket_path(state_dir).display(),
            error = %e,
            "no control socket: `cm-agent attach` cannot reach this agent (a shorter --state-dir helps when the path is too long)"
        ),
    }
}
