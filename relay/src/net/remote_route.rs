//! The operator's relay's side of relay-to-relay forwarding: when the host's agent is not
//! connected here, open the agent stream through the peer relays that hold it, best first.
//! The operator's first bytes go along with the open request; the rest of the stream is then
//! spliced exactly like a local agent stream (`requests::forward`).

use super::Shared;
use super::splice::ForwardError;
use crate::fleet::peer_pool::PeerPool;
use crate::fleet::peer_stream::{PeerAnswer, PeerOpen};
use crate::fleet::send_ahead::SendAhead;
use crate::fleet::{PeerDirectory, RelayId};
use crate::framed::FramedRecv;
use proto::ids::HostId;
use proto::ops::ForwardHeader;
use tokio::io::AsyncRead;

/// The peer relays holding `host`'s agent (none for the single relay, or before the peer
/// endpoint started).
pub(crate) fn holders(shared: &Shared, host: &HostId) -> Vec<RelayId> {
    match (&shared.peers, shared.peer_pool.get()) {
        (Some(peers), Some(_)) => peers.relays_holding(host),
        _ => Vec::new(),
    }
}

/// What [`open`] hands back: the stream to the agent, and how many of the operator's bytes
/// (after its header) already went to the agent through it.
pub(crate) type Opened = (quinn::SendStream, quinn::RecvStream, u64);

/// Opens the agent stream through the first of `holders` that has it (those that could not be
/// reached lately last), sending the operator's first bytes (from `op`) along without waiting
/// for the peer's answer: `None` when none did (the host is offline as far as this relay can
/// tell; `op` then reads as if untouched), the busy error when every relay that had it had no
/// free stream.
pub(crate) async fn open<R: AsyncRead + Unpin>(
    shared: &Shared,
    holders: &[RelayId],
    fwd: &ForwardHeader,
    op: &mut FramedRecv<R>,
) -> Option<Result<Opened, ForwardError>> {
    let pool = shared.peer_pool.get()?;
    let peers = shared.peers.as_deref()?;
    open_through(peers, pool, holders, fwd, op).await
}

/// [`open`], given the fleet's pieces.
pub(crate) async fn open_through<R: AsyncRead + Unpin>(
    peers: &dyn PeerDirectory,
    pool: &PeerPool,
    holders: &[RelayId],
    fwd: &ForwardHeader,
    op: &mut FramedRecv<R>,
) -> Option<Result<Opened, ForwardError>> {
    let host = fwd.header.host.clone()?;
    let open = PeerOpen {
        host: host.clone(),
        forward: fwd.clone(),
    };
    // Sent behind the open frame to each relay asked, until one opens the stream.
    let mut ahead = SendAhead::new(op);
    let mut busy = None;
    for id in &pool.order(holders) {
        if id == peers.local_id() {
            continue;
        }
        match pool.open(id, &open, &mut ahead).await {
            Ok((mut send, recv, PeerAnswer::Open)) => {
                tracing::debug!(peer = %id, %host, "agent stream opened through a peer relay");
                if ahead.failed() {
                    // The operator's stream broke before the answer: the agent must not take
                    // what it got for a whole request.
                    let _ = send.reset(OPERATOR_GONE.into());
                }
                let sent = ahead.hand_over();
                return Some(Ok((send, recv, sent)));
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

/// Application code resetting the stream to the agent when the operator's side failed.
const OPERATOR_GONE: u32 = 1;

#[cfg(test)]
mod tests;
