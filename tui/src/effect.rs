//! What `App::update` asks the runtime to do. The app never does IO itself; the runtime
//! executes these after each update, and results come back as [`crate::event::NetEvent`]s.

use crate::call::{Request, StreamRequest, WatchKey};

/// A request from the app to the IO shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Leave the full-screen view.
    Quit,
    /// Drop the relay connection (if any) and connect again now, skipping any backoff wait.
    Reconnect,
    /// Make one agent call; the answer arrives as `NetEvent::Reply` with the same request.
    Request(Request),
    /// Open a streaming call; its frames arrive as `NetEvent::StreamItem`s with the same id,
    /// then one `NetEvent::StreamEnded`.
    Stream(StreamRequest),
    /// Close the stream with this id before its end (the host stops what it runs: an aborted
    /// clone's folder is removed). No `StreamEnded` follows.
    CloseStream(u64),
    /// Start a port forward; its news arrives as `NetEvent::Forward`s with the same id.
    /// `CloseStream(id)` stops it.
    Forward(crate::call::ForwardRequest),
    /// Open (or reopen) a workspace's event watch, resuming after `after_seq` when given.
    Watch {
        /// Which workspace.
        watch: WatchKey,
        /// The last event seen on an earlier watch of it.
        after_seq: Option<u64>,
    },
    /// Ring the terminal bell: something new needs the operator.
    Bell,
    /// Run the configured notification hook (if any) for something new that needs the operator.
    Notify(Notification),
    /// Leave this relay and start again on the relay profile with this name (tui.toml).
    SwitchRelay(String),
    /// Put this text on the operator's clipboard (OSC 52: works over SSH, in most terminals).
    Copy(String),
}

/// What the notification hook is told, in environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `permission`, `question`, `opencode_failed`, `turn_failed` or `finished`.
    pub kind: &'static str,
    /// The host.
    pub host: String,
    /// The workspace.
    pub workspace: String,
    /// The session, if the item has one.
    pub session: Option<String>,
    /// One line saying what it is (remote text, control characters removed).
    pub text: String,
}

impl Notification {
    /// The environment variables the hook gets.
    pub fn env(&self) -> [(&'static str, String); 5] {
        [
            ("CM_ATTENTION_KIND", self.kind.to_owned()),
            ("CM_ATTENTION_HOST", self.host.clone()),
            ("CM_ATTENTION_WORKSPACE", self.workspace.clone()),
            (
                "CM_ATTENTION_SESSION",
                self.session.clone().unwrap_or_default(),
            ),
            ("CM_ATTENTION_TEXT", self.text.clone()),
        ]
    }
}
