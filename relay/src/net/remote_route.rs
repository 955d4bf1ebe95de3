//! The operator's relay's side of relay-to-relay forwarding: when the host's agent is not
//! connected here, open the agent stream through the peer relays that hold it, best first.
//! The stream then is spliced exactly like a local agent stream (`requests::forward`).

use super::Shared;
use super::splice::ForwardError;
use crate::fleet::peer_pool::PeerPool;
use crate::fleet::peer_stream::{PeerAnswer, PeerOpen};
use crate::fleet::{PeerDirectory, RelayId};
use proto::ids::HostId;
use proto::ops::ForwardHeader;

/// The peer relays holding `host`'s agent (none for the single relay, or before the peer
/// endpoint started).
pub(crate) fn holders(shared: &Shared, host: &HostId) -> Vec<RelayId> {
    match (&shared.peers, shared.peer_pool.get()) {
        (Some(peers), Some(_)) => peers.relays_holding(host),
        _ => Vec::new(),
    }
}

/// Opens the agent stream through the first of `holders` that has it (those that could not be
/// reached lately last): `None` when none did
/// (the host is offline as far as this relay can tell), the busy error when every relay that
/// had it had no free stream.
pub(crate) async fn open(
    shared: &Shared,
    holders: &[RelayId],
    fwd: &ForwardHeader,
) -> Option<Result<(quinn::SendStream, quinn::RecvStream), ForwardError>> {
    let pool = shared.peer_pool.get()?;
    let peers = shared.peers.as_deref()?;
    open_through(peers, pool, holders, fwd).await
}

/// [`open`], given the fleet's pieces.
pub(crate) async fn open_through(
    peers: &dyn PeerDirectory,
    pool: &PeerPool,
    holders: &[RelayId],
    fwd: &ForwardHeader,
) -> Option<Result<(quinn::SendStream, quinn::RecvStream), ForwardError>> {
    let host = fwd.header.host.clone()?;
    let open = PeerOpen {
        host: host.clone(),
        forward: fwd.clone(),
    };
    let mut busy = None;
    for id in &pool.order(holders) {
        if id == peers.local_id() {
            continue;
        }
        match pool.open(id, &open).await {
            Ok((send, recv, PeerAnswer::Open)) => {
                tracing::debug!(peer = %id, %host, "agent stream opened through a peer relay");
                return Some(Ok((send, recv)));
            }
            Ok((_, _, PeerAnswer::NotHere)) => {
                tracing::debug!(peer = %id, %host, "peer relay no longer holds the host");
            }
            Ok((_, _, PeerAnswer::Busy { streams })) => busy = Some(streams),
            Ok((_, _, PeerAnswer::Invalid { message })) => {
                tracing::error!(peer = %id, %host, %message, "peer relay refused the open frame");
            }
            // Reported to the directory by the pool (logged there too).
            Err(_) => {}
        }
    }
    busy.map(|streams| Err(ForwardError::Busy(streams)))
}

#[cfg(test)]
mod tests;
