//! Several relays on one PostgreSQL (the fleet): each relay's identity among its peers, the
//! shared presence table, control notices between relays, and relay-to-relay forwarding.
//!
//! A relay without `[fleet]` in `relay.toml` is the embedded single relay: none of this runs.

pub mod config;
pub mod directory;
pub mod identity;
pub mod peer_endpoint;
pub mod peer_pool;
pub mod peer_stream;
pub mod peer_tls;

pub use config::FleetConfig;
pub use directory::{PeerDirectory, PeerInfo, RelayId};
