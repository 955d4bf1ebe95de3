//! What can go wrong in an administrative change, for the CLI (printed) and the relay's
//! administration operations (mapped once to the wire in `net::error`).

use crate::state::StateError;
use crate::store::StoreError;

/// Why an administrative change was not made.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// State directory problems.
    #[error(transparent)]
    State(#[from] StateError),
    /// Database problems (including "exists", "missing", "the last owner stays").
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Invalid input (the message says what to do).
    #[error("{0}")]
    Input(String),
    /// The input names something that does not exist (the message says where to look).
    #[error("{0}")]
    NotFound(String),
    /// The change needs more rights than the operation carries (relay operations only).
    #[error("{0}")]
    Forbidden(String),
}
