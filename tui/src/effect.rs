//! What `App::update` asks the runtime to do. The app never does IO itself; the runtime
//! executes these after each update, and results come back as [`crate::event::NetEvent`]s.

use crate::call::{Request, WatchKey};

/// A request from the app to the IO shell.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Leave the full-screen view.
    Quit,
    /// Drop the relay connection (if any) and connect again now, skipping any backoff wait.
    Reconnect,
    /// Make one agent call; the answer arrives as `NetEvent::Reply` with the same request.
    Request(Request),
    /// Open (or reopen) a workspace's event watch, resuming after `after_seq` when given.
    Watch {
        /// Which workspace.
        watch: WatchKey,
        /// The last event seen on an earlier watch of it.
        after_seq: Option<u64>,
    },
    /// Ring the terminal bell: something new needs the operator.
    Bell,
}
