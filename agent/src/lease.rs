//! Launch leases (design §5, JIT binding): every OpenCode launch is bound to the credential
//! whose operation started it, with a lease that any operation on the workspace by an
//! operator-or-above credential renews. When the lease lapses, or the relay reports that the
//! bound credential was revoked (or the host itself was revoked, the kill switch), the
//! workspace's supervisor aborts the running turns and stops that OpenCode, and its state says
//! why (`last_error` of the stopped state, in `opencode` events and `opencode_status`).
//!
//! [`LaunchLease`] is the pure state machine (time passed in, on tokio's clock); [`Leases`]
//! keeps one per workspace, renewed by operations. The stop itself is the supervisor's: its
//! actor sleeps until [`Leases::next_check`] and feeds the lease's verdict to its machine as
//! `Input::LeaseEnded` (see `supervisor.rs`); revocation notices reach it as commands
//! (`Workspaces::on_revoked`, `Workspaces::on_host_killed` in `workspaces.rs`).

use crate::opencode::client::OpencodeClient;
use proto::ids::CredId;
use proto::ops::{OpencodeInfo, OpencodeState, SessionStatus};
use proto::rbac::Role;
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Why a launch is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Nobody with operator rights acted within the lease.
    Lapsed {
        /// The lease length.
        lease: Duration,
    },
    /// The credential that started it was revoked.
    Revoked {
        /// That credential.
        cred: CredId,
    },
    /// The relay revoked this host (kill switch).
    HostKilled,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lapsed { lease } => write!(
                f,
                "stopped: its launch lease lapsed (no operator acted on this workspace for {}); \
                 any operation starts it again",
                human(*lease)
            ),
            Self::Revoked { cred } => write!(
                f,
                "stopped: the credential that started it ({cred}) was revoked; running turns were aborted"
            ),
            Self::HostKilled => f.write_str(
                "stopped: the relay revoked this host (kill switch); running turns were aborted",
            ),
        }
    }
}

/// `30 min`, `90 s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else if s > 0 {
        format!("{s} s")
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Who a launch is bound to, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Binding {
    /// `None` for a launch this agent did not see started (adopted after a restart).
    cred: Option<CredId>,
    expires: Instant,
    /// The credential was revoked while the launch was not running (its own operation may
    /// still be on its way to start OpenCode): a launch seen running is stopped.
    revoked: bool,
}

/// One workspace's lease: the pure state machine. A stop decided here clears the binding at
/// once, so an operation admitted while OpenCode stops binds the next launch afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchLease {
    lease: Duration,
    binding: Option<Binding>,
}

impl LaunchLease {
    /// An unbound lease of `lease` length.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            binding: None,
        }
    }

    fn bind(&mut self, cred: Option<CredId>, expires: Instant) {
        self.binding = Some(Binding {
            cred,
            expires,
            revoked: false,
        });
    }

    /// An operation by `cred` with `role` was admitted. `running`: whether OpenCode runs now
    /// (when it does not, this operation may start it, so the launch is bound to `cred`).
    pub fn on_op(&mut self, cred: &CredId, role: Role, running: bool, now: Instant) {
        let expires = now + self.lease;
        match &mut self.binding {
            // The launch of a revoked credential: nobody renews it, the next check stops it.
            Some(b) if running && b.revoked => {}
            Some(b) if running => {
                if role >= Role::Operator {
                    b.expires = b.expires.max(expires);
                }
            }
            _ => self.bind(Some(cred.clone()), expires),
        }
    }

    /// An operator-or-above is attached (watching the workspace's events): a bound launch's
    /// lease is extended; nothing is bound by this.
    pub fn renew(&mut self, role: Role, now: Instant) {
        if role >= Role::Operator
            && let Some(b) = &mut self.binding
            && !b.revoked
        {
            b.expires = b.expires.max(now + self.lease);
        }
    }

    /// The credential the launch is bound to, if any.
    pub fn holder(&self) -> Option<&CredId> {
        self.binding.as_ref().and_then(|b| b.cred.as_ref())
    }

    /// When a running launch must be checked next ([`LaunchLease::tick`]): when its lease
    /// ends, or at once when it is unbound (adopted) or its credential was revoked.
    pub fn next_check(&self, now: Instant) -> Instant {
        match &self.binding {
            Some(b) if !b.revoked => b.expires,
            _ => now,
        }
    }

    /// The check of a running (`running`) launch. Returns the reason to stop when its lease
    /// lapsed or its credential was revoked before it ran.
    pub fn tick(&mut self, running: bool, now: Instant) -> Option<StopReason> {
        if !running {
            return None;
        }
        if self.binding.is_none() {
            self.bind(None, now + self.lease);
        }
        let b = self.binding.as_ref()?;
        if b.revoked {
            let cred = b.cred.clone()?;
            self.binding = None;
            return Some(StopReason::Revoked { cred });
        }
        (now >= b.expires).then(|| {
            self.binding = None;
            StopReason::Lapsed { lease: self.lease }
        })
    }

    /// Credentials were revoked. Returns the reason to stop when the launch's holder is one.
    /// When it is not running (yet), the binding is kept, marked: an operation of that
    /// credential already admitted may still start OpenCode, and the next check stops it.
    pub fn revoked(&mut self, creds: &HashSet<CredId>, running: bool) -> Option<StopReason> {
        let cred = self.holder().filter(|c| creds.contains(*c))?.clone();
        if running {
            self.binding = None;
            return Some(StopReason::Revoked { cred });
        }
        if let Some(b) = &mut self.binding {
            b.revoked = true;
        }
        None
    }

    /// The launch is stopped for a reason outside the lease (the host was revoked): no
    /// binding survives it.
    pub fn clear(&mut self) {
        self.binding = None;
    }
}

/// Every workspace's lease.
#[derive(Debug)]
pub struct Leases {
    lease: Duration,
    by_workspace: Mutex<BTreeMap<String, LaunchLease>>,
}

impl Leases {
    /// No bindings yet; each launch gets `lease`.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            by_workspace: Mutex::new(BTreeMap::new()),
        }
    }

    fn with<T>(&self, workspace: &str, f: impl FnOnce(&mut LaunchLease) -> T) -> T {
        let mut map = self
            .by_workspace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lease = self.lease;
        f(map
            .entry(workspace.to_owned())
            .or_insert_with(|| LaunchLease::new(lease)))
    }

    /// See [`LaunchLease::on_op`] (now on tokio's clock).
    pub fn on_op(&self, workspace: &str, cred: &CredId, role: Role, running: bool) {
        let now = Instant::now();
        self.with(workspace, |l| l.on_op(cred, role, running, now));
    }

    /// See [`LaunchLease::renew`] (now on tokio's clock).
    pub fn renew(&self, workspace: &str, role: Role) {
        let now = Instant::now();
        self.with(workspace, |l| l.renew(role, now));
    }

    /// How often an attached watcher renews: a third of the lease, between 100 ms and 60 s.
    pub fn renew_every(&self) -> Duration {
        (self.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// The credential a workspace's launch is bound to.
    pub fn holder(&self, workspace: &str) -> Option<CredId> {
        self.with(workspace, |l| l.holder().cloned())
    }

    /// Renewal by an attached watcher whose operation `op` the host's policy must still
    /// allow: a locked host (`cm-agent lock`) renews nothing, so its OpenCode lapses.
    /// Returns whether the lease was renewed.
    pub fn renew_watching(
        &self,
        policy: &crate::policy::Policy,
        workspace: &str,
        op: proto::header::Op,
        role: Role,
    ) -> bool {
        if let Err(e) = policy.check(op, role) {
            tracing::debug!(workspace, error = %e, "watcher does not renew the lease");
            return false;
        }
        self.renew(workspace, role);
        true
    }

    /// See [`LaunchLease::next_check`].
    pub fn next_check(&self, workspace: &str, now: Instant) -> Instant {
        self.with(workspace, |l| l.next_check(now))
    }

    /// See [`LaunchLease::tick`].
    pub fn tick(&self, workspace: &str, running: bool, now: Instant) -> Option<StopReason> {
        self.with(workspace, |l| l.tick(running, now))
    }

    /// See [`LaunchLease::revoked`].
    pub fn revoked(
        &self,
        workspace: &str,
        creds: &HashSet<CredId>,
        running: bool,
    ) -> Option<StopReason> {
        self.with(workspace, |l| l.revoked(creds, running))
    }

    /// See [`LaunchLease::clear`].
    pub fn clear(&self, workspace: &str) {
        self.with(workspace, LaunchLease::clear);
    }
}

/// Whether a workspace's OpenCode (its supervisor's `info`) counts as running for the lease.
pub fn is_running(info: &OpencodeInfo) -> bool {
    !matches!(info.state, OpencodeState::Stopped | OpencodeState::Failed)
}

/// Aborts the running turns of a workspace before a lease stop (bounded by the client's call
/// timeout; a failure only means the stop ends them).
pub async fn abort_running_turns(client: &OpencodeClient, workspace: &str) {
    let Ok(statuses) = client.session_status().await else {
        return;
    };
    for (session, status) in statuses {
        if status != SessionStatus::Idle
            && let Err(e) = client.abort(&session).await
        {
            tracing::debug!(workspace, %session, error = %e, "abort before the lease stop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    /// `ms` after a fixed start.
    fn t(ms: u64) -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    fn cred(s: &str) -> CredId {
        CredId::from(s)
    }

    #[test]
    fn a_launch_is_bound_to_its_starter_and_lapses_without_renewal() {
        let mut l = LaunchLease::new(Duration::from_secs(30 * 60));
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        assert_eq!(l.holder(), Some(&cred("a")));
        assert_eq!(l.tick(true, t(29 * MIN)), None);
        assert_eq!(
            l.tick(true, t(30 * MIN)),
            Some(StopReason::Lapsed {
                lease: Duration::from_secs(1800)
            })
        );
        assert_eq!(l.holder(), None);
        // Not running: nothing to stop.
        assert_eq!(l.tick(false, t(90 * MIN)), None);
    }

    #[test]
    fn operators_renew_viewers_do_not_and_the_holder_stays() {
        let mut l = LaunchLease::new(Duration::from_secs(30 * 60));
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        l.on_op(&cred("v"), Role::Viewer, true, t(20 * MIN));
        assert!(
            l.tick(true, t(30 * MIN)).is_some(),
            "a viewer does not renew"
        );
        l.on_op(&cred("a"), Role::Operator, false, t(40 * MIN));
        l.on_op(&cred("b"), Role::Admin, true, t(60 * MIN));
        assert_eq!(l.holder(), Some(&cred("a")), "renewal keeps the binding");
        assert_eq!(l.tick(true, t(89 * MIN)), None);
        assert!(l.tick(true, t(90 * MIN)).is_some());
    }

    #[test]
    fn attached_operators_renew_without_binding() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.renew(Role::Owner, t(0));
        assert_eq!(l.holder(), None, "renewal binds nothing");
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        l.renew(Role::Viewer, t(50_000));
        assert!(
            l.tick(true, t(60_000)).is_some(),
            "a viewer watching does not renew"
        );
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        l.renew(Role::Operator, t(50_000));
        assert_eq!(l.tick(true, t(60_000)), None);
        assert_eq!(l.holder(), Some(&cred("a")));
        assert!(l.tick(true, t(110_000)).is_some());
    }

    #[test]
    fn revoking_the_holder_stops_a_running_launch_only() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        let other: HashSet<CredId> = [cred("x")].into();
        assert_eq!(l.revoked(&other, true), None);
        let hit: HashSet<CredId> = [cred("a")].into();
        assert_eq!(
            l.revoked(&hit, true),
            Some(StopReason::Revoked { cred: cred("a") })
        );
        assert_eq!(l.holder(), None);
        // Bound but not running (yet): the binding is dropped, nothing to stop; the next
        // operation binds anew.
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        assert_eq!(l.revoked(&hit, false), None);
        l.on_op(&cred("b"), Role::Operator, false, t(0));
        assert_eq!(l.holder(), Some(&cred("b")));
    }

    #[test]
    fn a_binding_made_while_stopping_stays() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        assert!(l.tick(true, t(60_000)).is_some());
        // While OpenCode stops, an operation by b is admitted and binds the next launch.
        l.on_op(&cred("b"), Role::Operator, true, t(61_000));
        assert_eq!(l.holder(), Some(&cred("b")), "b's launch stays bound");
        let b_revoked: HashSet<CredId> = [cred("b")].into();
        assert_eq!(
            l.revoked(&b_revoked, true),
            Some(StopReason::Revoked { cred: cred("b") })
        );
        // The host kill switch clears the binding when it decides to stop.
        l.on_op(&cred("c"), Role::Operator, false, t(70_000));
        l.clear();
        assert_eq!(l.holder(), None);
        l.on_op(&cred("d"), Role::Operator, true, t(71_000));
        assert_eq!(
            l.holder(),
            Some(&cred("d")),
            "an operation during the stop binds anew"
        );
    }

    #[test]
    fn the_next_check_is_the_lease_end_or_at_once() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        assert_eq!(l.next_check(t(5)), t(5), "unbound (adopted): at once");
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        assert_eq!(l.next_check(t(5)), t(60_000));
        l.renew(Role::Operator, t(30_000));
        assert_eq!(l.next_check(t(31_000)), t(90_000));
        let hit: HashSet<CredId> = [cred("a")].into();
        assert_eq!(l.revoked(&hit, false), None);
        assert_eq!(l.next_check(t(32_000)), t(32_000), "revoked: at once");
    }

    #[test]
    fn revoked_before_its_launch_runs_is_stopped_once_running() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, t(0));
        let hit: HashSet<CredId> = [cred("a")].into();
        assert_eq!(l.revoked(&hit, false), None, "nothing runs yet");
        // a's operation, admitted before the notice, starts OpenCode; nobody renews it.
        l.on_op(&cred("b"), Role::Owner, true, t(1_000));
        l.renew(Role::Owner, t(1_000));
        assert_eq!(
            l.tick(true, t(2_000)),
            Some(StopReason::Revoked { cred: cred("a") })
        );
        assert_eq!(l.holder(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_locked_host_does_not_renew_for_watchers() {
        let state = tempfile::tempdir().unwrap();
        let policy =
            crate::policy::Policy::new(crate::policy::PolicyConfig::default(), state.path());
        let leases = Leases::new(Duration::from_secs(60));
        let start = Instant::now();
        leases.on_op("w", &cred("a"), Role::Operator, false);
        let watch = proto::header::Op::WatchEvents;
        tokio::time::advance(Duration::from_secs(50)).await;
        assert!(leases.renew_watching(&policy, "w", watch, Role::Operator));
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(leases.tick("w", true, at(100)).is_none(), "renewed");
        assert!(!crate::policy::lock(state.path(), Some("incident")).unwrap());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!leases.renew_watching(&policy, "w", watch, Role::Owner));
        assert!(
            leases.tick("w", true, at(110)).is_some(),
            "locked: the lease lapses though an owner watches"
        );
    }

    #[test]
    fn an_adopted_launch_gets_a_lease_from_when_it_is_first_seen() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        assert_eq!(l.tick(true, t(1_000)), None);
        assert_eq!(l.holder(), None);
        assert!(l.tick(true, t(61_000)).is_some());
    }

    #[test]
    fn reasons_say_what_happened_and_what_to_do() {
        let r = StopReason::Lapsed {
            lease: Duration::from_secs(1800),
        }
        .to_string();
        assert!(
            r.contains("lease lapsed") && r.contains("starts it again"),
            "{r}"
        );
        let r = StopReason::Revoked { cred: cred("c1") }.to_string();
        assert!(r.contains("c1") && r.contains("revoked"), "{r}");
    }
}
