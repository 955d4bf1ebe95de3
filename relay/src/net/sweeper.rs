//! Keeps live connections honest: closes a connection as soon as its credential is revoked (the
//! kill switch, logout, host revoke) or expires. The store's revocation epoch changes with every
//! revocation, including those made by the `cm-relay` CLI in another process; polling it every
//! [`SWEEP_INTERVAL`] bounds the time to act well under a second. In a fleet, a revocation
//! made on another relay also wakes it at once (`Shared::sweep_now`, from the `revoked`
//! notice).

use super::Shared;
use crate::audit_event::Audit;
use crate::authz::{self, CredentialProblem};
use crate::time::now_ms;
use proto::handshake::PeerKind;
use proto::ids::{ConnId, CredId};
use proto::message::{CloseReason, Control};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How often revocations and expiries are checked (the kill switch acts within this, plus the
/// time to look the live credentials up).
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// Credential ids per `creds_revoked` control message (keeps each frame small).
const NOTICE_BATCH: usize = 256;

/// One authenticated connection.
#[derive(Debug, Clone)]
pub(crate) struct LiveConn {
    pub(crate) kind: PeerKind,
    pub(crate) cred_id: CredId,
    pub(crate) owner: String,
    pub(crate) conn: quinn::Connection,
    pub(crate) expires_at_ms: Option<u64>,
    /// Agents: control messages for the agent's control stream (revocation notices).
    pub(crate) notify: Option<super::agent_notices::AgentNotices>,
}

/// Operator credentials that are revoked (or belonged to a removed user) but would otherwise
/// still be valid: the ones an agent may have OpenCode launches bound to. Each comes with a
/// host (or `*`) its user holds a grant on, once per grant.
pub(crate) async fn revoked_unexpired(shared: &Arc<Shared>) -> Vec<(CredId, String)> {
    let now = now_ms();
    match shared
        .store
        .read(move |s| s.revoked_unexpired_with_hosts(now))
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "cannot list revoked credentials");
            Vec::new()
        }
    }
}

/// The credentials among `revoked` that `host`'s agent is told about (see
/// [`authz::revocations_for_host`]).
pub(crate) fn for_host(revoked: &[(CredId, String)], host: &str) -> Vec<CredId> {
    authz::revocations_for_host(revoked, host)
}

/// The control messages that tell an agent about `creds` (in batches).
pub(crate) fn notices(creds: &[CredId]) -> Vec<Control> {
    creds
        .chunks(NOTICE_BATCH)
        .map(|c| Control::CredsRevoked {
            cred_ids: c.to_vec(),
        })
        .collect()
}

/// Tells every connected agent about newly revoked credentials that held a grant on its host,
/// so launches bound to them stop (launch leases).
fn notify_agents(shared: &Arc<Shared>, fresh: &[(CredId, String)]) {
    if fresh.is_empty() {
        return;
    }
    let agents: Vec<_> = shared
        .live
        .lock()
        .values()
        .filter_map(|l| Some((l.owner.clone(), l.notify.clone()?)))
        .collect();
    tracing::info!(
        credentials = fresh.len(),
        agents = agents.len(),
        "telling agents about revoked credentials"
    );
    for (host, tx) in agents {
        for n in notices(&for_host(fresh, &host)) {
            tx.send(n);
        }
    }
}

/// Live connections by id.
pub(crate) type LiveConns = parking_lot::Mutex<HashMap<ConnId, LiveConn>>;

/// Removes a connection from the live table when its task ends.
pub(crate) struct LiveGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn_id: ConnId,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.shared.live.lock().remove(&self.conn_id);
    }
}

async fn close_revoked(shared: &Arc<Shared>, conn_id: &ConnId, live: &LiveConn, why: &str) {
    tracing::warn!(conn = %conn_id, cred = %live.cred_id, owner = %live.owner, why, "closing connection");
    live.conn
        .close(CloseReason::Revoked.code().into(), why.as_bytes());
    shared.live.lock().remove(conn_id);
    shared
        .audit_kept(Audit::Disconnect {
            agent_host: (live.kind == PeerKind::Agent).then(|| live.owner.clone()),
            owner: live.owner.clone(),
            cred: live.cred_id.clone(),
            why: why.into(),
        })
        .await;
}

/// Runs until the relay is cancelled.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut last_epoch: Option<u64> = None;
    let mut notified: HashSet<CredId> = HashSet::new();
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            () = shared.sweep_now.notified() => {}
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let snapshot: Vec<(ConnId, LiveConn)> = shared
            .live
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, live) in &snapshot {
            if authz::live_credential(live.expires_at_ms, None, now).is_some() {
                close_revoked(&shared, id, live, "credential expired; log in again").await;
            }
        }
        let epoch = match shared.store.read(|s| s.revocation_epoch()).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the revocation epoch");
                continue;
            }
        };
        if last_epoch == Some(epoch) {
            continue;
        }
        last_epoch = Some(epoch);
        let revoked = revoked_unexpired(&shared).await;
        let fresh: Vec<(CredId, String)> = revoked
            .iter()
            .filter(|(c, _)| !notified.contains(c))
            .cloned()
            .collect();
        // Expired credentials drop out of the set: it stays as small as the live ones.
        notified = revoked.into_iter().map(|(c, _)| c).collect();
        notify_agents(&shared, &fresh);
        for (id, live) in snapshot {
            let (kind, cred) = (live.kind, live.cred_id.clone());
            let found = match shared
                .store
                .read(move |s| s.find_credential(kind, &cred))
                .await
            {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(error = %e, "credential re-check failed");
                    continue;
                }
            };
            let current = Some(found.as_ref().map(|f| &f.record));
            match authz::live_credential(live.expires_at_ms, current, now) {
                None => {}
                // Closed by the expiry pass above.
                Some(CredentialProblem::Expired) => {}
                Some(CredentialProblem::Unknown | CredentialProblem::Revoked) => {
                    close_revoked(&shared, &id, &live, "credential revoked").await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_told_only_about_credentials_with_a_grant_on_its_host() {
        let revoked = vec![
            (CredId::from("c-box"), "box".to_owned()),
            (CredId::from("c-all"), "*".to_owned()),
            (CredId::from("c-other"), "other".to_owned()),
            (CredId::from("c-all"), "box".to_owned()),
        ];
        assert_eq!(
            for_host(&revoked, "box"),
            vec![CredId::from("c-all"), CredId::from("c-box")]
        );
        assert_eq!(for_host(&revoked, "third"), vec![CredId::from("c-all")]);
    }

    #[test]
    fn revocation_notices_are_batched() {
        let ids: Vec<CredId> = (0..600).map(|i| CredId(format!("c{i}"))).collect();
        let n = notices(&ids);
        assert_eq!(n.len(), 3);
        let mut seen = Vec::new();
        for m in n {
            match m {
                Control::CredsRevoked { cred_ids } => {
                    assert!(cred_ids.len() <= NOTICE_BATCH);
                    seen.extend(cred_ids);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, ids);
        assert!(notices(&[]).is_empty());
    }
}
