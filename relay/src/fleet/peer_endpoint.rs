//! The relay-to-relay endpoint (`[fleet] peer_listen`): accepts peer connections (mutual TLS,
//! see `peer_tls`), names each by the registered relay whose pin it presented, and hands each
//! stream a peer opens to `serve` (what a stream does is the relay's business: `net`). The
//! same endpoint dials peers (`peer_pool`), so a relay uses one UDP port among its peers.
//!
//! A relay's registration is checked again for every stream: a relay retired while connected
//! has its connection closed at its next stream.

use super::directory::{PeerDirectory, RelayId};
use super::peer_pool::{PeerPool, RETIRED};
use super::peer_tls;
use crate::inflight::InFlight;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Application close code: this relay is stopping.
pub const STOPPING: u32 = 2;

/// Where the accept loop runs and stops.
#[derive(Debug, Clone)]
pub struct Tasks {
    /// Cancelled when the relay stops.
    pub cancel: CancellationToken,
    /// Tracks every connection and stream task (the relay's drain waits for them).
    pub tracker: TaskTracker,
}

/// The registered relay that presented `pin`, if any (now).
fn registered_relay(directory: &dyn PeerDirectory, pin: &str) -> Option<RelayId> {
    directory
        .peers()
        .into_iter()
        .find(|p| p.peer_pin == pin)
        .map(|p| p.id)
}

/// Accepts peer connections until the relay stops, then closes the endpoint (and with it the
/// connections this relay dialled from it). Accepted connections are remembered in `pool`.
pub async fn accept_loop<F, Fut>(
    endpoint: quinn::Endpoint,
    pool: Arc<PeerPool>,
    tasks: Tasks,
    serve: F,
) where
    F: Fn(RelayId, quinn::SendStream, quinn::RecvStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let incoming = tokio::select! {
            biased;
            () = tasks.cancel.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        let connection = connection(incoming, Arc::clone(&pool), tasks.clone(), serve.clone());
        tasks.tracker.spawn(connection);
    }
    endpoint.close(STOPPING.into(), b"relay stopping");
    tracing::debug!("peer accept loop ended");
}

/// Serves one peer connection: every stream it opens, while its relay stays registered.
async fn connection<F, Fut>(incoming: quinn::Incoming, pool: Arc<PeerPool>, tasks: Tasks, serve: F)
where
    F: Fn(RelayId, quinn::SendStream, quinn::RecvStream) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            // Unregistered pins end here (the handshake refused them; see `peer_tls`).
            tracing::info!(%remote, error = %e, "peer handshake failed");
            return;
        }
    };
    let directory = pool.directory();
    let pin = peer_tls::pin_of_connection(&conn).unwrap_or_default();
    let Some(from) = registered_relay(directory.as_ref(), &pin) else {
        conn.close(RETIRED.into(), b"not a registered relay");
        return;
    };
    pool.accepted(pin.clone(), conn.clone());
    tracing::debug!(peer = %from, %remote, "peer relay connected");
    // The streams run inside this task, as an operator connection's requests do (see
    // `inflight`): a new one is opened to the agent on the worker that accepted it, without
    // first waiting for a worker to pick up a spawned task. Left-overs go to the tracker.
    let mut streams = InFlight::new(tasks.tracker.clone());
    loop {
        let stream = tokio::select! {
            biased;
            () = tasks.cancel.cancelled() => break,
            never = streams.run() => match never {},
            stream = conn.accept_bi() => stream,
        };
        let (send, recv) = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = %from, error = %e, "peer connection ended");
                return;
            }
        };
        if !directory.is_registered_peer(&from, &pin) {
            tracing::info!(peer = %from, "closing the connection of a relay no longer registered");
            conn.close(RETIRED.into(), b"relay retired");
            return;
        }
        // Polled on the next turn of this loop, before anything else is awaited.
        streams.push(Box::pin(serve(from.clone(), send, recv)));
    }
    conn.close(STOPPING.into(), b"relay stopping");
}
