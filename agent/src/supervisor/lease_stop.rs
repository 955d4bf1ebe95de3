//! The launch lease's side of a workspace's supervisor: the actor checks its workspace's lease
//! when [`crate::lease::Leases::next_check`] comes (on tokio's clock), and takes revocation
//! notices as commands. A lease's verdict goes into the machine as [`Input::LeaseEnded`], so
//! the stop, its order (abort running turns, then stop) and its reason are the supervisor's.

use super::state::Input;
use super::{Actor, Command, SupervisorHandle};
use crate::lease::StopReason;
use proto::ids::CredId;
use proto::ops::{OpencodeInfo, OpencodeState};
use std::collections::HashSet;
use tokio::sync::oneshot;
use tokio::time::Instant;

impl SupervisorHandle {
    /// Credentials were revoked: a launch bound to one of them stops (its lease decides).
    /// Returns once that stop is done, at once when nothing stops.
    pub async fn creds_revoked(&self, creds: HashSet<CredId>) -> OpencodeInfo {
        self.ask(|tx| Command::CredsRevoked(creds, tx)).await
    }

    /// This host was revoked: a running OpenCode stops. Returns once it has.
    pub async fn host_killed(&self) -> OpencodeInfo {
        self.ask(Command::HostKilled).await
    }

    /// Resolves when the actor has ended (after [`SupervisorHandle::shutdown`], or because it
    /// panicked): the agent's core-task supervision watches this.
    pub async fn ended(&self) {
        self.commands.closed().await;
    }

    /// A supervision drill: makes the actor panic, to prove the agent notices a supervisor
    /// that ends. Nothing calls this in normal operation.
    pub fn panic_now(&self) {
        let _ = self.commands.send(Command::Panic);
    }
}

impl Actor {
    /// Whether OpenCode runs (or is on its way up or down), for the lease.
    fn is_running(&self) -> bool {
        !matches!(
            self.machine.state(),
            OpencodeState::Stopped | OpencodeState::Failed
        )
    }

    /// The lease's check came (the launch is ready): stop it if the lease says so.
    pub(super) async fn check_lease(&mut self) {
        let ws = &self.deps.workspace.name;
        if let Some(reason) = self.deps.leases.tick(ws, true, Instant::now()) {
            self.stop_for_lease(&reason).await;
        }
    }

    pub(super) async fn on_creds_revoked(
        &mut self,
        creds: &HashSet<CredId>,
        reply: oneshot::Sender<OpencodeInfo>,
    ) {
        let ws = &self.deps.workspace.name;
        match self.deps.leases.revoked(ws, creds, self.is_running()) {
            Some(reason) => {
                self.stop_waiters.push(reply);
                self.stop_for_lease(&reason).await;
            }
            None => {
                let _ = reply.send(self.machine.info());
            }
        }
    }

    pub(super) async fn on_host_killed(&mut self, reply: oneshot::Sender<OpencodeInfo>) {
        self.deps.leases.clear(&self.deps.workspace.name);
        if self.is_running() {
            self.stop_waiters.push(reply);
            self.stop_for_lease(&StopReason::HostKilled).await;
        } else {
            let _ = reply.send(self.machine.info());
        }
    }

    /// The launch lease ended: the machine stops OpenCode and keeps the reason.
    async fn stop_for_lease(&mut self, reason: &StopReason) {
        tracing::warn!(workspace = %self.deps.workspace.name, %reason, "stopping leased OpenCode");
        self.lease_stop = Some(reason.to_string());
        self.feed(Input::LeaseEnded {
            reason: reason.to_string(),
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Leases;
    use crate::supervisor::state::{Action, Machine};
    use proto::rbac::Role;
    use std::time::Duration;

    /// A lapsed launch lease stops OpenCode through the machine on tokio's paused clock: the
    /// 30-minute lease passes at once, the way the supervisor's actor waits for it.
    #[tokio::test(start_paused = true)]
    async fn a_lapsed_lease_stops_opencode_through_the_machine_on_paused_time() {
        let leases = Leases::new(Duration::from_secs(30 * 60));
        let mut m = Machine::new("demo", Duration::from_secs(20));
        leases.on_op("demo", &CredId::from("c1"), Role::Operator, false);
        for input in [
            Input::StartRequested,
            Input::Spawned { pid: 42 },
            Input::ReadyLine,
            Input::HealthOk { version: None },
        ] {
            m.handle(input, Instant::now());
        }
        assert_eq!(m.state(), OpencodeState::Ready);
        assert_eq!(leases.tick("demo", true, Instant::now()), None);
        let due = leases.next_check("demo", Instant::now());
        let before = Instant::now();
        tokio::time::sleep_until(due).await;
        assert!(Instant::now() - before >= Duration::from_secs(30 * 60));
        let reason = leases
            .tick("demo", true, Instant::now())
            .expect("the lease lapsed");
        let a = m.handle(
            Input::LeaseEnded {
                reason: reason.to_string(),
            },
            Instant::now(),
        );
        assert_eq!(a[1], Action::Stop { dispose: true });
        m.handle(
            Input::Exited {
                status: "signal 15".into(),
                stderr_tail: Vec::new(),
            },
            Instant::now(),
        );
        let info = m.info();
        assert_eq!(info.state, OpencodeState::Stopped);
        let why = info.last_error.unwrap_or_default();
        assert!(
            why.contains("lease lapsed") && why.contains("30 min"),
            "{why}"
        );
    }
}
