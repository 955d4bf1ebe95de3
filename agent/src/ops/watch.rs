//! `watch_events`: the first frame is `Reply::<u64>::Ok(next_seq)`, then `EventFrame`s (replayed
//! ones first when `after_seq` was given) until the operator stops reading, a write times out,
//! or the agent stops.

use super::frames::{FrameIoError, write_frame};
use super::handler::{Cx, StreamHandler};
use crate::workspaces::WorkspaceRuntime;
use proto::event::{Event, EventFrame};
use proto::frame::{FrameError, MAX_FRAME_LEN};
use proto::message::Reply;
use proto::op;
use proto::ops::WatchQuery;
use std::future::Future;
use std::time::Duration;

use tokio::io::AsyncWrite;

/// How often an open watch re-checks the host's lock and `[policy]` (one `stat` each).
const POLICY_RECHECK: Duration = Duration::from_secs(1);

impl StreamHandler for op::WatchEvents {
    async fn serve<W, G>(cx: &Cx<'_>, query: WatchQuery, send: &mut W, peer_gone: G)
    where
        W: AsyncWrite + Unpin + Send,
        G: Future<Output = ()> + Send,
    {
        match cx.rt() {
            Ok(rt) => watch(cx, rt, query, send, peer_gone).await,
            Err(e) => {
                let _ = write_frame(send, &Reply::<u64>::Error(e.public()), MAX_FRAME_LEN).await;
            }
        }
    }
}

async fn watch<W, G>(
    cx: &Cx<'_>,
    rt: &WorkspaceRuntime,
    query: WatchQuery,
    send: &mut W,
    peer_gone: G,
) where
    W: AsyncWrite + Unpin + Send,
    G: Future<Output = ()> + Send,
{
    let (workspaces, fwd) = (cx.workspaces, cx.fwd);
    let mut sub = rt.hub.subscribe(query.after_seq);
    if write_frame(send, &Reply::<u64>::Ok(sub.next_seq), MAX_FRAME_LEN)
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(next_seq = sub.next_seq, after = ?query.after_seq, "watcher attached");
    tokio::pin!(peer_gone);
    // An attached operator keeps the workspace's launch lease alive (crate::lease).
    let mut renew = tokio::time::interval(workspaces.leases().renew_every());
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The host's own rules are checked again while the watch is open: a `cm-agent lock` (or a
    // changed rule) ends watches already open, not only new streams.
    let mut recheck = tokio::time::interval(POLICY_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let frame = tokio::select! {
            biased;
            () = &mut peer_gone => break,
            _ = recheck.tick() => {
                if let Err(e) = workspaces.policy().check(fwd.header.op, fwd.role) {
                    // Ending the stream is the notice: the operator's client opens the watch
                    // again and is refused with this reason.
                    tracing::info!(principal = %fwd.principal, error = %e, "closing an open watch");
                    break;
                }
                continue;
            }
            _ = renew.tick() => {
                // Re-checked on every renewal: a host locked since the watcher attached
                // renews nothing.
                workspaces.leases().renew_watching(
                    workspaces.policy(),
                    &rt.workspace.name,
                    fwd.header.op,
                    fwd.role,
                );
                continue;
            }
            f = sub.next() => f,
        };
        let Some(frame) = frame else { break };
        match write_frame(send, &frame, MAX_FRAME_LEN).await {
            Ok(()) => {}
            Err(FrameIoError::Frame(FrameError::Oversize { len, .. })) => {
                tracing::warn!(
                    seq = frame.seq,
                    len,
                    "event too large for a frame; sending a resync instead"
                );
                let resync = EventFrame {
                    seq: frame.seq,
                    event: Event::Resync {
                        reason: "an event was too large to send; re-read the session history"
                            .into(),
                    },
                };
                if write_frame(send, &resync, MAX_FRAME_LEN).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "watcher gone");
                break;
            }
        }
    }
}
