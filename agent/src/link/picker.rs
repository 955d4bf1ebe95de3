//! Which relay address each of the agent's links dials (sans-IO). Every link holds a DISTINCT
//! address: a relay that saw the same host twice would replace one connection with the other,
//! and two links to one relay do not survive that relay's loss. A link whose relay failed moves
//! on to the next address no other link holds (in list order, wrapping around), and returns to
//! its old one only when nothing else is free. An address whose relay replaced a link's
//! connection with a newer one of this host reaches a relay another link already holds (one
//! relay under two addresses, e.g. a name with an IPv4 and an IPv6 address): it is set aside so
//! the links stop displacing each other.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

/// A link's number, `0..relay_connections`.
pub(super) type LinkId = usize;

/// The relay addresses and which link holds which.
#[derive(Debug, Default)]
pub(super) struct Picker {
    addrs: Vec<SocketAddr>,
    held: HashMap<LinkId, SocketAddr>,
    /// Addresses found to reach a relay another link holds; never handed out.
    aliases: HashSet<SocketAddr>,
}

impl Picker {
    /// A picker over `addrs` (in order, duplicates ignored).
    pub(super) fn new(addrs: Vec<SocketAddr>) -> Self {
        let mut picker = Self::default();
        picker.set_addrs(addrs);
        picker
    }

    /// Replaces the address list (a fresh DNS answer). A link keeps holding an address that
    /// left the list until it moves on, so no other link can take it meanwhile.
    pub(super) fn set_addrs(&mut self, addrs: Vec<SocketAddr>) {
        self.addrs.clear();
        cm_client::relay_addrs::push_distinct(&mut self.addrs, addrs);
        let listed = &self.addrs;
        self.aliases.retain(|a| listed.contains(a));
    }

    /// Whether no address is known yet.
    pub(super) fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// How many links to run for `wanted` connections: one per distinct address at most, and
    /// at least one.
    pub(super) fn links_for(&self, wanted: usize) -> usize {
        wanted.min(self.addrs.len()).max(1)
    }

    /// Gives `link` an address no other link holds and records it as `link`'s, releasing what
    /// `link` held. The search starts after `link`'s previous address (so a failed relay is
    /// tried last), or at the list's start for a link that held none. `None` when every address
    /// is held by other links; `link` then holds nothing.
    pub(super) fn take(&mut self, link: LinkId) -> Option<SocketAddr> {
        let previous = self.held.remove(&link);
        let n = self.addrs.len();
        let start = previous
            .and_then(|p| self.addrs.iter().position(|a| *a == p))
            .map_or(0, |i| i + 1);
        let free = (0..n)
            .map(|step| self.addrs[(start + step) % n])
            .find(|a| !self.aliases.contains(a) && !self.held.values().any(|h| h == a))?;
        self.held.insert(link, free);
        Some(free)
    }

    /// The relay at `link`'s address replaced `link`'s connection with a newer one of this
    /// host: that address reaches a relay another link holds. It is set aside (and `link`
    /// holds nothing) unless it is the last usable address; returns whether it was.
    pub(super) fn same_relay_as_another_link(&mut self, link: LinkId) -> bool {
        let Some(addr) = self.held.get(&link).copied() else {
            return false;
        };
        let others_usable = self
            .addrs
            .iter()
            .any(|a| *a != addr && !self.aliases.contains(a));
        if !others_usable {
            return false;
        }
        self.aliases.insert(addr);
        self.held.remove(&link);
        true
    }

    /// `link` stops (holds nothing).
    pub(super) fn release(&mut self, link: LinkId) {
        self.held.remove(&link);
    }

    /// The address `link` holds.
    #[cfg(test)]
    pub(super) fn held_by(&self, link: LinkId) -> Option<SocketAddr> {
        self.held.get(&link).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// No two links hold the same address (the invariant every test checks).
    fn assert_distinct(p: &Picker, links: usize) {
        let held: Vec<_> = (0..links).filter_map(|l| p.held_by(l)).collect();
        for (i, x) in held.iter().enumerate() {
            assert!(!held[i + 1..].contains(x), "two links hold {x}: {held:?}");
        }
    }

    #[test]
    fn links_get_distinct_addresses_in_list_order() {
        let mut p = Picker::new(vec![a(1), a(2), a(3)]);
        assert_eq!(p.take(0), Some(a(1)));
        assert_eq!(p.take(1), Some(a(2)));
        assert_distinct(&p, 2);
    }

    #[test]
    fn a_failed_link_moves_to_a_free_address_never_to_one_another_link_holds() {
        let mut p = Picker::new(vec![a(1), a(2), a(3)]);
        p.take(0);
        p.take(1);
        // Link 0's relay (a1) failed: a2 is held by link 1, so it moves to a3.
        assert_eq!(p.take(0), Some(a(3)));
        assert_distinct(&p, 2);
        // a3 failed as well: a1 is free again (a2 still held).
        assert_eq!(p.take(0), Some(a(1)));
        assert_distinct(&p, 2);
    }

    #[test]
    fn with_as_many_links_as_addresses_a_failed_link_retries_its_own() {
        let mut p = Picker::new(vec![a(1), a(2)]);
        p.take(0);
        p.take(1);
        assert_eq!(p.take(0), Some(a(1)));
        assert_eq!(p.take(1), Some(a(2)));
        assert_distinct(&p, 2);
    }

    #[test]
    fn links_are_capped_by_the_number_of_addresses_and_a_surplus_link_gets_none() {
        let p = Picker::new(vec![a(1), a(1), a(2)]);
        assert_eq!(p.links_for(2), 2);
        assert_eq!(p.links_for(5), 2);
        let mut one = Picker::new(vec![a(1)]);
        assert_eq!(one.links_for(2), 1);
        assert_eq!(Picker::default().links_for(2), 1);
        assert_eq!(one.take(0), Some(a(1)));
        assert_eq!(one.take(1), None);
        assert_eq!(one.held_by(1), None);
        // Released: now free for the other link.
        one.release(0);
        assert_eq!(one.take(1), Some(a(1)));
    }

    #[test]
    fn an_address_gone_from_dns_stays_held_until_its_link_moves_on() {
        let mut p = Picker::new(vec![a(1), a(2)]);
        p.take(0);
        p.take(1);
        p.set_addrs(vec![a(2), a(3)]);
        // Link 0 still holds a1 (connected there): nobody else gets it; link 1 keeps a2.
        assert_eq!(p.held_by(0), Some(a(1)));
        // Link 0 moves on: a1 is no longer listed, so the search starts at the list's head.
        assert_eq!(p.take(0), Some(a(3)));
        assert_distinct(&p, 2);
    }

    #[test]
    fn an_address_reaching_a_relay_another_link_holds_is_set_aside() {
        // One relay under a1 and a2 (IPv4 and IPv6, say), another under a3.
        let mut p = Picker::new(vec![a(1), a(2), a(3)]);
        p.take(0);
        p.take(1);
        // Link 1 connected to a2 and the relay replaced link 0's connection (a1).
        assert!(p.same_relay_as_another_link(0));
        assert_eq!(p.held_by(0), None);
        assert_eq!(p.take(0), Some(a(3)));
        // A fresh DNS answer with the same addresses keeps it aside.
        p.set_addrs(vec![a(1), a(2), a(3)]);
        p.release(1);
        assert_eq!(p.take(1), Some(a(2)));
        assert_eq!(p.take(2), None, "a1 is never handed out again");
    }

    #[test]
    fn the_last_usable_address_is_never_set_aside() {
        let mut p = Picker::new(vec![a(1)]);
        p.take(0);
        assert!(!p.same_relay_as_another_link(0));
        assert_eq!(p.held_by(0), Some(a(1)));
        let mut p = Picker::new(vec![a(1), a(2)]);
        p.take(0);
        p.take(1);
        assert!(p.same_relay_as_another_link(0));
        assert!(!p.same_relay_as_another_link(1), "a2 is the last one left");
    }

    #[test]
    fn no_sequence_of_failures_puts_two_links_on_one_address() {
        let mut p = Picker::new(vec![a(1), a(2), a(3)]);
        for step in 0..50usize {
            let link = (step * 7 + step / 3) % 3;
            p.take(link);
            assert_distinct(&p, 3);
        }
    }
}
