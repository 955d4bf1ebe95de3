//! The agent's relay's side of relay-to-relay forwarding: a peer relay (already past mutual
//! TLS, named by its registered pin) asks for a stream to a host whose agent this relay holds;
//! the stream is opened on the agent's connection and spliced, byte for byte. Who asks was
//! authenticated, authorized and audited by the operator's relay: here nothing is parsed
//! after the open frame and nothing is audited (logged at debug). The stream does take a slot
//! of this relay's stream quota for the principal and role the operator's relay names, like a
//! local operator's stream: one user through several relays holds no more of the agent's
//! streams than through one.

use super::Shared;
use super::error::RequestError;
use super::splice::{self, ForwardError};
use super::stream_quota::StreamQuota;
use crate::fleet::RelayId;
use crate::fleet::peer_endpoint::{self, Tasks};
use crate::fleet::peer_pool::PeerPool;
use crate::fleet::peer_stream::{self, MAX_PEER_FRAME, PeerAnswer};
use crate::fleet::send_ahead::SendAhead;
use crate::framed::FramedRecv;
use crate::presence::Presence;
use proto::header::Op;
use std::sync::Arc;
use std::time::Duration;

/// Starts serving peer streams on `endpoint` and dialling peers from it (through `pool`).
/// The accept loop is a tracked task of the relay; it closes the endpoint when the relay stops.
pub(crate) fn start(shared: &Arc<Shared>, endpoint: quinn::Endpoint, pool: PeerPool) {
    let pool = Arc::new(pool);
    if shared.peer_pool.set(Arc::clone(&pool)).is_err() {
        tracing::error!("the peer endpoint was started twice; keeping the first");
        return;
    }
    shared.tracker.spawn(close_retired(
        Arc::clone(&pool),
        shared.presence.changes(),
        shared.cancel.clone(),
    ));
    let serving = AgentSide {
        presence: Arc::clone(&shared.presence),
        quota: Arc::clone(&shared.stream_quota),
    };
    let tasks = Tasks {
        cancel: shared.cancel.clone(),
        tracker: shared.tracker.clone(),
    };
    let serve_stream = move |from, send, recv| serve(serving.clone(), from, send, recv);
    shared.tracker.spawn(peer_endpoint::accept_loop(
        endpoint,
        pool,
        tasks,
        serve_stream,
    ));
}

/// Cuts the connections of relays that left the directory (`cluster remove`) as soon as the
/// fleet's view changes (the `relays` notice reloads it and bumps presence changes).
async fn close_retired(
    pool: Arc<PeerPool>,
    mut changes: tokio::sync::watch::Receiver<u64>,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let closed = pool.close_unregistered();
        if closed > 0 {
            tracing::info!(closed, "closed connections of relays no longer registered");
        }
    }
}

/// What the agent's relay serves peer streams with.
#[derive(Clone)]
pub(crate) struct AgentSide {
    /// The agents connected to this relay.
    pub(crate) presence: Arc<dyn Presence<quinn::Connection>>,
    /// This relay's share of each host's agent streams among the people using it (the same
    /// one its own operators' streams take from).
    pub(crate) quota: Arc<StreamQuota>,
}

/// Serves one stream a peer relay opened: read its open frame, open the agent stream of this
/// relay's own connection to the host, answer, splice.
pub(crate) async fn serve(
    side: AgentSide,
    from: RelayId,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
) {
    let mut recv = FramedRecv::new(recv, MAX_PEER_FRAME);
    let open = match peer_stream::read_open(&mut recv).await {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!(peer = %from, error = %e, "refused a peer stream");
            let message = e.to_string();
            answer_and_finish(send, PeerAnswer::Invalid { message }).await;
            return;
        }
    };
    let host = open.host;
    let Some(agent) = side.presence.route(&host) else {
        tracing::debug!(peer = %from, %host, "peer stream for a host not held here");
        answer_and_finish(send, PeerAnswer::NotHere).await;
        return;
    };
    // Held until the stream ends.
    let forward = &open.forward;
    let _slot = match side
        .quota
        .take(&host, &forward.principal, forward.role, QUOTA_WAIT)
        .await
    {
        Ok(slot) => slot,
        Err(full) => {
            tracing::info!(peer = %from, user = %forward.principal, %host, ?full, "no stream slot for a peer stream");
            refuse_as_relay(send, RequestError::Quota { full, host }).await;
            return;
        }
    };
    // What the operator's relay sent right behind the open frame (the operator's first
    // bytes), and its end when that came too, go to the agent in the same write as the
    // forward header: one packet, where an end sent on its own was a second one the agent
    // waited for.
    let mut first = SendAhead::new(&mut recv);
    first.take_ready();
    if first.failed() {
        // The operator's relay gave up on the stream: nothing to open or answer.
        tracing::debug!(peer = %from, %host, "peer stream reset before it was opened");
        return;
    }
    let ended = first.ended();
    let ahead = first.hand_over_bytes();
    let opened = splice::open_with(&agent, forward, &ahead, ended).await;
    let (agent_send, agent_recv) = match opened {
        Ok(streams) => streams,
        Err(e) => {
            tracing::debug!(peer = %from, %host, error = %e, "peer stream not opened");
            let answer = match e {
                ForwardError::Busy(streams) => PeerAnswer::Busy { streams },
                // The agent's connection is going away: as good as not held here.
                ForwardError::Open(_) | ForwardError::Header(_) => PeerAnswer::NotHere,
            };
            // The operator's relay kept what it sent ahead, for the next relay.
            answer_and_finish(send, answer).await;
            return;
        }
    };
    tracing::debug!(peer = %from, %host, op = open.forward.header.op.as_str(), principal = %open.forward.principal, "peer stream spliced to the agent");
    let splice = async move {
        if ended {
            // The operator's relay sent everything and waits only for the answer: it goes with
            // the agent's first bytes (see `splice::splice_answering`).
            let answer = splice::Answer {
                frame: peer_stream::open_frame(),
                hold: OPEN_ANSWER_HOLD,
            };
            splice::splice_answering(send, recv, agent_send, agent_recv, answer).await
        } else {
            // The operator's relay may be holding back the operator's bytes until answered.
            if let Err(e) = peer_stream::answer(&mut send, &PeerAnswer::Open).await {
                tracing::debug!(error = %e, "peer went away before the splice");
                return splice::Carried::default();
            }
            splice::splice_uninspected(send, recv, agent_send, agent_recv).await
        }
    };
    // The peer connection's streams run in its task (`inflight`); a forward's bulk copy runs
    // as its own task, on any worker, as on the operator's relay (`requests::forward`).
    let carried = if open.forward.header.op == Op::PortForward {
        tokio::spawn(splice).await.unwrap_or_default()
    } else {
        splice.await
    };
    let up = carried.up + ahead.len() as u64;
    tracing::debug!(peer = %from, %host, up, down = carried.down, "peer stream ended");
}

/// How long the `open` answer to a peer relay that sent everything waits for the agent's first
/// bytes, to go in the same write: the peer relay waits for nothing else meanwhile, and an
/// agent that takes longer gets its answer sent alone.
const OPEN_ANSWER_HOLD: Duration = Duration::from_millis(5);

/// How long a peer stream waits for a slot of the stream quota: short, so that the wait and
/// the wait for a free agent stream (5 s) end before the operator's relay gives up on the
/// answer (`peer_stream::ANSWER_TIMEOUT`, 10 s).
const QUOTA_WAIT: Duration = Duration::from_secs(2);

/// Refuses the stream the way the operator's relay refuses one itself: the stream is answered
/// `open` and carries the relay's error reply, which the operator's relay passes on to the
/// operator unchanged (it is not an agent's refusal: not audited as one).
async fn refuse_as_relay(mut send: quinn::SendStream, error: RequestError) {
    if peer_stream::answer(&mut send, &PeerAnswer::Open)
        .await
        .is_ok()
    {
        super::body::refuse(send, error).await;
    }
}

/// Answers without opening anything, and ends the stream.
async fn answer_and_finish(mut send: quinn::SendStream, answer: PeerAnswer) {
    let _ = peer_stream::answer(&mut send, &answer).await;
    let _ = send.finish();
}
