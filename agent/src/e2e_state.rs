//! A zero-trust host's end-to-end state kept beside its workspaces: the channels operators
//! opened and the nonces of queued prompts already served. Data only; the gate that fills and
//! reads it is `ops::gate` / `ops::e2e`.

pub mod channels;

use channels::ChannelTable;
use parking_lot::Mutex;
use proto::replay::ReplayWindow;
use proto::trust::header::REPLAY_WINDOW_MS;

/// A zero-trust host's end-to-end state: the open channels and the queued prompts served.
#[derive(Debug, Default)]
pub struct E2eState {
    /// Channels operators opened.
    pub channels: ChannelTable,
    /// Nonces of queued prompts already served.
    pub queued: QueuedNonces,
}

/// How old a queued prompt's signed time may be (the relay keeps a queued prompt this long).
pub(crate) const MAX_QUEUED_AGE_MS: u64 = 24 * 60 * 60 * 1000;
/// Most queued-prompt nonces remembered (fail closed beyond).
const CAPACITY: usize = 65_536;

/// The nonces of queued prompts already served.
#[derive(Debug)]
pub struct QueuedNonces(pub(crate) Mutex<ReplayWindow>);

impl Default for QueuedNonces {
    fn default() -> Self {
        // Pruned by signed times (see `check`): twice the age covers every accepted one.
        Self(Mutex::new(ReplayWindow::new(
            CAPACITY,
            2 * (MAX_QUEUED_AGE_MS + REPLAY_WINDOW_MS),
        )))
    }
}
