//! When a workspace was last used (operations and OpenCode events), for the idle stop.

use std::sync::Mutex;
use tokio::time::Instant;

/// Last use of a workspace (operations and OpenCode events), for the idle stop.
#[derive(Debug)]
pub struct Activity(Mutex<Instant>);

impl Activity {
    pub(super) fn new() -> Self {
        Self(Mutex::new(Instant::now()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Instant> {
        // An Instant cannot be left half-written.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the workspace as used now.
    pub fn touch(&self) {
        *self.lock() = Instant::now();
    }

    /// When it was last used.
    pub fn last(&self) -> Instant {
        *self.lock()
    }
}
