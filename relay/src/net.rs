//! The QUIC shell of the relay: accept loop, per-connection handling, login, requests.

pub(crate) mod admin;
pub(crate) mod agent_notices;
pub(crate) mod body;
pub(crate) mod conn;
pub(crate) mod endpoint;
pub(crate) mod error;
pub(crate) mod forward_audit;
pub(crate) mod hosts;
pub(crate) mod limiter;
pub(crate) mod local;
pub(crate) mod local_action;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod notify_ops;
pub(crate) mod password_slots;
pub(crate) mod password_workers;
pub(crate) mod peer_streams;
pub(crate) mod principal;
pub(crate) mod prompt_audit;
pub(crate) mod queue;
pub(crate) mod refusal_log;
pub(crate) mod remote_route;
pub(crate) mod requests;
pub(crate) mod splice;
pub(crate) mod stream_quota;
pub(crate) mod sweeper;
pub(crate) mod template_apply;
pub(crate) mod templates;
pub(crate) mod trust;

use crate::audit_event::Audit;
use crate::config::RelayConfig;
use crate::presence::Presence;
use crate::store::StoreHandle;
use error::RequestError;
use parking_lot::Mutex;
use proto::replay::ReplayWindow;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// State shared by all connection tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    pub(crate) store: StoreHandle,
    pub(crate) presence: Arc<dyn Presence<quinn::Connection>>,
    /// The other relays of the fleet (`None`: the single relay, `[fleet]` absent).
    pub(crate) peers: Option<Arc<dyn crate::fleet::PeerDirectory>>,
    /// Connections to those relays (set once the peer endpoint started).
    pub(crate) peer_pool: std::sync::OnceLock<Arc<crate::fleet::peer_pool::PeerPool>>,
    /// Wakes the sweeper at once (a revocation notice from another relay of the fleet).
    pub(crate) sweep_now: Arc<tokio::sync::Notify>,
    pub(crate) replay: Mutex<ReplayWindow>,
    pub(crate) limiter: Mutex<limiter::FailureLimiter<std::net::IpAddr>>,
    pub(crate) user_lockout: Mutex<limiter::FailureLimiter<String>>,
    /// The threads that run argon2 password checks, as many as may run at once
    /// (see `password_slots`).
    pub(crate) password_checks: password_workers::PasswordWorkers,
    /// Unauthenticated refusals, aggregated per address for the audit trail.
    pub(crate) refusals: Mutex<refusal_log::RefusalLog>,
    pub(crate) live: sweeper::LiveConns,
    pub(crate) stream_quota: Arc<stream_quota::StreamQuota>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// What a compromised relay would do (tests only, see `Relay::spawn_with_tamper`);
    /// [`NoTamper`](crate::tamper::NoTamper) otherwise.
    pub(crate) tamper: Arc<dyn crate::tamper::Tamper>,
    /// The newest revocation lists as last read, for the periodic pushes of many agents.
    pub(crate) revocation_cache: trust::RevocationCache,
    /// Notifications: the policy and the offline watch (see `crate::notify`).
    pub(crate) notifier: Arc<crate::notify::Notifier>,
}

impl std::fmt::Debug for dyn Presence<quinn::Connection> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presence")
    }
}

impl Shared {
    /// Writes an audit row and waits until it is durable; a failure is logged loudly (the
    /// caller decides whether to refuse).
    pub(crate) async fn audit(&self, event: Audit) -> bool {
        self.audit_or_refusal(event).await.is_ok()
    }

    /// [`Self::audit`], with the refusal the operator gets when the row could not be written:
    /// [`RequestError::StoreUnavailable`] while the database is away.
    pub(crate) async fn audit_or_refusal(&self, event: Audit) -> Result<(), RequestError> {
        let now = crate::time::now_ms();
        self.store
            .audit()
            .durable(now, event.row())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "audit write failed");
                if e.is_unavailable() {
                    RequestError::StoreUnavailable
                } else {
                    RequestError::AuditUnavailable
                }
            })
    }

    /// Writes the audit row of something already decided (a refusal, a failed login, an
    /// expiry) and waits until it is durable: in the chain, or in the spool while the database
    /// is away (it joins the chain when it is back). A failure is logged loudly.
    pub(crate) async fn audit_kept(&self, event: Audit) {
        let now = crate::time::now_ms();
        if let Err(e) = self.store.audit().kept(now, event.row()).await {
            tracing::error!(error = %e, "audit write failed");
        }
    }

    /// Records an audit row without waiting for it to be durable (read-only operations; see
    /// docs/security-model.md, "Audit trail"). While the database is away the row is spooled
    /// in the state directory and joins the chain when it is back (`store/audit_spool.rs`).
    pub(crate) fn audit_unwaited(&self, event: Audit) {
        self.store
            .audit()
            .record(crate::time::now_ms(), event.row());
    }
}
