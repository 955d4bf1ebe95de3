//! The file in which the running agent notes which transport each link is connected over
//! (`links.json`, written by `link`), read by `cm-agent status` (which reads files, never asks
//! the running agent).

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name in the state folder.
pub const LINKS_FILE_NAME: &str = "links.json";

/// One connected link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkNow {
    /// The relay address (its QUIC address).
    pub relay: String,
    /// `QUIC`, `TCP` or `TCP via proxy`.
    pub transport: String,
    /// Since when (ms since the Unix epoch).
    pub since_ms: u64,
}

/// The connected links as the running agent last wrote them (empty when it is not running or
/// none is connected).
pub fn read(state_dir: &Path) -> Vec<LinkNow> {
    std::fs::read_to_string(state_dir.join(LINKS_FILE_NAME))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
