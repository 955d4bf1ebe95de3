//! `[fleet]` of `relay.toml` as the configuration holds it: this relay's id among its peers
//! and where peers reach it. Its own module, below `config` and `fleet` both, so that the
//! configuration does not depend on the fleet's machinery (which reads the state directory).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A relay's id in the fleet (a plain name, see [`proto::ids::is_valid_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RelayId(pub String);

impl std::fmt::Display for RelayId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RelayId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Default UDP port of the relay-to-relay endpoint (the operator and agent port is 7443).
pub const DEFAULT_PEER_PORT: u16 = 7444;

/// This relay as a member of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// Its id among the relays of the fleet (`cm-relay cluster add --id`).
    pub id: RelayId,
    /// UDP address of the relay-to-relay endpoint (mutual TLS with pinned relay identities).
    pub peer_listen: SocketAddr,
}
