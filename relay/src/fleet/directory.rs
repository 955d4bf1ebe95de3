//! What relay-to-relay forwarding needs to know about the fleet: which other relays hold a
//! host's agent right now, and how to reach and recognise a peer relay. The shared presence
//! (PostgreSQL rows, refreshed by `LISTEN/NOTIFY`) implements it; tests use a fixed table.

use proto::ids::HostId;

pub use crate::fleet_config::RelayId;

/// How to reach and recognise one peer relay (a row of the `relays` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub id: RelayId,
    /// Its relay-to-relay address (`host:port`).
    pub peer_addr: String,
    /// The pin (`sha256:…` of the SPKI, as [`crate::tls::pin_of_certificate`]) of its peer
    /// identity certificate: a peer connection is accepted, and dialled, only with it.
    pub peer_pin: String,
}

/// The fleet as relay-to-relay forwarding sees it.
pub trait PeerDirectory: Send + Sync + std::fmt::Debug {
    /// This relay's id.
    fn local_id(&self) -> &RelayId;
    /// Other relays that hold a live connection of `host`'s agent (fresh presence rows of
    /// relays that are alive and not retired), best first. Never includes this relay.
    fn relays_holding(&self, host: &HostId) -> Vec<RelayId>;
    /// A registered, not retired peer relay.
    fn peer(&self, id: &RelayId) -> Option<PeerInfo>;
    /// Every registered, not retired peer relay (to accept incoming peer connections by pin).
    fn peers(&self) -> Vec<PeerInfo>;
    /// Whether `id` is still a registered, not retired peer relay presenting `pin` (checked for
    /// every stream a peer opens, so kept cheap where the directory can).
    fn is_registered_peer(&self, id: &RelayId, pin: &str) -> bool {
        self.peers()
            .iter()
            .any(|p| &p.id == id && p.peer_pin == pin)
    }
    /// Reports that `id` could not be reached (routing tries the next relay; `cluster status`
    /// shows it).
    fn unreachable(&self, id: &RelayId);
    /// Tells every relay of the fleet that a user's TUI shows a session (their notifications
    /// about it are held back wherever the host's agent is). Nothing to do without a fleet.
    fn announce_focus(&self, _focus: &crate::fleet::notify::FocusNotice) {}
    /// Whether this relay is the one that reports hosts offline too long: the alive relay
    /// with the lowest id, so a fleet sends one report, not one per relay.
    fn reports_offline_hosts(&self) -> bool {
        true
    }
}
