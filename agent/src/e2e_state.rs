//! A zero-trust host's end-to-end state kept beside its workspaces: the channels operators
//! opened and the nonces of queued prompts already served. Data only; the gate that fills and
//! reads it is `ops::gate` / `ops::e2e`.

pub mod channels;
mod queued_nonces;

use channels::ChannelTable;
use std::path::Path;

pub(crate) use queued_nonces::MAX_QUEUED_AGE_MS;
pub use queued_nonces::QueuedNonces;

/// A zero-trust host's end-to-end state: the open channels and the queued prompts served.
#[derive(Debug, Default)]
pub struct E2eState {
    /// Channels operators opened.
    pub channels: ChannelTable,
    /// Nonces of queued prompts already served.
    pub queued: QueuedNonces,
}

impl E2eState {
    /// The state of an agent whose served queued-prompt nonces live in `state_dir`.
    pub fn load(state_dir: &Path, now_ms: u64) -> Self {
        Self {
            channels: ChannelTable::default(),
            queued: QueuedNonces::load(state_dir, now_ms),
        }
    }
}
