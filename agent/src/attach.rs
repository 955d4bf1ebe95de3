//! `cm-agent attach WORKSPACE`: OpenCode's own TUI (`opencode attach`) on the `opencode serve`
//! the running agent supervises for that workspace, so the person at the desk and operators
//! over the relay see and drive the same sessions.
//!
//! The command talks to the running agent over its **control socket**,
//! `<state dir>/control.sock` ([`SOCKET_FILE`], a Unix socket, 0600, in the 0700 state folder).
//! Being able to connect is the authorization: only the agent's own user (and root) can open
//! the state folder, which already holds OpenCode's passwords and the host secret's fallback
//! file. The agent also checks the peer's uid ([`server`]): a connection from any other user is
//! refused, whatever the file modes say.
//!
//! One connection is one attach ([`wire`]): the command asks for a workspace; the agent checks
//! it and its folder, finds the OpenCode binary, starts OpenCode through the workspace's
//! supervisor if it is not running (the same launch as a remote `opencode_start`: sandbox,
//! template, private state folders), and answers with the server's local URL, its password and
//! the binary. The command then runs `opencode attach URL --dir ROOT` on the terminal, the
//! password in `OPENCODE_SERVER_PASSWORD` (never on the command line). It keeps the connection
//! open until the TUI exits; meanwhile the agent renews the launch's lease and its idle timer,
//! so OpenCode is not stopped under the person at the desk.
//!
//! The host's lock (`cm-agent lock`) refuses remote operations; it does not stop the host's own
//! user from attaching. Each attach is logged on the host (target `cm_agent::audit`) and
//! reported to the relay as a local action ([`crate::local_notices`]); the relay audits it as
//! `local_attach`. With no relay reachable the attach works all the same and the notice goes
//! out when a link is up.

pub mod client;
pub mod server;
pub mod wire;

use std::path::{Path, PathBuf};

/// The control socket's name in the state folder.
pub const SOCKET_FILE: &str = "control.sock";

/// The control socket of the agent running with `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_FILE)
}
