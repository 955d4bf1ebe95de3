//! The host list: `host_list` answers with the whole list once, `watch_hosts` with the whole
//! list and then what changed whenever presence or status changes (coalesced), until the
//! operator goes away. Both in pages (`proto::host_watch`), so fleets of any size fit; each
//! is a typed stream handler (see `local`).

use super::Shared;
use super::body::reply;
use super::error::RequestError;
use super::local::{Cx, LocalStream};
use crate::authz;
use crate::time::now_ms;
use proto::frame::MAX_FRAME_LEN;
use proto::host_watch::{self, HostDiffer, HostUpdate};
use proto::ids::HostId;
use proto::message::{HostList, Reply};
use proto::op;
use proto::operation::Operation;
use proto::rbac::Role;
use std::sync::Arc;
use std::time::Duration;

/// How often a host watch re-checks presence even without a change notice (heartbeat timeouts
/// are noticed by time passing, not by an event).
const WATCH_TICK: Duration = Duration::from_millis(500);

/// Shortest time between two host-list updates on one watch: the first change after a quiet
/// period goes out at once, later ones are coalesced.
const WATCH_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Shortest time between two updates when a host came online or went offline: quick enough
/// to look immediate, while a reconnect storm of thousands of agents still costs at most ten
/// lists per second per watcher.
const WATCH_PRESENCE_INTERVAL: Duration = Duration::from_millis(100);

async fn host_list(
    shared: &Arc<Shared>,
    grants: &[(String, Role)],
) -> Result<HostList, RequestError> {
    let rows = shared.store.read(|s| s.list_hosts()).await?;
    let visible: Vec<HostId> = rows
        .into_iter()
        .filter(|r| authz::lists_host(grants, r))
        .map(|r| r.id)
        .collect();
    let now = now_ms();
    let roles = visible
        .iter()
        .filter_map(|h| authz::effective_role(grants, h).map(|r| (h.clone(), r)))
        .collect();
    Ok(HostList {
        now_ms: now,
        hosts: shared.presence.snapshot(&visible, now),
        roles,
        global_role: authz::global_role(grants),
    })
}

/// `host_list`: the whole list once.
impl LocalStream for op::HostList {
    async fn serve(cx: &Cx<'_>, (): (), send: quinn::SendStream) {
        host_list_once(cx.shared, cx.grants, send).await;
    }
}

/// `watch_hosts`: the whole list, then what changed, until the operator goes away.
impl LocalStream for op::WatchHosts {
    async fn serve(cx: &Cx<'_>, (): (), send: quinn::SendStream) {
        watch_hosts(cx.shared, cx.grants, send).await;
    }
}

async fn host_list_once(
    shared: &Arc<Shared>,
    grants: &[(String, Role)],
    mut send: quinn::SendStream,
) {
    let sent = match host_list(shared, grants).await {
        Ok(list) => send_update(&mut send, HostUpdate::whole(&list)).await,
        Err(e) => Err(Some(e)),
    };
    if let Err(Some(e)) = sent {
        let _ = reply::<()>(&mut send, &Reply::Error(e.wire())).await;
    }
    let _ = send.finish();
}

/// Writes one update as its pages. `Err(Some)`: the update cannot be sent (the caller tells the
/// operator); `Err(None)`: the stream is gone.
async fn send_update(
    send: &mut quinn::SendStream,
    update: <op::WatchHosts as Operation>::Reply,
) -> Result<(), Option<RequestError>> {
    let frames =
        host_watch::pages(update, host_watch::PAGE_BUDGET, MAX_FRAME_LEN).map_err(|e| {
            tracing::warn!(error = %e, "host list update cannot be encoded");
            Some(RequestError::HostStatusTooLarge(e.to_string()))
        })?;
    for frame in frames {
        crate::framed::write_within(send, &frame, crate::framed::WRITE_TIMEOUT)
            .await
            .map_err(|_| None)?;
    }
    Ok(())
}

/// Sends the host list now, then what changed whenever something does, until the operator goes
/// away.
async fn watch_hosts(shared: &Arc<Shared>, grants: &[(String, Role)], mut send: quinn::SendStream) {
    let mut changes = shared.presence.changes();
    let mut differ = HostDiffer::new();
    let mut tick = tokio::time::interval(WATCH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        let list = match host_list(shared, grants).await {
            Ok(list) => list,
            Err(e) => {
                let _ = reply::<()>(&mut send, &Reply::Error(e.wire())).await;
                return;
            }
        };
        if let Some(delta) = differ.diff(&list) {
            // Coalescing keeps the cost per watcher bounded when many hosts heartbeat (measured
            // by cm-bench): status-only changes go out at most once per WATCH_MIN_INTERVAL, a
            // host coming or going at most once per WATCH_PRESENCE_INTERVAL.
            let interval = if delta.presence_changed {
                WATCH_PRESENCE_INTERVAL
            } else {
                WATCH_MIN_INTERVAL
            };
            let wait = last_sent.map_or(Duration::ZERO, |t| interval.saturating_sub(t.elapsed()));
            if !wait.is_zero() {
                tokio::select! {
                    biased;
                    () = shared.cancel.cancelled() => return,
                    _ = send.stopped() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                // Send what changed by now, not what had changed before the wait.
                continue;
            }
            match send_update(&mut send, delta.update).await {
                Ok(()) => {}
                Err(Some(e)) => {
                    let _ = reply::<()>(&mut send, &Reply::Error(e.wire())).await;
                    return;
                }
                Err(None) => return,
            }
            differ.commit(list);
            last_sent = Some(tokio::time::Instant::now());
        }
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            _ = send.stopped() => return,
            _ = changes.changed() => {}
            _ = tick.tick() => {}
        }
    }
}
