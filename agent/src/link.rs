//! The agent's links to its relays: `relay_connections` independent links, each dialing a
//! distinct relay address the shared [`addresses`] give it (a link without a free address
//! waits for one, resolving the list again now and then), serving
//! the same workspaces, heartbeating, and reconnecting forever with capped, jittered backoff —
//! to another free address when its relay failed. One relay's loss leaves the host online on
//! the others. Only cancellation ends it.

mod addresses;
mod picker;
mod revocations;
mod serve;
mod transports;
mod trust;

use crate::workspaces::Workspaces;
use addresses::Addresses;
use cm_client::DialTarget;
use cm_client::backoff::{Backoff, Policy, RESTART_SPREAD, jitter};
use cm_client::time::random_u64;
use picker::LinkId;
use proto::handshake::Key;
use proto::ids::HostId;
use revocations::Revocations;
use serve::SessionEnd;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The state folder (a zero-trust host keeps the revocation lists it takes there).
    pub state_dir: std::path::PathBuf,
    /// Which transports reach the relays (QUIC, TCP, proxy) and how to choose.
    pub transport: cm_client::transport::TransportOptions,
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
    addresses: Addresses,
    revocations: Revocations,
    host_killed: HostKilled,
    transports: Arc<transports::Transports>,
}

/// Runs the links until `cancel` fires; operation streams are served from `workspaces`.
pub async fn run(config: LinkConfig, workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    // Every wanted link runs from the start, even when the relays resolve to fewer addresses
    // (or to none yet): a link without a free address waits, resolving the list again.
    let count = addresses::link_count(&config.relays, config.connections);
    tracing::info!(relays = %config.relays, links = count, "linking to the relays");
    let links = Arc::new(Links {
        addresses: Addresses::new(config.relays.clone(), addresses::dns()),
        transports: Arc::new(transports::Transports::new(&config.state_dir)),
        config,
        workspaces,
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
    links.addresses.release(id);
}

async fn link_loop(links: &Links, id: LinkId, cancel: &CancellationToken) {
    let mut backoff = Backoff::new(Policy::AGENT);
    loop {
        let known = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            known = links.addresses.refresh(id) => known,
        };
        let delay = if known {
            let relay = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                addr = links.addresses.take(id) => addr,
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
    target: DialTarget,
    backoff: &mut Backoff,
    cancel: &CancellationToken,
) -> Option<Duration> {
    let host = &links.config.host;
    let relay = target.addr;
    // A QUIC session a TCP connection handed over to (see `serve::SessionEnd::MovingToQuic`).
    let mut handed_over = None;
    loop {
        let connected = match handed_over.take() {
            Some(session) => Ok((session, cm_client::transport::Transport::Quic)),
            None => tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                r = serve::connect(links, &target) => r,
            },
        };
        let (session, transport) = match connected {
            Ok(connected) => connected,
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
        // Noted before it is logged: whoever waits for the log line finds it in `status`.
        links.transports.connected(id, relay, transport);
        tracing::info!(%host, link = id, %relay, conn = %session.conn_id, %transport, "connected to relay");
        let end = serve::serve(links, id, session, relay, transport, cancel).await;
        links.transports.disconnected(id);
        backoff.connection_lasted(since.elapsed());
        if let SessionEnd::MovingToQuic { from, next } = end {
            backoff.reset();
            tracing::info!(link = id, %relay, from = %from, to = %cm_client::transport::Transport::Quic, "QUIC answers again; moving this link from TCP to QUIC (the TCP connection's open streams finish first)");
            handed_over = Some(*next);
            continue;
        }
        if let Some(delay) = after(links, id, relay, end, backoff) {
            return delay;
        }
    }
}

/// What follows the end of a session: `Some(delay)` before the next attempt (`Some(None)`:
/// cancelled), or `None` to go on with the same relay at once (a hand-over to QUIC, which the
/// caller serves).
fn after(
    links: &Links,
    id: LinkId,
    relay: SocketAddr,
    end: SessionEnd,
    backoff: &mut Backoff,
) -> Option<Option<Duration>> {
    match end {
        SessionEnd::Cancelled => Some(None),
        SessionEnd::MovingToQuic { .. } => None,
        SessionEnd::RelayRestarting => {
            backoff.reset();
            let d = jitter(RESTART_SPREAD, random_u64());
            tracing::info!(link = id, %relay, delay = ?d, "relay is restarting; reconnecting");
            // Consume the "immediate" first attempt: the spread replaces it.
            let _ = backoff.next_delay(0);
            Some(Some(d))
        }
        SessionEnd::Replaced => {
            let d = backoff.next_delay(random_u64());
            if links.addresses.same_relay_as_another_link(id) {
                tracing::warn!(link = id, %relay, delay = ?d, "this relay took another link's connection of this host instead (the same relay under two addresses); this link moves to another address");
            } else {
                tracing::warn!(link = id, %relay, delay = ?d, "the relay replaced this connection with a newer one of this host; reconnecting");
            }
            Some(Some(d))
        }
        SessionEnd::Lost(reason) => {
            let d = backoff.next_delay(random_u64());
            tracing::warn!(link = id, %relay, %reason, delay = ?d, "relay connection lost; reconnecting");
            Some(Some(d))
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
