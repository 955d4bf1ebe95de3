//! [`CommandError`]: how a scripting command (`commands` and the `*_cli` modules) fails.

use cm_client::LinkError;
use cm_client::framed::StreamError;

/// Command failures.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The relay or agent refused, or the connection failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The event stream failed. (The cause is the source: `{e:#}` prints it once.)
    #[error("event stream")]
    Stream(#[from] StreamError),
    /// No pending permission request with that id.
    #[error(
        "no pending permission request {0} (already answered, or the turn ended); see `cm-tui permissions`"
    )]
    NotPending(String),
    /// No pending question with that id.
    #[error(
        "no pending question {0} (already answered, or the turn ended); see `cm-tui permissions`"
    )]
    NoQuestion(String),
    /// The turn ended with an error.
    #[error("the turn failed: {0}")]
    Turn(String),
    /// Output failed.
    #[error(transparent)]
    Output(#[from] std::io::Error),
    /// Bad input found before sending: the message names the flag or value and what is allowed.
    #[error("{0}")]
    BadInput(String),
    /// A long-running command (`forward`) was ended by the relay; the message says why and
    /// what to do.
    #[error("{0}")]
    Ended(String),
    /// JSON encoding failed.
    #[error("json")]
    Json(#[from] serde_json::Error),
    /// A new session cannot be created while the host is offline.
    #[error(
        "host {0} is offline, so no new session can be created; a prompt to an existing session is queued for it (add --session ses_…)"
    )]
    OfflineNewSession(String),
    /// Ctrl-C or SIGTERM stopped a command under way; the message says what was undone.
    #[error("{0}")]
    Interrupted(String),
}
