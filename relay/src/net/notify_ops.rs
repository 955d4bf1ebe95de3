//! Notifications at the relay: the `notify_*` operations (a user's own channels, the TUI's
//! focus signal), an agent's attention notice turned into offers to the users it concerns,
//! and the background task that sends what the policy says is due (see `crate::notify`).

use super::Shared;
use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use crate::admin::AdminError;
use crate::audit_event::Audit;
use crate::authz;
use crate::notify::policy::{Finished, Notice, Outgoing, Recipient};
use crate::notify::{self, deliver, text};
use crate::store::NotifyRow;
use crate::time::now_ms;
use proto::ids::{HostId, UserId};
use proto::notify::{
    Attention, ChannelInfo, ChannelName, ChannelSpec, Focus, MAX_CHANNELS, NotifyTested, check_spec,
};
use proto::op;
use std::sync::Arc;
use std::time::Duration;

/// How often the task looks at presence and what is due, at the latest.
const TICK: Duration = Duration::from_secs(1);

fn not_found(name: &str) -> RequestError {
    RequestError::Admin(AdminError::NotFound(format!(
        "you have no notification channel {name:?}; see `cm-tui notify list`"
    )))
}

/// `notify_add`: stores the caller's channel (its secret is never shown nor audited).
impl LocalHandler for op::NotifyAdd {
    async fn handle(cx: &mut Cx<'_>, spec: ChannelSpec) -> Result<ChannelInfo, RequestError> {
        check_spec(&spec).map_err(|e| RequestError::Admin(AdminError::Input(e)))?;
        let user = cx.principal.user.0.clone();
        let (u, s) = (user.clone(), spec.clone());
        let new = cx
            .shared
            .store
            .call(move |st| st.notify_put(&u, &s, MAX_CHANNELS, now_ms()))
            .await?;
        let kind = spec.target.kind();
        cx.shared
            .audit(Audit::Change {
                actor: user.clone(),
                op: "notify_add",
                summary: format!(
                    "notify channel {}: {kind}",
                    if new { "added" } else { "replaced" }
                ),
                host: None,
            })
            .await;
        let name = spec.name.clone();
        let rows = cx
            .shared
            .store
            .read(move |st| st.notify_channels(Some(&user)))
            .await?;
        rows.iter()
            .find(|r| r.spec.name == name)
            .map(NotifyRow::info)
            .ok_or_else(|| not_found(&name))
    }
}

/// `notify_list`: the caller's channels.
impl LocalHandler for op::NotifyList {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<Vec<ChannelInfo>, RequestError> {
        let user = cx.principal.user.0.clone();
        let rows = cx
            .shared
            .store
            .read(move |st| st.notify_channels(Some(&user)))
            .await?;
        Ok(rows.iter().map(NotifyRow::info).collect())
    }
}

/// `notify_test`: one test notification to a channel of the caller, now (no policy).
impl LocalHandler for op::NotifyTest {
    async fn handle(cx: &mut Cx<'_>, body: ChannelName) -> Result<NotifyTested, RequestError> {
        let user = cx.principal.user.0.clone();
        let u = user.clone();
        let rows = cx
            .shared
            .store
            .read(move |st| st.notify_channels(Some(&u)))
            .await?;
        let row = rows
            .into_iter()
            .find(|r| r.spec.name == body.name)
            .ok_or_else(|| not_found(&body.name))?;
        let rendered = text::Rendered {
            title: "CodeMantle: test notification".into(),
            message: format!(
                "A test from the relay for {user}: this channel ({}) works.",
                row.spec.name
            ),
            command: None,
            event: "test",
        };
        let req = deliver::request(&row.spec, &rendered, None, 1, now_ms());
        let result = deliver::send(&req).await;
        record(cx.shared, &user, &row.spec.name, result.as_ref().err()).await;
        Ok(NotifyTested {
            delivered: result.is_ok(),
            error: result.err(),
        })
    }
}

/// `notify_remove`: forgets a channel of the caller.
impl LocalHandler for op::NotifyRemove {
    async fn handle(cx: &mut Cx<'_>, body: ChannelName) -> Result<bool, RequestError> {
        let user = cx.principal.user.0.clone();
        let (u, name) = (user.clone(), body.name.clone());
        if !cx
            .shared
            .store
            .call(move |st| st.notify_remove(&u, &name))
            .await?
        {
            return Err(not_found(&body.name));
        }
        cx.shared
            .audit(Audit::Change {
                actor: user,
                op: "notify_remove",
                summary: "notify channel removed".into(),
                host: None,
            })
            .await;
        Ok(true)
    }
}

/// `notify_focus`: the caller's TUI shows this session (only ever quiets the caller's own
/// notifications).
impl LocalHandler for op::NotifyFocus {
    async fn handle(cx: &mut Cx<'_>, body: Focus) -> Result<(), RequestError> {
        cx.shared.notifier.focus(
            cx.principal.user.as_str(),
            &body.host,
            &body.workspace,
            &body.session,
            now_ms(),
        );
        // The host's agent may be on another relay of the fleet: it holds back too. Names
        // that are not ids match no notice (`accept_attention`) and are not sent around.
        let ids = [&body.host, &body.workspace, &body.session];
        if let Some(peers) = &cx.shared.peers
            && ids.into_iter().all(|s| proto::ids::is_valid_name(s))
        {
            peers.announce_focus(&crate::fleet::notify::FocusNotice {
                user: cx.principal.user.0.clone(),
                host: body.host,
                workspace: body.workspace,
                session: body.session,
            });
        }
        Ok(())
    }
}

async fn record(shared: &Arc<Shared>, user: &str, name: &str, error: Option<&String>) {
    let (u, n, e) = (user.to_owned(), name.to_owned(), error.cloned());
    if let Err(err) = shared
        .store
        .call(move |st| st.notify_record(&u, &n, e.as_deref(), now_ms()))
        .await
    {
        tracing::warn!(error = %err, "could not record a notification delivery");
    }
}

/// Offers `notice` (about `host`, in a session owned by `owner` if known) to every channel
/// whose user it concerns (`authz::may_be_notified`).
async fn fan_out(shared: &Arc<Shared>, host: &HostId, owner: Option<UserId>, notice: &Notice) {
    let rows = match shared.store.read(|st| st.notify_channels(None)).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read notification channels");
            return;
        }
    };
    let now = now_ms();
    for row in rows {
        let user = UserId::from(row.user.as_str());
        let Ok(grants) = shared.store.grants(&user).await else {
            continue;
        };
        if !authz::may_be_notified(&user, &grants, host, owner.as_ref()) {
            continue;
        }
        let to = Recipient {
            user: row.user.clone(),
            channel: row.spec.name.clone(),
        };
        if let Err(why) = shared.notifier.offer(to, &row.spec, notice.clone(), now) {
            tracing::debug!(user = %row.user, channel = %row.spec.name, ?why, "notification suppressed");
        }
    }
}

/// An agent's attention notice from `host`, handled beside its control loop (store reads must
/// not hold up heartbeats); with [`notify::ATTENTION_SLOTS`] already in hand it is dropped.
pub(crate) fn attention_soon(shared: &Arc<Shared>, host: &HostId, notice: Attention) {
    let Ok(slot) = Arc::clone(&shared.notifier.attention_slots).try_acquire_owned() else {
        tracing::warn!(%host, "too many attention notices at once; one dropped");
        return;
    };
    let (shared2, host) = (Arc::clone(shared), host.clone());
    shared.tracker.spawn(async move {
        attention(&shared2, &host, notice).await;
        drop(slot);
    });
}

/// An agent's attention notice from `host`.
async fn attention(shared: &Arc<Shared>, host: &HostId, attention: Attention) {
    let notice = match notify::accept_attention(host, attention) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%host, error = %e, "ignoring an attention notice");
            return;
        }
    };
    let owner = match &notice.session {
        // A store error is not "nobody owns it": that would tell every operator of the host.
        Some(session) => match shared.store.session_owner(host, session).await {
            Ok(owner) => owner,
            Err(e) => {
                tracing::warn!(%host, error = %e, "cannot read the session's owner; notice dropped");
                return;
            }
        },
        None => None,
    };
    fan_out(shared, host, owner, &notice).await;
}

async fn deliver_one(shared: Arc<Shared>, out: Outgoing) {
    let u = out.to.user.clone();
    let spec = match shared
        .store
        .read(move |st| st.notify_channels(Some(&u)))
        .await
    {
        Ok(rows) => rows
            .into_iter()
            .find(|r| r.spec.name == out.to.channel)
            .map(|r| r.spec),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a notification channel");
            None
        }
    };
    // Removed meanwhile: nothing to send.
    let Some(spec) = spec else { return };
    let rendered = text::render(&out.notice, out.count);
    let req = deliver::request(&spec, &rendered, Some(&out.notice), out.count, now_ms());
    let result = deliver::send(&req).await;
    record(
        &shared,
        &out.to.user,
        &out.to.channel,
        result.as_ref().err(),
    )
    .await;
    let (user, channel) = (out.to.user.clone(), out.to.channel.clone());
    match shared.notifier.finished(out, result.is_ok(), now_ms()) {
        Finished::Delivered => {}
        Finished::RetryAt(at) => {
            tracing::info!(%user, %channel, retry_at_ms = at, "notification failed; will retry");
            shared.notifier.wake.notify_one();
        }
        Finished::GaveUp => tracing::warn!(%user, %channel, "notification given up"),
    }
}

async fn watch_presence(shared: &Arc<Shared>) {
    let Ok(rows) = shared.store.read(|s| s.list_hosts()).await else {
        return;
    };
    let hosts: Vec<HostId> = rows
        .into_iter()
        .filter(|r| !r.revoked)
        .map(|r| r.id)
        .collect();
    let now = now_ms();
    let known: Vec<&str> = hosts.iter().map(HostId::as_str).collect();
    shared.notifier.forget_other_hosts(&known);
    for info in shared.presence.snapshot(&hosts, now) {
        shared
            .notifier
            .observe_host(info.host.as_str(), info.online, now);
    }
    let due = shared.notifier.offline_due(now);
    // In a fleet every relay sees every host; one of them reports.
    if shared
        .peers
        .as_ref()
        .is_some_and(|p| !p.reports_offline_hosts())
    {
        return;
    }
    for (host, minutes) in due {
        let id = HostId::from(host.as_str());
        fan_out(shared, &id, None, &notify::host_offline(&host, minutes)).await;
    }
}

/// The notification task: watches presence, sends what is due, retries failures.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.presence.changes();
    loop {
        watch_presence(&shared).await;
        let now = now_ms();
        for out in shared.notifier.due(now) {
            shared.tracker.spawn(deliver_one(Arc::clone(&shared), out));
        }
        let wait = shared.notifier.next_due().map_or(TICK, |at| {
            Duration::from_millis(at.saturating_sub(now)).min(TICK)
        });
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = shared.notifier.wake.notified() => {}
            _ = changes.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
