//! The control socket's messages: one JSON line each way. The command sends a [`Request`]; the
//! agent answers one [`Reply`]; then the connection stays open, silent, while the TUI runs.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Longest request line the agent reads.
pub const MAX_REQUEST: usize = 4096;
/// Longest reply line the command reads.
pub const MAX_REPLY: usize = 64 * 1024;

/// What the command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start OpenCode for `workspace` if needed and say how to attach to it.
    Attach {
        /// The workspace's name.
        workspace: String,
    },
}

/// How to reach a workspace's running OpenCode.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's HTTP Basic password (user `opencode`).
    pub password: String,
    /// The workspace's folder (`opencode attach --dir`).
    pub directory: PathBuf,
    /// The OpenCode binary the agent runs (the TUI must be the same version).
    pub opencode: PathBuf,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("directory", &self.directory)
            .field("opencode", &self.opencode)
            .finish_non_exhaustive()
    }
}

/// Why the agent does not attach; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// No workspace of that name.
    #[error(
        "no workspace {name:?} on this host; configured: {}",
        known_list(known)
    )]
    UnknownWorkspace {
        /// The name asked for.
        name: String,
        /// The workspaces there are.
        known: Vec<String>,
    },
    /// The workspace's folder cannot be used.
    #[error(
        "workspace {name}: its folder {path} cannot be used ({reason}); fix it or the [[workspace]] path"
    )]
    RootUnavailable {
        /// The workspace.
        name: String,
        /// Its folder.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The agent has no OpenCode binary.
    #[error("{message}")]
    OpencodeMissing {
        /// Where it looked and what to do.
        message: String,
    },
    /// OpenCode did not start.
    #[error(
        "OpenCode did not start in workspace {name}: {message}; see `cm-agent doctor` and the agent's log"
    )]
    NotStarted {
        /// The workspace.
        name: String,
        /// Why.
        message: String,
    },
    /// The connection comes from another user than the agent's.
    #[error(
        "the agent runs as uid {agent}, this command as uid {peer}: run it as the agent's user (e.g. `sudo -u USER -H cm-agent attach …`)"
    )]
    OtherUser {
        /// The agent's uid.
        agent: u32,
        /// The caller's uid.
        peer: u32,
    },
    /// A request the agent does not understand.
    #[error(
        "the agent did not understand the request ({message}); is it the same version as this cm-agent? restart it"
    )]
    BadRequest {
        /// What was wrong.
        message: String,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none (add [[workspace]] entries to agent.toml and restart the agent)".into()
    } else {
        known.join(", ")
    }
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// OpenCode runs; attach to it.
    Ready(Server),
    /// Not attached, and why.
    Refused(Refusal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_line_each() {
        let req = Request::Attach {
            workspace: "demo".into(),
        };
        let text = serde_json::to_string(&req).unwrap();
        assert_eq!(text, r#"{"op":"attach","workspace":"demo"}"#);
        let reply = Reply::Refused(Refusal::UnknownWorkspace {
            name: "x".into(),
            known: vec!["demo".into()],
        });
        let text = serde_json::to_string(&reply).unwrap();
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<Reply>(&text).unwrap(), reply);
    }

    #[test]
    fn an_unknown_workspace_lists_the_configured_ones() {
        let r = Refusal::UnknownWorkspace {
            name: "nope".into(),
            known: vec!["api".into(), "demo".into()],
        };
        assert_eq!(
            r.to_string(),
            r#"no workspace "nope" on this host; configured: api, demo"#
        );
        let none = Refusal::UnknownWorkspace {
            name: "nope".into(),
            known: vec![],
        };
        assert!(none.to_string().contains("add [[workspace]] entries"));
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let s = Server {
            url: "http://127.0.0.1:1".into(),
            password: "hunter2".into(),
            directory: "/w".into(),
            opencode: "/oc".into(),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
