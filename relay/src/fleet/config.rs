//! `[fleet]` of `relay.toml`: this relay's name among its peers and where peers reach it
//! (defined in `crate::fleet_config`, which the configuration can use without a cycle).

pub use crate::fleet_config::{DEFAULT_PEER_PORT, FleetConfig};
