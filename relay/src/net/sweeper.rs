//! Keeps live connections honest: closes a connection as soon as its credential is revoked (the
//! kill switch, logout, host revoke) or expires. The store's revocation epoch changes with every
//! revocation, including those made by the `cm-relay` CLI in another process; polling it every
//! [`SWEEP_INTERVAL`] bounds the time to act well under a second.

use super::{Shared, lock};
use crate::store::AuditEvent;
use crate::time::now_ms;
use proto::handshake::PeerKind;
use proto::ids::{ConnId, CredId};
use proto::message::CloseReason;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often revocations and expiries are checked (the kill switch acts within this, plus the
/// time to look the live credentials up).
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// One authenticated connection.
#[derive(Debug, Clone)]
pub(crate) struct LiveConn {
    pub(crate) kind: PeerKind,
    pub(crate) cred_id: CredId,
    pub(crate) owner: String,
    pub(crate) conn: quinn::Connection,
    pub(crate) expires_at_ms: Option<u64>,
}

/// Live connections by id.
pub(crate) type LiveConns = std::sync::Mutex<HashMap<ConnId, LiveConn>>;

/// Removes a connection from the live table when its task ends.
pub(crate) struct LiveGuard {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn_id: ConnId,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        lock(&self.shared.live).remove(&self.conn_id);
    }
}

async fn close_revoked(shared: &Arc<Shared>, conn_id: &ConnId, live: &LiveConn, why: &str) {
    tracing::warn!(conn = %conn_id, cred = %live.cred_id, owner = %live.owner, why, "closing connection");
    live.conn
        .close(CloseReason::Revoked.code().into(), why.as_bytes());
    lock(&shared.live).remove(conn_id);
    shared
        .audit(AuditEvent {
            actor: "relay".into(),
            host: (live.kind == PeerKind::Agent).then(|| live.owner.clone()),
            op: "disconnect".into(),
            target: Some(format!("{} {}", live.owner, live.cred_id)),
            decision: "deny".into(),
            reason: Some(why.into()),
            ..AuditEvent::default()
        })
        .await;
}

/// Runs until the relay is cancelled.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut last_epoch: Option<u64> = None;
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        let snapshot: Vec<(ConnId, LiveConn)> = lock(&shared.live)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, live) in &snapshot {
            if live.expires_at_ms.is_some_and(|exp| now >= exp) {
                close_revoked(&shared, id, live, "credential expired; log in again").await;
            }
        }
        let epoch = match shared.store.call(|s| s.revocation_epoch()).await {
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
        for (id, live) in snapshot {
            let (kind, cred) = (live.kind, live.cred_id.clone());
            match shared
                .store
                .call(move |s| s.find_credential(kind, &cred))
                .await
            {
                Ok(Some(found)) if !found.record.revoked => {}
                Ok(_) => close_revoked(&shared, &id, &live, "credential revoked").await,
                Err(e) => tracing::error!(error = %e, "credential re-check failed"),
            }
        }
    }
}
