//! The host list: `host_list` answers once, `watch_hosts` answers again whenever presence or
//! status changes (coalesced), until the operator goes away.

use super::Shared;
use super::requests::reply;
use crate::authz;
use crate::framed::{StreamError, send_frame};
use crate::time::now_ms;
use proto::frame::{FrameError, MAX_FRAME_LEN};
use proto::ids::HostId;
use proto::message::{HostList, Reply};
use proto::rbac::Role;
use proto::wire_error::{ErrorCode, WireError};
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

async fn host_list(shared: &Arc<Shared>, grants: &[(String, Role)]) -> Result<HostList, WireError> {
    let rows = shared.store.call(|s| s.list_hosts()).await.map_err(|e| {
        tracing::error!(error = %e, "host lookup failed");
        WireError::new(ErrorCode::Internal, "relay store failure; see its log")
    })?;
    let visible: Vec<HostId> = rows
        .into_iter()
        .filter(|r| !r.revoked && authz::may_see(grants, &r.id))
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

pub(super) async fn host_list_once(
    shared: &Arc<Shared>,
    grants: &[(String, Role)],
    mut send: quinn::SendStream,
) {
    let r = match host_list(shared, grants).await {
        Ok(list) => Reply::Ok(list),
        Err(e) => Reply::Error(e),
    };
    let _ = reply(&mut send, &r).await;
    let _ = send.finish();
}

/// Sends the host list now and again whenever it changes, until the operator goes away.
pub(super) async fn watch_hosts(
    shared: &Arc<Shared>,
    grants: &[(String, Role)],
    mut send: quinn::SendStream,
) {
    let mut changes = shared.presence.changes();
    let mut last: Option<Vec<proto::message::HostInfo>> = None;
    let mut tick = tokio::time::interval(WATCH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        let list = match host_list(shared, grants).await {
            Ok(list) => list,
            Err(e) => {
                let _ = reply::<()>(&mut send, &Reply::Error(e)).await;
                return;
            }
        };
        if last.as_ref() != Some(&list.hosts) {
            // Coalescing keeps the cost per watcher bounded when many hosts heartbeat (measured
            // by cm-bench): status-only changes go out at most once per WATCH_MIN_INTERVAL, a
            // host coming or going at most once per WATCH_PRESENCE_INTERVAL.
            let presence_changed = last
                .as_ref()
                .is_none_or(|l| presence(l) != presence(&list.hosts));
            let interval = if presence_changed {
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
                // Send the newest list, not the one from before the wait.
                continue;
            }
            last = Some(list.hosts.clone());
            // A list that does not fit one frame gets a typed error, not a silent end (the
            // frame is encoded, and its size checked, before anything is written).
            match send_frame(&mut send, &Reply::Ok(list), MAX_FRAME_LEN).await {
                Ok(()) => {}
                Err(StreamError::Frame(FrameError::Oversize { len, max })) => {
                    let e = WireError::new(
                        ErrorCode::Unavailable,
                        format!("the host list is {len} bytes, over the {max}-byte frame limit"),
                    );
                    let _ = reply::<()>(&mut send, &Reply::Error(e)).await;
                    return;
                }
                Err(_) => return,
            }
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

/// Which hosts are online, in list order (what a watcher must learn quickly).
fn presence(hosts: &[proto::message::HostInfo]) -> Vec<(&HostId, bool)> {
    hosts.iter().map(|h| (&h.host, h.online)).collect()
}
