//! Per launch: probe health until OpenCode answers, attach to its event stream, report
//! readiness, then read events for as long as the launch lives, mapping them into the
//! workspace's [`EventHub`]. Ready therefore means "serving and observed": no event of the
//! first prompt is missed.

use super::Activity;
use super::process::{EventTx, ProcessEvent};
use crate::grants::Grants;
use crate::hub::EventHub;
use crate::opencode::PINNED_VERSION;
use crate::opencode::client::OpencodeClient;
use crate::opencode::events::{EventMapper, event_type};
use crate::opencode::sse::EventStream;
use proto::event::Event;
use proto::grant::StandingGrant;
use proto::ops::{PermissionAnswer, PermissionRequest};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Pause between health probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// Pause before reconnecting a dropped event stream.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// OpenCode sends a heartbeat every 10 s; three missed ones mean the stream is dead.
const STREAM_SILENCE: Duration = Duration::from_secs(35);

/// Runs until `token` is cancelled.
#[allow(
    clippy::too_many_arguments,
    reason = "one launch's reader: each input is a distinct shared handle of the supervisor"
)]
pub(crate) async fn run(
    client: OpencodeClient,
    hub: Arc<EventHub>,
    grants: Arc<Grants>,
    activity: Arc<Activity>,
    events: EventTx,
    launch: u64,
    token: CancellationToken,
    warn_plan: Option<Arc<crate::sandbox::SandboxPlan>>,
) {
    grants.launch_started(launch);
    let work = async {
        let version = probe(&client).await;
        if let Some(v) = version.as_deref()
            && v != PINNED_VERSION
        {
            tracing::warn!(
                version = v,
                pinned = PINNED_VERSION,
                "OpenCode version differs from the tested release"
            );
        }
        let mut stream = connect(&client).await;
        let _ = events.send((launch, ProcessEvent::Attached { version }));
        let mut mapper = EventMapper::new();
        loop {
            match tokio::time::timeout(STREAM_SILENCE, stream.next()).await {
                Ok(Ok(Some(v))) => {
                    if let Some(why) = warn_plan
                        .as_deref()
                        .and_then(|p| crate::sandbox::warn::would_refuse(p, &v))
                    {
                        tracing::warn!("sandbox (warn): would have refused {why}");
                    }
                    if let Some(e) = mapper.map(&v) {
                        activity.touch();
                        if let Event::PermissionAsked { request } = &e
                            && let Some(grant) = grants.allow(request)
                        {
                            tokio::spawn(answer_by_grant(
                                client.clone(),
                                Arc::clone(&hub),
                                grant,
                                request.clone(),
                            ));
                            continue;
                        }
                        hub.publish(e);
                    } else {
                        tracing::trace!(
                            kind = event_type(&v).unwrap_or("?"),
                            "OpenCode event dropped"
                        );
                    }
                    continue;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "OpenCode event stream failed"),
                Err(_) => {
                    tracing::debug!(silence = ?STREAM_SILENCE, "OpenCode event stream went silent")
                }
            }
            // When OpenCode itself is going away, the launch ends within this pause and
            // nothing is logged; otherwise the stream is re-attached.
            tokio::time::sleep(RECONNECT_DELAY).await;
            tracing::warn!("OpenCode's event stream was interrupted; reconnecting");
            stream = connect(&client).await;
            hub.publish(Event::Resync {
                reason: "the agent's event stream from OpenCode was interrupted; re-read the session history".into(),
            });
        }
    };
    tokio::select! {
        biased;
        () = token.cancelled() => {}
        () = work => {}
    }
}

/// Answers `request` "once" because a standing grant covers it (audited). If the answer does
/// not reach OpenCode, the request is published so a human sees it.
async fn answer_by_grant(
    client: OpencodeClient,
    hub: Arc<EventHub>,
    grant: StandingGrant,
    request: PermissionRequest,
) {
    match client
        .reply_permission(&request.id, PermissionAnswer::Once, None)
        .await
    {
        Ok(_) => tracing::info!(
            target: "cm_agent::audit",
            request = %request.id,
            session = %request.session,
            permission = %request.permission,
            patterns = ?request.patterns,
            grant = %grant.id,
            granted_by = %grant.granted_by,
            "permission allowed once by a standing grant"
        ),
        Err(e) => {
            tracing::warn!(request = %request.id, error = %e, "could not answer by standing grant; asking the operators");
            hub.publish(Event::PermissionAsked { request });
        }
    }
}

/// Probes `/global/health` until it answers healthy; returns the version.
async fn probe(client: &OpencodeClient) -> Option<String> {
    loop {
        match client.health().await {
            Ok(h) if h.healthy => return h.version,
            Ok(_) => tracing::debug!("OpenCode answered health but is not healthy yet"),
            Err(e) => tracing::debug!(error = %e, "OpenCode health probe"),
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Opens the event stream and waits for its first event (`server.connected`), retrying until
/// it works.
async fn connect(client: &OpencodeClient) -> EventStream {
    loop {
        match client.events().await {
            Ok(mut s) => match tokio::time::timeout(STREAM_SILENCE, s.next()).await {
                Ok(Ok(Some(first))) => {
                    tracing::debug!(
                        kind = event_type(&first).unwrap_or("?"),
                        "attached to OpenCode's event stream"
                    );
                    return s;
                }
                Ok(Ok(None)) => tracing::debug!("event stream ended at once"),
                Ok(Err(e)) => tracing::debug!(error = %e, "event stream failed at once"),
                Err(_) => tracing::debug!("no first event"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot open OpenCode's event stream"),
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
