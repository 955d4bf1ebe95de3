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
use crate::notify::{self, admission, deliver, offline, text};
use crate::store::NotifyRow;
use crate::time::now_ms;
use proto::ids::{HostId, UserId};
use proto::notify::{
    Attention, ChannelInfo, ChannelName, ChannelSpec, Focus, MAX_CHANNELS, NotifyTested,
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

/// `notify_add`: checks and stores the caller's channel (its secret sealed, never shown nor
/// audited).
impl LocalHandler for op::NotifyAdd {
    async fn handle(cx: &mut Cx<'_>, spec: ChannelSpec) -> Result<ChannelInfo, RequestError> {
        admission::check_channel(&spec, &cx.shared.notifier.targets)
            .await
            .map_err(|e| RequestError::Admin(AdminError::Input(e)))?;
        let user = cx.principal.user.0.clone();
        let (u, s) = (user.clone(), spec.clone());
        let sealer = Arc::clone(&cx.shared.notifier.sealer);
        let new = cx
            .shared
            .store
            .call(move |st| st.notify_put(&u, &s, &sealer, MAX_CHANNELS, now_ms()))
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
        let rows = channels(cx.shared, &user).await?;
        rows.iter()
            .find(|r| r.name == name)
            .map(NotifyRow::info)
            .ok_or_else(|| not_found(&name))
    }
}

/// `user`'s channels, secrets opened (broken ones included).
async fn channels(shared: &Arc<Shared>, user: &str) -> Result<Vec<NotifyRow>, RequestError> {
    let (user, sealer) = (user.to_owned(), Arc::clone(&shared.notifier.sealer));
    Ok(shared
        .store
        .read(move |st| st.notify_channels(Some(&user), &sealer))
        .await?)
}

/// `notify_list`: the caller's channels.
impl LocalHandler for op::NotifyList {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<Vec<ChannelInfo>, RequestError> {
        let rows = channels(cx.shared, cx.principal.user.as_str()).await?;
        Ok(rows.iter().map(NotifyRow::info).collect())
    }
}

/// `notify_test`: one test notification to a channel of the caller, now (no policy).
impl LocalHandler for op::NotifyTest {
    async fn handle(cx: &mut Cx<'_>, body: ChannelName) -> Result<NotifyTested, RequestError> {
        let user = cx.principal.user.0.clone();
        let row = channels(cx.shared, &user)
            .await?
            .into_iter()
            .find(|r| r.name == body.name)
            .ok_or_else(|| not_found(&body.name))?;
        let spec = match row.spec {
            Ok(spec) => spec,
            Err(why) => {
                return Ok(NotifyTested {
                    delivered: false,
                    error: Some(why),
                });
            }
        };
        let rendered = text::Rendered {
            title: "CodeMantle: test notification".into(),
            message: format!(
                "A test from the relay for {user}: this channel ({}) works.",
                row.name
            ),
            command: None,
            event: "test",
        };
        let result = send(cx.shared, &spec, &rendered, None, 1).await;
        record(cx.shared, &user, &row.name, result.as_ref().err()).await;
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

/// Renders and POSTs one notification to `spec` (to an address the relay may reach).
async fn send(
    shared: &Arc<Shared>,
    spec: &ChannelSpec,
    rendered: &text::Rendered,
    notice: Option<&Notice>,
    count: u32,
) -> Result<(), String> {
    let req = deliver::request(spec, rendered, notice, count, now_ms())
        .ok_or("this relay cannot deliver to this kind of channel")?;
    deliver::send(&req, &shared.notifier.targets).await
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
    let sealer = Arc::clone(&shared.notifier.sealer);
    let rows = match shared
        .store
        .read(move |st| st.notify_channels(None, &sealer))
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read notification channels");
            return;
        }
    };
    let now = now_ms();
    for row in rows {
        // One unusable row (a newer relay's, a secret under another key) skips only itself.
        let Ok(spec) = &row.spec else {
            tracing::warn!(user = %row.user, channel = %row.name, "skipping a notification channel this relay cannot use; see `cm-tui notify list`");
            continue;
        };
        let user = UserId::from(row.user.as_str());
        let Ok(grants) = shared.store.grants(&user).await else {
            continue;
        };
        if !authz::may_be_notified(&user, &grants, host, owner.as_ref()) {
            continue;
        }
        let to = Recipient {
            user: row.user.clone(),
            channel: row.name.clone(),
        };
        if let Err(why) = shared.notifier.offer(to, spec, notice.clone(), now) {
            tracing::debug!(user = %row.user, channel = %row.name, ?why, "notification suppressed");
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
    let row = match channels(&shared, &out.to.user).await {
        Ok(rows) => rows.into_iter().find(|r| r.name == out.to.channel),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a notification channel");
            None
        }
    };
    // Removed meanwhile: nothing to send.
    let Some(row) = row else { return };
    let spec = match row.spec {
        Ok(spec) => spec,
        Err(why) => {
            tracing::warn!(user = %out.to.user, channel = %out.to.channel, %why, "notification channel unusable; notification dropped");
            return;
        }
    };
    let rendered = text::render(&out.notice, out.count);
    let result = send(&shared, &spec, &rendered, Some(&out.notice), out.count).await;
    record(
        &shared,
        &out.to.user,
        &out.to.channel,
        result.as_ref().err(),
    )
    .await;
    let (user, channel) = (out.to.user.clone(), out.to.channel.clone());
    let random = crate::time::random_u64();
    match shared
        .notifier
        .finished(out, result.is_ok(), now_ms(), random)
    {
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

/// The notification task: watches presence (when it changed, or every [`TICK`]), sends what
/// is due, retries failures.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut changes = shared.presence.changes();
    let mut presence_open = true;
    let mut presence_changed = false;
    let mut cadence = offline::Cadence::new(u64::try_from(TICK.as_millis()).unwrap_or(1_000));
    loop {
        if cadence.look_now(now_ms(), presence_changed) {
            watch_presence(&shared).await;
        }
        presence_changed = false;
        let now = now_ms();
        for out in shared.notifier.due(now) {
            shared.tracker.spawn(deliver_one(Arc::clone(&shared), out));
        }
        let next = shared
            .notifier
            .next_due()
            .map_or(cadence.next_ms(), |at| at.min(cadence.next_ms()));
        let wait = Duration::from_millis(next.saturating_sub(now));
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = shared.notifier.wake.notified() => {}
            changed = changes.changed(), if presence_open => {
                presence_changed = changed.is_ok();
                presence_open = changed.is_ok();
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}
