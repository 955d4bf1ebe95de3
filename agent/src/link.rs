//! The agent's links to its relays: `relay_connections` independent links (one per distinct
//! relay address at most), each dialing the address the shared [`picker`] gives it, serving
//! the same workspaces, heartbeating, and reconnecting forever with capped, jittered backoff —
//! to another free address when its relay failed. One relay's loss leaves the host online on
//! the others. Only cancellation ends it.

mod picker;
mod revocations;
mod serve;

use crate::workspaces::Workspaces;
use cm_client::backoff::{Backoff, Policy, RESTART_SPREAD, jitter};
use cm_client::time::random_u64;
use picker::{LinkId, Picker};
use proto::handshake::Key;
use proto::ids::HostId;
use revocations::Revocations;
use serve::SessionEnd;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the links need.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// The relay addresses: one `host:port` or a comma-separated list (names may resolve to
    /// several addresses).
    pub relays: String,
    /// How many links to distinct relay addresses to keep (capped by the addresses).
    pub connections: usize,
    /// Relay key pin (one for every relay of a fleet).
    pub pin: String,
    /// This host's id.
    pub host: HostId,
    /// The host secret.
    pub key: Key,
    /// Heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Relay silence before reconnecting.
    pub relay_timeout: Duration,
}

/// Whether the host-kill has been acted on since the last successful authentication: every
/// relay may close its link with `revoked`; the first one stops OpenCode.
#[derive(Debug, Default)]
struct HostKilled(AtomicBool);

impl HostKilled {
    /// True for the first caller after a [`HostKilled::reset`].
    fn first(&self) -> bool {
        !self.0.swap(true, Ordering::SeqCst)
    }

    /// A relay accepted this host again.
    fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the links share.
struct Links {
    config: LinkConfig,
    workspaces: Arc<Workspaces>,
    picker: Mutex<Picker>,
    /// Woken when an address is released or the list changes (for a link waiting for one).
    picker_changed: tokio::sync::Notify,
    revocations: Revocations,
    host_killed: HostKilled,
}

impl Links {
    fn picker(&self) -> std::sync::MutexGuard<'_, Picker> {
        self.picker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves the relay list again (DNS may have changed); keeps the old list on failure.
    /// Returns whether any address is known.
    async fn refresh(&self, id: LinkId) -> bool {
        match cm_client::resolve_all(&self.config.relays).await {
            Ok(addrs) => {
                self.picker().set_addrs(addrs);
                self.picker_changed.notify_waiters();
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

    /// An address no other link holds (the next after this link's last one); waits while every
    /// address is held by other links.
    async fn take(&self, id: LinkId) -> SocketAddr {
        loop {
            let changed = self.picker_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(addr) = self.picker().take(id) {
                return addr;
            }
            tracing::debug!(
                link = id,
                "every relay address is held by another link; waiting"
            );
            changed.await;
        }
    }

    fn release(&self, id: LinkId) {
        self.picker().release(id);
        self.picker_changed.notify_waiters();
    }
}

/// Runs the links until `cancel` fires; operation streams are served from `workspaces`.
pub async fn run(config: LinkConfig, workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    let initial = match cm_client::resolve_all(&config.relays).await {
        Ok(addrs) => addrs,
        Err(e) => {
            tracing::warn!(error = %e, relays = %config.relays, "cannot resolve the relays yet; retrying");
            Vec::new()
        }
    };
    let picker = Picker::new(initial);
    let count = if picker.is_empty() {
        // Unknown yet: one per listed entry at most; a surplus link waits for a free address.
        let entries = config.relays.split(',').count();
        config.connections.min(entries).max(1)
    } else {
        picker.links_for(config.connections)
    };
    tracing::info!(relays = %config.relays, links = count, "linking to the relays");
    let links = Arc::new(Links {
        config,
        workspaces,
        picker: Mutex::new(picker),
        picker_changed: tokio::sync::Notify::new(),
        revocations: Revocations::default(),
        host_killed: HostKilled::default(),
    });
    let tasks = TaskTracker::new();
    let worker = Arc::clone(&links);
    let stop = cancel.clone();
    tasks.spawn(async move {
        tokio::select! {
            () = stop.cancelled() => {}
            () = worker.revocations.serve(&worker.workspaces) => {}
        }
    });
    for id in 0..count {
        tasks.spawn(run_link(Arc::clone(&links), id, cancel.clone()));
    }
    tasks.close();
    tasks.wait().await;
}

/// One link: pick an address, connect, serve, and again, until `cancel` fires.
async fn run_link(links: Arc<Links>, id: LinkId, cancel: CancellationToken) {
    link_loop(&links, id, &cancel).await;
    links.release(id);
}

async fn link_loop(links: &Links, id: LinkId, cancel: &CancellationToken) {
    let mut backoff = Backoff::new(Policy::AGENT);
    loop {
        let known = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            known = links.refresh(id) => known,
        };
        let delay = if known {
            let relay = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                addr = links.take(id) => addr,
            };
            match attempt(links, id, relay, &mut backoff, cancel).await {
                Some(delay) => delay,
                None => return,
            }
        } else {
            backoff.next_delay(random_u64())
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// One connection attempt to `relay` and its life; the delay before the next attempt, or
/// `None` when cancelled.
async fn attempt(
    links: &Links,
    id: LinkId,
    relay: SocketAddr,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let host = &links.config.host;
    let connected = tokio::select! {
        biased;
        () = cancel.cancelled() => return None,
        r = serve::connect(links, relay) => r,
    };
    let session = match connected {
        Ok(session) => session,
        Err(e) => {
            let d = backoff.next_delay(random_u64());
            if e.is_fatal() {
                tracing::error!(link = id, %relay, error = %e, delay = ?d, attempt = backoff.attempt(), "relay refused this host; re-enroll it (cm-relay host add, then cm-agent enroll) if this persists");
            } else {
                tracing::warn!(link = id, %relay, error = %e, delay = ?d, attempt = backoff.attempt(), "cannot reach relay; retrying");
            }
            return Some(d);
        }
    };
    links.host_killed.reset();
    let since = Instant::now();
    tracing::info!(%host, link = id, %relay, conn = %session.conn_id, "connected to relay");
    let end = serve::serve(links, id, session, cancel).await;
    backoff.connection_lasted(since.elapsed());
    match end {
        SessionEnd::Cancelled => None,
        SessionEnd::RelayRestarting => {
            backoff.reset();
            let d = jitter(RESTART_SPREAD, random_u64());
            tracing::info!(link = id, %relay, delay = ?d, "relay is restarting; reconnecting");
            // Consume the "immediate" first attempt: the spread replaces it.
            let _ = backoff.next_delay(0);
            Some(d)
        }
        SessionEnd::Replaced => {
            let d = backoff.next_delay(random_u64());
            if links.picker().same_relay_as_another_link(id) {
                tracing::warn!(link = id, %relay, delay = ?d, "this relay took another link's connection of this host instead (the same relay under two addresses); this link moves to another address");
            } else {
                tracing::warn!(link = id, %relay, delay = ?d, "the relay replaced this connection with a newer one of this host; reconnecting");
            }
            Some(d)
        }
        SessionEnd::Lost(reason) => {
            let d = backoff.next_delay(random_u64());
            tracing::warn!(link = id, %relay, %reason, delay = ?d, "relay connection lost; reconnecting");
            Some(d)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_kill_acts_once_until_a_relay_accepts_the_host_again() {
        let killed = HostKilled::default();
        assert!(killed.first());
        assert!(!killed.first(), "the second relay's notice");
        killed.reset();
        assert!(killed.first());
    }
}
