//! Launch leases (design §5, JIT binding): every OpenCode launch is bound to the credential
//! whose operation started it, with a lease that any operation on the workspace by an
//! operator-or-above credential renews. When the lease lapses, or the relay reports that the
//! bound credential was revoked (or the host itself was revoked, the kill switch), the agent
//! aborts the running sessions and stops that OpenCode, and says why in an `opencode` event.
//!
//! [`LaunchLease`] is the pure state machine (`now_ms` passed in); [`Leases`] keeps one per
//! workspace; [`run`] is the thin async shell that ticks, and [`enforce`] carries a stop out.

use crate::workspaces::{WorkspaceRuntime, Workspaces};
use proto::event::Event;
use proto::ids::CredId;
use proto::ops::{OpencodeInfo, OpencodeState, SessionStatus};
use proto::rbac::Role;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often leases are checked (the kill switch's bound is the relay's notice plus this).
pub const TICK: Duration = Duration::from_millis(250);

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
    expires_ms: u64,
    /// The credential was revoked while the launch was not running (its own operation may
    /// still be on its way to start OpenCode): a launch seen running is stopped.
    revoked: bool,
}

/// One workspace's lease: the pure state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchLease {
    lease_ms: u64,
    binding: Option<Binding>,
    /// Bumped on every new binding, so a stop clears only the binding it decided on
    /// ([`LaunchLease::clear_if`]), never one made while the stop was under way.
    generation: u64,
}

impl LaunchLease {
    /// An unbound lease of `lease` length.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease_ms: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
            binding: None,
            generation: 0,
        }
    }

    fn bind(&mut self, cred: Option<CredId>, expires_ms: u64) {
        self.generation = self.generation.wrapping_add(1);
        self.binding = Some(Binding {
            cred,
            expires_ms,
            revoked: false,
        });
    }

    /// Identifies the current binding (see [`LaunchLease::clear_if`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// An operation by `cred` with `role` was admitted. `running`: whether OpenCode runs now
    /// (when it does not, this operation may start it, so the launch is bound to `cred`).
    pub fn on_op(&mut self, cred: &CredId, role: Role, running: bool, now_ms: u64) {
        let expires_ms = now_ms.saturating_add(self.lease_ms);
        match &mut self.binding {
            // The launch of a revoked credential: nobody renews it, the next tick stops it.
            Some(b) if running && b.revoked => {}
            Some(b) if running => {
                if role >= Role::Operator {
                    b.expires_ms = b.expires_ms.max(expires_ms);
                }
            }
            _ => self.bind(Some(cred.clone()), expires_ms),
        }
    }

    /// An operator-or-above is attached (watching the workspace's events): a bound launch's
    /// lease is extended; nothing is bound by this.
    pub fn renew(&mut self, role: Role, now_ms: u64) {
        if role >= Role::Operator
            && let Some(b) = &mut self.binding
            && !b.revoked
        {
            b.expires_ms = b.expires_ms.max(now_ms.saturating_add(self.lease_ms));
        }
    }

    /// The credential the launch is bound to, if any.
    pub fn holder(&self) -> Option<&CredId> {
        self.binding.as_ref().and_then(|b| b.cred.as_ref())
    }

    /// Periodic check. Returns the reason to stop when the lease of a running launch lapsed.
    pub fn tick(&mut self, running: bool, now_ms: u64) -> Option<StopReason> {
        if !running {
            return None;
        }
        let lease_ms = self.lease_ms;
        if self.binding.is_none() {
            self.bind(None, now_ms.saturating_add(lease_ms));
        }
        let b = self.binding.as_ref()?;
        if b.revoked {
            let cred = b.cred.clone()?;
            self.binding = None;
            return Some(StopReason::Revoked { cred });
        }
        (now_ms >= b.expires_ms).then(|| {
            self.binding = None;
            StopReason::Lapsed {
                lease: Duration::from_millis(lease_ms),
            }
        })
    }

    /// Credentials were revoked. Returns the reason to stop when the launch's holder is one.
    /// When it is not running (yet), the binding is kept, marked: an operation of that
    /// credential already admitted may still start OpenCode, and the next tick stops it.
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

    /// The launch bound at `generation` was stopped: that binding goes (a binding made
    /// since, by an operation admitted during the stop, stays).
    pub fn clear_if(&mut self, generation: u64) {
        if self.generation == generation {
            self.binding = None;
        }
    }
}

/// Every workspace's lease.
#[derive(Debug)]
pub struct Leases {
    lease: Duration,
    by_workspace: Mutex<BTreeMap<String, LaunchLease>>,
    /// Why each workspace's OpenCode was last stopped by a lease, until it runs again.
    stopped_because: Mutex<BTreeMap<String, String>>,
}

impl Leases {
    /// No bindings yet; each launch gets `lease`.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            by_workspace: Mutex::new(BTreeMap::new()),
            stopped_because: Mutex::new(BTreeMap::new()),
        }
    }

    fn reasons(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.stopped_because
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A workspace's OpenCode state as operators see it: a stopped launch says why a lease
    /// stopped it (until OpenCode runs again).
    pub fn info(&self, rt: &WorkspaceRuntime) -> OpencodeInfo {
        let mut info = rt.supervisor.info();
        let ws = &rt.workspace.name;
        if info.state == OpencodeState::Stopped {
            if info.last_error.is_none() {
                info.last_error = self.reasons().get(ws).cloned();
            }
        } else {
            self.reasons().remove(ws);
        }
        info
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

    /// See [`LaunchLease::on_op`].
    pub fn on_op(&self, workspace: &str, cred: &CredId, role: Role, running: bool, now_ms: u64) {
        if running {
            self.reasons().remove(workspace);
        }
        self.with(workspace, |l| l.on_op(cred, role, running, now_ms));
    }

    /// See [`LaunchLease::renew`].
    pub fn renew(&self, workspace: &str, role: Role, now_ms: u64) {
        self.with(workspace, |l| l.renew(role, now_ms));
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
        now_ms: u64,
    ) -> bool {
        if let Err(e) = policy.check(op, role) {
            tracing::debug!(workspace, error = %e, "watcher does not renew the lease");
            return false;
        }
        self.renew(workspace, role, now_ms);
        true
    }

    fn tick(&self, workspace: &str, running: bool, now_ms: u64) -> Option<(StopReason, u64)> {
        self.with(workspace, |l| {
            l.tick(running, now_ms).map(|r| (r, l.generation()))
        })
    }

    fn revoked(
        &self,
        workspace: &str,
        creds: &HashSet<CredId>,
        running: bool,
    ) -> Option<(StopReason, u64)> {
        self.with(workspace, |l| {
            l.revoked(creds, running).map(|r| (r, l.generation()))
        })
    }

    fn generation(&self, workspace: &str) -> u64 {
        self.with(workspace, |l| l.generation())
    }

    fn clear_if(&self, workspace: &str, generation: u64) {
        self.with(workspace, |l| l.clear_if(generation));
    }
}

/// Whether a workspace's OpenCode counts as running for the lease.
pub fn is_running(rt: &WorkspaceRuntime) -> bool {
    !matches!(
        rt.supervisor.info().state,
        OpencodeState::Stopped | OpencodeState::Failed
    )
}

fn now_ms() -> u64 {
    cm_client::time::now_ms()
}

/// Aborts the running turns of a workspace, stops its OpenCode, and tells operators why.
/// `generation` is the binding the stop was decided on: only that one is cleared afterwards
/// (an operation admitted while stopping keeps the binding it made). OpenCode calls here are
/// bounded by the client's call timeout.
pub async fn enforce(rt: &WorkspaceRuntime, leases: &Leases, reason: &StopReason, generation: u64) {
    let ws = &rt.workspace.name;
    tracing::warn!(workspace = %ws, %reason, "stopping leased OpenCode");
    if let Some(client) = rt.supervisor.client_if_ready()
        && let Ok(statuses) = client.session_status().await
    {
        for (session, status) in statuses {
            if status != SessionStatus::Idle
                && let Err(e) = client.abort(&session).await
            {
                tracing::debug!(workspace = %ws, %session, error = %e, "abort before the lease stop failed");
            }
        }
    }
    let mut info = rt.supervisor.stop().await;
    leases.clear_if(ws, generation);
    leases.reasons().insert(ws.clone(), reason.to_string());
    info.last_error = Some(reason.to_string());
    rt.hub.publish(Event::Opencode { info });
    tracing::warn!(workspace = %ws, %reason, "leased OpenCode stopped");
}

/// Stops every launch bound to one of `creds` (the relay reported them revoked).
pub async fn on_revoked(workspaces: &Workspaces, creds: &HashSet<CredId>) {
    for rt in workspaces.iter() {
        let running = is_running(rt);
        if let Some((reason, generation)) =
            workspaces
                .leases()
                .revoked(&rt.workspace.name, creds, running)
        {
            enforce(rt, workspaces.leases(), &reason, generation).await;
        }
    }
}

/// The relay revoked this host: stop every running OpenCode.
pub async fn on_host_killed(workspaces: &Workspaces) {
    for rt in workspaces.iter() {
        let generation = workspaces.leases().generation(&rt.workspace.name);
        if is_running(rt) {
            enforce(rt, workspaces.leases(), &StopReason::HostKilled, generation).await;
        } else {
            workspaces.leases().clear_if(&rt.workspace.name, generation);
        }
    }
}

/// Checks every lease each [`TICK`] until `cancel`.
pub async fn run(workspaces: Arc<Workspaces>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        for rt in workspaces.iter() {
            // A launch still starting is left to finish: it lapses once ready if nobody
            // renewed it by then.
            let ready = rt.supervisor.info().state == OpencodeState::Ready;
            if let Some((reason, generation)) =
                workspaces
                    .leases()
                    .tick(&rt.workspace.name, ready, now_ms())
            {
                enforce(rt, workspaces.leases(), &reason, generation).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn cred(s: &str) -> CredId {
        CredId::from(s)
    }

    #[test]
    fn a_launch_is_bound_to_its_starter_and_lapses_without_renewal() {
        let mut l = LaunchLease::new(Duration::from_secs(30 * 60));
        l.on_op(&cred("a"), Role::Operator, false, 0);
        assert_eq!(l.holder(), Some(&cred("a")));
        assert_eq!(l.tick(true, 29 * MIN), None);
        assert_eq!(
            l.tick(true, 30 * MIN),
            Some(StopReason::Lapsed {
                lease: Duration::from_secs(1800)
            })
        );
        assert_eq!(l.holder(), None);
        // Not running: nothing to stop.
        assert_eq!(l.tick(false, 90 * MIN), None);
    }

    #[test]
    fn operators_renew_viewers_do_not_and_the_holder_stays() {
        let mut l = LaunchLease::new(Duration::from_secs(30 * 60));
        l.on_op(&cred("a"), Role::Operator, false, 0);
        l.on_op(&cred("v"), Role::Viewer, true, 20 * MIN);
        assert!(l.tick(true, 30 * MIN).is_some(), "a viewer does not renew");
        l.on_op(&cred("a"), Role::Operator, false, 40 * MIN);
        l.on_op(&cred("b"), Role::Admin, true, 60 * MIN);
        assert_eq!(l.holder(), Some(&cred("a")), "renewal keeps the binding");
        assert_eq!(l.tick(true, 89 * MIN), None);
        assert!(l.tick(true, 90 * MIN).is_some());
    }

    #[test]
    fn attached_operators_renew_without_binding() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.renew(Role::Owner, 0);
        assert_eq!(l.holder(), None, "renewal binds nothing");
        l.on_op(&cred("a"), Role::Operator, false, 0);
        l.renew(Role::Viewer, 50_000);
        assert!(
            l.tick(true, 60_000).is_some(),
            "a viewer watching does not renew"
        );
        l.on_op(&cred("a"), Role::Operator, false, 0);
        l.renew(Role::Operator, 50_000);
        assert_eq!(l.tick(true, 60_000), None);
        assert_eq!(l.holder(), Some(&cred("a")));
        assert!(l.tick(true, 110_000).is_some());
    }

    #[test]
    fn revoking_the_holder_stops_a_running_launch_only() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, 0);
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
        l.on_op(&cred("a"), Role::Operator, false, 0);
        assert_eq!(l.revoked(&hit, false), None);
        l.on_op(&cred("b"), Role::Operator, false, 0);
        assert_eq!(l.holder(), Some(&cred("b")));
    }

    #[test]
    fn a_stop_clears_only_the_binding_it_decided_on() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, 0);
        assert!(l.tick(true, 60_000).is_some());
        let stopping = l.generation();
        // While OpenCode stops, an operation by b is admitted and binds the next launch.
        l.on_op(&cred("b"), Role::Operator, true, 61_000);
        l.clear_if(stopping);
        assert_eq!(l.holder(), Some(&cred("b")), "b's launch stays bound");
        let b_revoked: HashSet<CredId> = [cred("b")].into();
        assert_eq!(
            l.revoked(&b_revoked, true),
            Some(StopReason::Revoked { cred: cred("b") })
        );
        // Nothing bound since: the stop clears its own binding (host kill switch path).
        l.on_op(&cred("c"), Role::Operator, false, 70_000);
        let killing = l.generation();
        l.on_op(&cred("c"), Role::Operator, true, 71_000);
        l.clear_if(killing);
        assert_eq!(l.holder(), None);
    }

    #[test]
    fn revoked_before_its_launch_runs_is_stopped_once_running() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        l.on_op(&cred("a"), Role::Operator, false, 0);
        let hit: HashSet<CredId> = [cred("a")].into();
        assert_eq!(l.revoked(&hit, false), None, "nothing runs yet");
        // a's operation, admitted before the notice, starts OpenCode; nobody renews it.
        l.on_op(&cred("b"), Role::Owner, true, 1_000);
        l.renew(Role::Owner, 1_000);
        assert_eq!(
            l.tick(true, 2_000),
            Some(StopReason::Revoked { cred: cred("a") })
        );
        assert_eq!(l.holder(), None);
    }

    #[test]
    fn a_locked_host_does_not_renew_for_watchers() {
        let state = tempfile::tempdir().unwrap();
        let policy =
            crate::policy::Policy::new(crate::policy::PolicyConfig::default(), state.path());
        let leases = Leases::new(Duration::from_secs(60));
        leases.on_op("w", &cred("a"), Role::Operator, false, 0);
        let watch = proto::header::Op::WatchEvents;
        assert!(leases.renew_watching(&policy, "w", watch, Role::Operator, 50_000));
        assert!(leases.tick("w", true, 100_000).is_none(), "renewed");
        assert!(!crate::policy::lock(state.path(), Some("incident")).unwrap());
        assert!(!leases.renew_watching(&policy, "w", watch, Role::Owner, 109_000));
        assert!(
            leases.tick("w", true, 110_000).is_some(),
            "locked: the lease lapses though an owner watches"
        );
    }

    #[test]
    fn an_adopted_launch_gets_a_lease_from_when_it_is_first_seen() {
        let mut l = LaunchLease::new(Duration::from_secs(60));
        assert_eq!(l.tick(true, 1_000), None);
        assert_eq!(l.holder(), None);
        assert!(l.tick(true, 61_000).is_some());
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
