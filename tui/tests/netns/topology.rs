//! The network of a lab: three namespaces joined by veth pairs.
//!
//! ```text
//!  laptop ns                relay ns                          host ns
//!  eth0 10.77.1.2/24 ──── lap 10.77.1.1/24 (+10.77.3.1/24)
//!                           lo  10.77.0.1 (the relay, :7443)  eth0 10.77.2.2/24
//!                           hst 10.77.2.1/24 ────────────────
//! ```
//!
//! Laptop and host route everything via the relay namespace, so `nft` rules there (on input:
//! the sender's `sendto` succeeds, the packets vanish) are the network the clients see. The
//! addresses are the same in every lab: each lab has namespaces of its own.

use crate::netns::{Netns, NftTable, namespaces_allowed, unique_stem};
use anyhow::Result;

/// The relay's address, for QUIC and TCP.
pub const RELAY_IP: &str = "10.77.0.1";
pub const RELAY_PORT: u16 = 7443;
/// The relay namespace's end of the laptop's link (where the test proxy listens).
pub const LAPTOP_GATEWAY: &str = "10.77.1.1";
/// The relay namespace's interfaces towards the laptop and the host.
pub const LAPTOP_LINK: &str = "lap";
pub const HOST_LINK: &str = "hst";
/// The laptop's address, and the one it moves to.
pub const LAPTOP_IP: &str = "10.77.1.2";
pub const LAPTOP_NEW_IP: &str = "10.77.3.2";
pub const LAPTOP_NEW_GATEWAY: &str = "10.77.3.1";

/// `relay:port` of the relay.
pub fn relay_addr() -> String {
    format!("{RELAY_IP}:{RELAY_PORT}")
}

/// The three namespaces (deleted on Drop).
pub struct Net {
    pub relay: Netns,
    pub laptop: Netns,
    pub host: Netns,
}

impl Net {
    /// Builds the namespaces, links and routes, or `None` (after a loud message) when the
    /// kernel refuses namespaces here.
    pub fn build() -> Result<Option<Self>> {
        if !namespaces_allowed()? {
            return Ok(None);
        }
        let stem = unique_stem();
        let relay = Netns::add(format!("{stem}-relay"))?;
        let laptop = Netns::add(format!("{stem}-laptop"))?;
        let host = Netns::add(format!("{stem}-host"))?;
        relay.ip(&["addr", "add", &format!("{RELAY_IP}/32"), "dev", "lo"])?;
        relay.veth(
            LAPTOP_LINK,
            &[
                &format!("{LAPTOP_GATEWAY}/24"),
                &format!("{LAPTOP_NEW_GATEWAY}/24"),
            ],
            &laptop,
            "eth0",
            &[&format!("{LAPTOP_IP}/24")],
        )?;
        laptop.ip(&["route", "add", "default", "via", LAPTOP_GATEWAY])?;
        relay.veth(
            HOST_LINK,
            &["10.77.2.1/24"],
            &host,
            "eth0",
            &["10.77.2.2/24"],
        )?;
        host.ip(&["route", "add", "default", "via", "10.77.2.1"])?;
        Ok(Some(Self {
            relay,
            laptop,
            host,
        }))
    }

    /// Drops every UDP datagram to the relay's port (laptop and host alike): a UDP-hostile
    /// network. Lifted when the returned table is removed or dropped.
    pub fn drop_udp_to_relay(&self) -> Result<NftTable> {
        NftTable::input_rules(
            &self.relay,
            "cm_no_udp",
            &[format!("udp dport {RELAY_PORT} drop")],
        )
    }

    /// Drops UDP between the laptop and the relay, both ways (the host keeps its UDP).
    pub fn drop_laptop_udp(&self) -> Result<(NftTable, NftTable)> {
        let towards_relay = NftTable::input_rules(
            &self.relay,
            "cm_no_laptop_udp",
            &[format!(
                "iifname \"{LAPTOP_LINK}\" udp dport {RELAY_PORT} drop"
            )],
        )?;
        let towards_laptop = NftTable::input_rules(
            &self.laptop,
            "cm_no_udp_back",
            &[format!("udp sport {RELAY_PORT} drop")],
        )?;
        Ok((towards_relay, towards_laptop))
    }

    /// Drops everything the laptop sends to the relay's address directly (UDP and TCP): only
    /// a proxy gets it there.
    pub fn drop_laptop_direct(&self) -> Result<NftTable> {
        NftTable::input_rules(
            &self.relay,
            "cm_no_direct",
            &[format!(
                "iifname \"{LAPTOP_LINK}\" ip daddr {RELAY_IP} drop"
            )],
        )
    }

    /// The laptop moves to another network: a new address and default route on its link,
    /// then the old address goes (as a Wi-Fi to hotspot switch does).
    pub fn move_laptop_address(&self) -> Result<()> {
        let ns = &self.laptop;
        ns.ip(&["addr", "add", &format!("{LAPTOP_NEW_IP}/24"), "dev", "eth0"])?;
        ns.ip(&[
            "route",
            "replace",
            "default",
            "via",
            LAPTOP_NEW_GATEWAY,
            "src",
            LAPTOP_NEW_IP,
        ])?;
        ns.ip(&["addr", "del", &format!("{LAPTOP_IP}/24"), "dev", "eth0"])?;
        let addrs = ns.ip(&["-4", "addr", "show", "dev", "eth0"])?;
        anyhow::ensure!(
            addrs.contains(LAPTOP_NEW_IP) && !addrs.contains(LAPTOP_IP),
            "{addrs}"
        );
        Ok(())
    }
}
