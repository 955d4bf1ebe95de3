//! How many TLS handshakes one address may have in progress on the relay's TCP listener, so a
//! flood from one address cannot take the whole handshake budget
//! ([`super::accept::MAX_PENDING_HANDSHAKES`]) from everyone else. IPv6 addresses count per
//! /64 (what one host usually gets); IPv4-mapped IPv6 as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The key an address counts under.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Handshakes in progress per address.
#[derive(Debug)]
pub(crate) struct PerAddress {
    limit: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One handshake of an address; counted until dropped.
#[derive(Debug)]
pub(crate) struct AddressPermit {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// At most `limit` at once per address.
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            counts: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A permit for `ip`, unless it already has `limit` handshakes in progress.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressPermit> {
        let key = key(ip);
        let mut counts = self.lock();
        let n = counts.entry(key).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(AddressPermit {
            table: Arc::clone(self),
            key,
        })
    }
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut counts = self.table.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_and_gets_it_back_as_permits_drop() {
        let table = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.try_acquire(a).unwrap();
        let _second = table.try_acquire(a).unwrap();
        assert!(table.try_acquire(a).is_none());
        assert!(table.try_acquire(b).is_some());
        drop(first);
        assert!(table.try_acquire(a).is_some());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let table = PerAddress::new(1);
        let _one = table
            .try_acquire("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        assert!(
            table
                .try_acquire("2001:db8:1:2::ffff".parse().unwrap())
                .is_none()
        );
        assert!(
            table
                .try_acquire("2001:db8:1:3::1".parse().unwrap())
                .is_some()
        );
        let _v4 = table.try_acquire("192.0.2.9".parse().unwrap()).unwrap();
        assert!(
            table
                .try_acquire("::ffff:192.0.2.9".parse().unwrap())
                .is_none()
        );
    }
}
