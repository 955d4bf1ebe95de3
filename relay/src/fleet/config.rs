//! `[fleet]` of `relay.toml`: this relay's name among its peers and where peers reach it.

use super::directory::RelayId;
use std::net::SocketAddr;

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
