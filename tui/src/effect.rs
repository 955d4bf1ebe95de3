//! What `App::update` asks the runtime to do. The app never does IO itself; the runtime
//! executes these after each update.

/// A request from the app to the IO shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Leave the full-screen view.
    Quit,
    /// Drop the relay connection (if any) and connect again now, skipping any backoff wait.
    Reconnect,
}
