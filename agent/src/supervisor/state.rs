//! The supervisor's decisions as a pure state machine: inputs (what happened) in, actions (what
//! to do) out, time passed in. No processes, no timers, no I/O here; `process.rs` and the actor
//! in `supervisor.rs` carry the actions out. Time is tokio's clock, so tests can pause it.
//! Every stop goes through here with its reason: an operator's, the idle timer's, and a launch
//! lease's ([`Input::LeaseEnded`]: lapsed, credential or host revoked), whose reason the
//! stopped state keeps in `last_error`.
//!
//! ```text
//! Stopped/Failed --start--> Starting --health ok--> Ready --idle/stop--> Stopping --exit--> Stopped
//!                              |  ^                   |
//!                    exit/timeout  backoff elapsed    exit (crash)
//!                              v  |                   v
//!                             Backoff <---------------+      (5 crashes within 2 min: Failed)
//! ```

use proto::ops::{OpencodeInfo, OpencodeState};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// First restart delay; doubled per crash within the window.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest restart delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// This many crashes within [`CRASH_WINDOW`] and the supervisor gives up (state `Failed`).
pub const MAX_CRASHES: usize = 5;
/// The window in which crashes are counted: longer than the sum of the first four backoffs plus
/// four start-ups, so a process that never comes up is caught.
pub const CRASH_WINDOW: Duration = Duration::from_secs(120);

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An operator or an operation wants OpenCode running.
    StartRequested,
    /// The process was started.
    Spawned {
        /// Its pid.
        pid: u32,
    },
    /// The process could not be started (no binary, bad state folder).
    SpawnFailed {
        /// Operator-facing explanation.
        error: String,
    },
    /// OpenCode printed its listening line.
    ReadyLine,
    /// `/global/health` answered and the event stream is attached.
    HealthOk {
        /// The version it reported.
        version: Option<String>,
    },
    /// The start-up bound passed without readiness.
    ReadyTimeout,
    /// The process ended.
    Exited {
        /// Exit status as text.
        status: String,
        /// Its last stderr lines.
        stderr_tail: Vec<String>,
    },
    /// An operator wants it stopped (or the agent is shutting down).
    StopRequested,
    /// Nobody used the workspace for the idle period.
    IdleTimeout,
    /// The launch lease ended (lapsed, or its credential or this host was revoked): stop,
    /// aborting running turns, and say why.
    LeaseEnded {
        /// Operator-facing reason, kept as `last_error` once stopped.
        reason: String,
    },
    /// The restart delay passed.
    BackoffElapsed,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a new process.
    Spawn,
    /// Deliver [`Input::ReadyTimeout`] after this long unless ready by then.
    ArmReadyTimer(Duration),
    /// Probe health, attach the event stream, then deliver [`Input::HealthOk`].
    CheckHealth,
    /// Deliver [`Input::BackoffElapsed`] after this long.
    ScheduleBackoff(Duration),
    /// Stop gracefully: optionally `POST /global/dispose`, then SIGTERM, grace, SIGKILL.
    Stop {
        /// Whether the server is up to be asked to dispose.
        dispose: bool,
    },
    /// Abort the running turns before the [`Action::Stop`] that follows.
    AbortTurns,
    /// SIGKILL now.
    Kill,
    /// Publish this state.
    Emit(OpencodeInfo),
}

/// One workspace's supervisor state.
#[derive(Debug, Clone)]
pub struct Machine {
    workspace: String,
    ready_timeout: Duration,
    state: OpencodeState,
    /// Restarts since the last explicit start (reported to operators).
    restarts: u32,
    /// Crash times inside the window; decides backoff length and giving up.
    crashes: VecDeque<Instant>,
    last_error: Option<String>,
    version: Option<String>,
    /// The current launch was killed for not becoming ready (shapes the error text).
    timed_out: bool,
    /// A start was requested while stopping: start again once the process is gone.
    start_after_stop: bool,
    /// Why the current stop was decided (a lease), shown once stopped.
    stop_reason: Option<String>,
}

impl Machine {
    /// A stopped machine for `workspace`.
    pub fn new(workspace: impl Into<String>, ready_timeout: Duration) -> Self {
        Self {
            workspace: workspace.into(),
            ready_timeout,
            state: OpencodeState::Stopped,
            restarts: 0,
            crashes: VecDeque::new(),
            last_error: None,
            version: None,
            timed_out: false,
            start_after_stop: false,
            stop_reason: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> OpencodeState {
        self.state
    }

    /// Keeps `text` as `last_error` (a launch went ahead without something: operators see
    /// why).
    pub fn note(&mut self, text: String) {
        self.last_error = Some(text);
    }

    /// The state as operators see it.
    pub fn info(&self) -> OpencodeInfo {
        OpencodeInfo {
            workspace: self.workspace.clone(),
            state: self.state,
            version: self.version.clone(),
            restarts: self.restarts,
            last_error: self.last_error.clone(),
        }
    }

    fn emit(&self) -> Action {
        Action::Emit(self.info())
    }

    fn begin_start(&mut self) -> Vec<Action> {
        self.state = OpencodeState::Starting;
        self.timed_out = false;
        vec![
            Action::Spawn,
            Action::ArmReadyTimer(self.ready_timeout),
            self.emit(),
        ]
    }

    fn fresh_start(&mut self) -> Vec<Action> {
        self.restarts = 0;
        self.crashes.clear();
        self.last_error = None;
        self.stop_reason = None;
        self.begin_start()
    }

    /// The restart delay after `n` crashes in the window (1 s, 2 s, 4 s, … capped).
    pub fn backoff_for(n: usize) -> Duration {
        let exp = u32::try_from(n.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP)
    }

    fn crashed(&mut self, status: &str, stderr_tail: &[String], now: Instant) -> Vec<Action> {
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= CRASH_WINDOW)
        {
            self.crashes.pop_front();
        }
        let mut error = if self.timed_out {
            format!(
                "OpenCode did not become ready within {:?}",
                self.ready_timeout
            )
        } else {
            format!("OpenCode exited unexpectedly ({status})")
        };
        self.timed_out = false;
        if !stderr_tail.is_empty() {
            error.push_str("; last output:\n");
            error.push_str(&stderr_tail.join("\n"));
        }
        if self.crashes.len() >= MAX_CRASHES {
            self.state = OpencodeState::Failed;
            self.last_error = Some(format!(
                "gave up after {} crashes within {:?}: {error}",
                self.crashes.len(),
                CRASH_WINDOW
            ));
            return vec![self.emit()];
        }
        self.last_error = Some(error);
        self.state = OpencodeState::Backoff;
        self.restarts = self.restarts.saturating_add(1);
        vec![
            Action::ScheduleBackoff(Self::backoff_for(self.crashes.len())),
            self.emit(),
        ]
    }

    /// Feeds one input; returns the actions to carry out, in order.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        use OpencodeState as S;
        match (self.state, input) {
            (S::Stopped | S::Failed, Input::StartRequested) => self.fresh_start(),
            (S::Backoff, Input::BackoffElapsed) => self.begin_start(),
            // A start request during the backoff waits for it: operations arriving during a
            // crash loop must not turn it into a tight one.
            (S::Backoff, Input::StartRequested) => Vec::new(),
            (S::Stopping, Input::StartRequested) => {
                self.start_after_stop = true;
                Vec::new()
            }
            (S::Starting, Input::SpawnFailed { error }) => {
                // Not retried: a missing binary or unwritable state folder does not fix itself.
                self.state = S::Failed;
                self.last_error = Some(error);
                vec![self.emit()]
            }
            (S::Starting, Input::ReadyLine) => vec![Action::CheckHealth],
            (S::Starting, Input::HealthOk { version }) => {
                self.state = S::Ready;
                self.version = version.or(self.version.take());
                vec![self.emit()]
            }
            (S::Starting, Input::ReadyTimeout) => {
                self.timed_out = true;
                vec![Action::Kill]
            }
            (
                S::Starting | S::Ready,
                Input::Exited {
                    status,
                    stderr_tail,
                },
            ) => self.crashed(&status, &stderr_tail, now),
            (S::Stopping, Input::Exited { .. }) => {
                self.state = S::Stopped;
                let reason = self.stop_reason.take();
                let said = reason.is_some();
                if reason.is_some() {
                    self.last_error = reason;
                }
                if std::mem::take(&mut self.start_after_stop) {
                    // Operators see why it stopped, even when it starts again at once.
                    let mut actions = if said { vec![self.emit()] } else { Vec::new() };
                    actions.extend(self.fresh_start());
                    actions
                } else {
                    vec![self.emit()]
                }
            }
            (S::Ready, Input::LeaseEnded { reason }) => {
                self.state = S::Stopping;
                self.stop_reason = Some(reason);
                vec![
                    Action::AbortTurns,
                    Action::Stop { dispose: true },
                    self.emit(),
                ]
            }
            (S::Starting, Input::LeaseEnded { reason }) => {
                self.state = S::Stopping;
                self.stop_reason = Some(reason);
                vec![Action::Stop { dispose: false }, self.emit()]
            }
            (S::Stopping, Input::LeaseEnded { reason }) => {
                self.start_after_stop = false;
                self.stop_reason = Some(reason);
                Vec::new()
            }
            (S::Backoff | S::Failed, Input::LeaseEnded { reason }) => {
                self.state = S::Stopped;
                self.last_error = Some(reason);
                vec![self.emit()]
            }
            (S::Starting, Input::StopRequested) => {
                self.state = S::Stopping;
                vec![Action::Stop { dispose: false }, self.emit()]
            }
            (S::Ready, Input::StopRequested | Input::IdleTimeout) => {
                self.state = S::Stopping;
                vec![Action::Stop { dispose: true }, self.emit()]
            }
            (S::Backoff | S::Failed, Input::StopRequested) => {
                self.state = S::Stopped;
                vec![self.emit()]
            }
            (S::Stopping, Input::StopRequested) => {
                self.start_after_stop = false;
                Vec::new()
            }
            // Everything else is stale or a no-op: a start while starting or ready, an exit
            // of a process already given up on, a timer that lost a race with a state change.
            (_, _) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emitted(actions: &[Action]) -> Vec<OpencodeState> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Emit(i) => Some(i.state),
                _ => None,
            })
            .collect()
    }

    fn exited(code: &str) -> Input {
        Input::Exited {
            status: code.into(),
            stderr_tail: vec!["Error: boom".into()],
        }
    }

    fn ready(m: &mut Machine, now: Instant) {
        let a = m.handle(Input::StartRequested, now);
        assert_eq!(
            &a[..2],
            &[
                Action::Spawn,
                Action::ArmReadyTimer(Duration::from_secs(20))
            ]
        );
        assert_eq!(m.handle(Input::Spawned { pid: 42 }, now), vec![]);
        assert_eq!(m.handle(Input::ReadyLine, now), vec![Action::CheckHealth]);
        let a = m.handle(
            Input::HealthOk {
                version: Some("1.18.33".into()),
            },
            now,
        );
        assert_eq!(emitted(&a), vec![OpencodeState::Ready]);
        assert_eq!(m.info().version.as_deref(), Some("1.18.33"));
    }

    #[test]
    fn start_then_stop() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        assert_eq!(m.state(), OpencodeState::Stopped);
        ready(&mut m, t);
        // A second start is a no-op.
        assert_eq!(m.handle(Input::StartRequested, t), vec![]);
        let a = m.handle(Input::StopRequested, t);
        assert_eq!(a[0], Action::Stop { dispose: true });
        assert_eq!(m.state(), OpencodeState::Stopping);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        assert_eq!(m.info().restarts, 0);
        assert_eq!(m.info().last_error, None);
    }

    #[test]
    fn crashes_back_off_exponentially_then_give_up_with_stderr() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        ready(&mut m, t);
        let mut delays = Vec::new();
        let mut now = t;
        for n in 1..=4u32 {
            now += Duration::from_secs(5);
            let a = m.handle(exited("exit status: 1"), now);
            assert_eq!(m.state(), OpencodeState::Backoff);
            assert_eq!(m.info().restarts, n);
            assert!(m.info().last_error.unwrap().contains("Error: boom"));
            match a[0] {
                Action::ScheduleBackoff(d) => delays.push(d.as_secs()),
                ref other => panic!("{other:?}"),
            }
            let a = m.handle(Input::BackoffElapsed, now);
            assert_eq!(a[0], Action::Spawn);
            assert_eq!(m.state(), OpencodeState::Starting);
        }
        assert_eq!(delays, vec![1, 2, 4, 8]);
        let a = m.handle(exited("exit status: 1"), now + Duration::from_secs(1));
        assert_eq!(emitted(&a), vec![OpencodeState::Failed]);
        let err = m.info().last_error.unwrap();
        assert!(err.contains("gave up after 5 crashes"), "{err}");
        assert!(err.contains("Error: boom"), "{err}");
        // A late backoff timer does nothing; an explicit start begins afresh.
        assert_eq!(m.handle(Input::BackoffElapsed, now), vec![]);
        let a = m.handle(Input::StartRequested, now);
        assert_eq!(a[0], Action::Spawn);
        assert_eq!(m.info().restarts, 0);
        assert_eq!(m.info().last_error, None);
    }

    #[test]
    fn crashes_spread_out_never_give_up() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        ready(&mut m, t);
        for n in 1..=10u64 {
            let now = t + CRASH_WINDOW * u32::try_from(n).unwrap();
            let a = m.handle(exited("exit status: 1"), now);
            assert_eq!(a[0], Action::ScheduleBackoff(BACKOFF_BASE));
            m.handle(Input::BackoffElapsed, now);
            m.handle(Input::ReadyLine, now);
            m.handle(Input::HealthOk { version: None }, now);
            assert_eq!(m.state(), OpencodeState::Ready);
        }
        assert_eq!(m.info().restarts, 10);
        assert_eq!(m.info().version.as_deref(), Some("1.18.33"));
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(Machine::backoff_for(1), Duration::from_secs(1));
        assert_eq!(Machine::backoff_for(3), Duration::from_secs(4));
        assert_eq!(Machine::backoff_for(40), BACKOFF_CAP);
    }

    #[test]
    fn ready_timeout_kills_and_counts_as_a_crash() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(3));
        m.handle(Input::StartRequested, t);
        assert_eq!(m.handle(Input::ReadyTimeout, t), vec![Action::Kill]);
        let a = m.handle(exited("signal 9"), t);
        assert!(matches!(a[0], Action::ScheduleBackoff(_)));
        let err = m.info().last_error.unwrap();
        assert!(err.contains("did not become ready within 3s"), "{err}");
        // A timeout after readiness is stale.
        m.handle(Input::BackoffElapsed, t);
        m.handle(Input::ReadyLine, t);
        m.handle(Input::HealthOk { version: None }, t);
        assert_eq!(m.handle(Input::ReadyTimeout, t), vec![]);
    }

    #[test]
    fn spawn_failure_fails_at_once() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        m.handle(Input::StartRequested, t);
        let a = m.handle(
            Input::SpawnFailed {
                error: "OpenCode not found".into(),
            },
            t,
        );
        assert_eq!(emitted(&a), vec![OpencodeState::Failed]);
        assert_eq!(m.info().last_error.as_deref(), Some("OpenCode not found"));
        let a = m.handle(Input::StopRequested, t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
    }

    #[test]
    fn stop_paths_from_every_state() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        assert_eq!(m.handle(Input::StopRequested, t), vec![]);
        m.handle(Input::StartRequested, t);
        let a = m.handle(Input::StopRequested, t);
        assert_eq!(a[0], Action::Stop { dispose: false });
        // A start while stopping runs once the old process is gone.
        assert_eq!(m.handle(Input::StartRequested, t), vec![]);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(a[0], Action::Spawn);
        assert_eq!(m.state(), OpencodeState::Starting);
        // Crash: a start request waits for the backoff; a stop during it means no restart.
        m.handle(exited("exit status: 1"), t);
        assert_eq!(m.state(), OpencodeState::Backoff);
        assert_eq!(m.handle(Input::StartRequested, t), vec![]);
        assert_eq!(m.state(), OpencodeState::Backoff);
        let a = m.handle(Input::StopRequested, t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        assert_eq!(m.handle(Input::BackoffElapsed, t), vec![]);
        // Idle stop only applies when ready.
        assert_eq!(m.handle(Input::IdleTimeout, t), vec![]);
        ready(&mut m, t);
        let a = m.handle(Input::IdleTimeout, t);
        assert_eq!(a[0], Action::Stop { dispose: true });
        // Stop, start, stop again while stopping: the start is cancelled.
        m.handle(Input::StartRequested, t);
        m.handle(Input::StopRequested, t);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
    }

    fn lapsed() -> Input {
        Input::LeaseEnded {
            reason: "stopped: its launch lease lapsed".into(),
        }
    }

    #[test]
    fn a_lease_end_aborts_turns_stops_and_keeps_the_reason() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        assert_eq!(
            m.handle(lapsed(), t),
            vec![],
            "nothing runs: nothing to stop"
        );
        ready(&mut m, t);
        let a = m.handle(lapsed(), t);
        assert_eq!(
            &a[..2],
            &[Action::AbortTurns, Action::Stop { dispose: true }]
        );
        assert_eq!(m.state(), OpencodeState::Stopping);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        let why = m.info().last_error.unwrap_or_default();
        assert!(why.contains("lease lapsed"), "{why}");
        // The next start begins afresh.
        m.handle(Input::StartRequested, t);
        assert_eq!(m.info().last_error, None);
        // Starting: no turns to abort.
        let a = m.handle(lapsed(), t);
        assert_eq!(a[0], Action::Stop { dispose: false });
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        // Already stopping with a start queued: the lease end cancels that start.
        ready(&mut m, t);
        m.handle(Input::StopRequested, t);
        m.handle(Input::StartRequested, t);
        assert_eq!(m.handle(lapsed(), t), vec![]);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        assert!(
            m.info()
                .last_error
                .unwrap_or_default()
                .contains("lease lapsed")
        );
        // In a crash backoff: stopped at once, with the reason.
        ready(&mut m, t);
        m.handle(exited("exit status: 1"), t);
        let a = m.handle(lapsed(), t);
        assert_eq!(emitted(&a), vec![OpencodeState::Stopped]);
        assert!(
            m.info()
                .last_error
                .unwrap_or_default()
                .contains("lease lapsed")
        );
    }

    #[test]
    fn a_start_after_a_lease_stop_still_shows_why_it_stopped() {
        let t = Instant::now();
        let mut m = Machine::new("demo", Duration::from_secs(20));
        ready(&mut m, t);
        m.handle(lapsed(), t);
        m.handle(Input::StartRequested, t);
        let a = m.handle(exited("signal 15"), t);
        assert_eq!(
            emitted(&a),
            vec![OpencodeState::Stopped, OpencodeState::Starting]
        );
        let stopped = a.iter().find_map(|x| match x {
            Action::Emit(i) if i.state == OpencodeState::Stopped => i.last_error.clone(),
            _ => None,
        });
        assert!(stopped.unwrap_or_default().contains("lease lapsed"));
    }
}
