//! The relay addresses the agent's links share: resolved from the configured list, again at
//! every reconnection and, for a link that found no free address, every
//! [`RESOLVE_AGAIN`] while it waits (a name that failed to resolve at boot, or resolved to
//! fewer addresses than there are links, gets its other links later). The [`Picker`] hands
//! them out so that no two links hold one address, each with the host name it was configured
//! by (the TCP path asks a proxy for the name, not the IP).

use super::picker::{LinkId, Picker};
use cm_client::DialTarget;
use cm_client::backoff::jitter;
use cm_client::relay_addrs::{parse_relay_list, push_distinct};
use cm_client::time::random_u64;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// How often (at most, jittered) a link waiting for a free address resolves the list again.
pub(super) const RESOLVE_AGAIN: Duration = Duration::from_secs(30);

/// A resolution of the relay list: its addresses (with their names), or why there are none.
pub(super) type Resolved = Pin<Box<dyn Future<Output = Result<Vec<DialTarget>, String>> + Send>>;

/// Resolves a relay list (DNS in the agent; a fixed answer in tests).
pub(super) type Resolve = Box<dyn Fn(String) -> Resolved + Send + Sync>;

/// Resolution through DNS (names may give several addresses; IP literals need none).
pub(super) fn dns() -> Resolve {
    Box::new(|relays| {
        Box::pin(async move {
            cm_client::resolve_targets(&relays)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// How many links to run for `wanted` connections to `relays`: `wanted` (at least one),
/// except that a list of IP literals only, which cannot grow, gets one link per distinct
/// address at most. A link finding no free address waits for one (see [`Addresses::take`]).
pub(super) fn link_count(relays: &str, wanted: usize) -> usize {
    let wanted = wanted.max(1);
    let Ok(entries) = parse_relay_list(relays) else {
        return wanted;
    };
    let mut literals = Vec::new();
    for entry in entries {
        match entry.literal {
            Some(addr) => push_distinct(&mut literals, [addr]),
            None => return wanted,
        }
    }
    wanted.min(literals.len()).max(1)
}

/// The addresses and which link holds which.
pub(super) struct Addresses {
    relays: String,
    resolve: Resolve,
    picker: Mutex<Picker>,
    /// The host name each address was resolved from (none for IP literals).
    names: Mutex<HashMap<SocketAddr, String>>,
    /// Woken when an address is released or the list changes (for a link waiting for one).
    changed: Notify,
}

impl Addresses {
    /// Addresses of `relays` (none known until the first [`Addresses::refresh`]).
    pub(super) fn new(relays: String, resolve: Resolve) -> Self {
        Self {
            relays,
            resolve,
            picker: Mutex::new(Picker::default()),
            names: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    fn picker(&self) -> MutexGuard<'_, Picker> {
        self.picker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves the relay list again (DNS may have changed); keeps the old list on failure.
    /// Returns whether any address is known.
    pub(super) async fn refresh(&self, id: LinkId) -> bool {
        match (self.resolve)(self.relays.clone()).await {
            Ok(targets) => {
                let names = targets
                    .iter()
                    .filter_map(|t| Some((t.addr, t.host.clone()?)))
                    .collect();
                *self.names.lock().unwrap_or_else(PoisonError::into_inner) = names;
                self.picker()
                    .set_addrs(targets.into_iter().map(|t| t.addr).collect());
                self.changed.notify_waiters();
                true
            }
            Err(e) => {
                let known = !self.picker().is_empty();
                if known {
                    tracing::debug!(link = id, error = %e, "cannot resolve the relays again; using the addresses known");
                } else {
                    tracing::warn!(link = id, error = %e, "cannot resolve any relay address; retrying");
                }
                known
            }
        }
    }

    /// An address no other link holds (the next after this link's last one). While every
    /// address is held by other links it waits for one to be released, resolving the list
    /// again every [`RESOLVE_AGAIN`] or so.
    pub(super) async fn take(&self, id: LinkId) -> DialTarget {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let taken = self.picker().take(id);
            if let Some(addr) = taken {
                let names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
                return match names.get(&addr) {
                    Some(host) => DialTarget::named(addr, host.clone()),
                    None => DialTarget::from(addr),
                };
            }
            tracing::debug!(
                link = id,
                "every relay address known is held by another link; waiting"
            );
            let again = RESOLVE_AGAIN / 2 + jitter(RESOLVE_AGAIN / 2, random_u64());
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep(again) => {
                    self.refresh(id).await;
                }
            }
        }
    }

    /// `id` gives its address up.
    pub(super) fn release(&self, id: LinkId) {
        self.picker().release(id);
        self.changed.notify_waiters();
    }

    /// See [`Picker::same_relay_as_another_link`].
    pub(super) fn same_relay_as_another_link(&self, id: LinkId) -> bool {
        self.picker().same_relay_as_another_link(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A resolver answering whatever `answer` holds at the time (nothing: a failure).
    fn fake_dns(answer: &Arc<Mutex<Vec<SocketAddr>>>) -> Resolve {
        let answer = Arc::clone(answer);
        Box::new(move |relays| {
            let addrs: Vec<DialTarget> = answer
                .lock()
                .unwrap()
                .iter()
                .map(|a| DialTarget::named(*a, "relays.example"))
                .collect();
            Box::pin(async move {
                if addrs.is_empty() {
                    Err(format!("{relays}: no such name"))
                } else {
                    Ok(addrs)
                }
            })
        })
    }

    #[test]
    fn every_wanted_link_runs_unless_the_list_is_ip_literals_only() {
        assert_eq!(link_count("relays.example:7443", 2), 2);
        assert_eq!(link_count("relays.example:7443", 0), 1);
        assert_eq!(link_count("10.0.0.1:7443, relays.example:7443", 3), 3);
        assert_eq!(link_count("10.0.0.1:7443", 2), 1);
        assert_eq!(
            link_count("10.0.0.1:7443,10.0.0.1:7443,10.0.0.2:7443", 3),
            2
        );
    }

    /// The bound only guards against a hang (time is paused: it passes when nothing else can
    /// happen).
    const HANG_GUARD: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn a_relay_name_resolving_to_one_address_at_start_and_two_later_ends_with_two_links_on_distinct_addresses()
     {
        let answer = Arc::new(Mutex::new(vec![a(1)]));
        let relays = "relays.example:7443";
        let addresses = Addresses::new(relays.into(), fake_dns(&answer));
        assert_eq!(link_count(relays, 2), 2, "both links run from the start");
        assert!(addresses.refresh(0).await);
        assert_eq!(
            addresses.take(0).await,
            DialTarget::named(a(1), "relays.example"),
            "the link dials the address under the name it was resolved from"
        );
        assert!(addresses.refresh(1).await);
        let second = addresses.take(1);
        tokio::pin!(second);
        tokio::select! {
            biased;
            addr = &mut second => panic!("link 1 got {addr:?}, which link 0 holds"),
            () = std::future::ready(()) => {}
        }
        // DNS now answers a second relay; link 1 finds it without any other link moving.
        answer.lock().unwrap().push(a(2));
        let addr = tokio::time::timeout(HANG_GUARD, second)
            .await
            .expect("the waiting link resolved the list again");
        assert_eq!(addr.addr, a(2));
    }
}
