//! Several relays on one PostgreSQL (the fleet): each relay's identity among its peers, the
//! shared presence table, control notices between relays, and relay-to-relay forwarding.
//!
//! A relay without `[fleet]` in `relay.toml` is the embedded single relay: none of this runs.

pub mod cluster;
pub mod config;
pub mod directory;
pub mod doctor;
pub mod identity;
pub mod member;
pub mod notify;
pub mod peer_endpoint;
pub mod peer_pool;
pub mod peer_stream;
pub mod peer_tls;
pub mod presence_pg;
pub mod presence_sync;
pub mod remote_view;
pub mod send_ahead;

pub use config::FleetConfig;
pub use directory::{PeerDirectory, PeerInfo, RelayId};
pub use member::{FleetError, FleetMember};
pub use presence_pg::FleetPresence;
