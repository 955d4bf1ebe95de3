//! The relay's core background tasks (the accept loop, the sweeper that enforces revocations
//! and expiries, the prompt-queue deliverer) run under one supervisor, a [`JoinSet`]: a task
//! that panics or returns before shutdown is logged and restarted after a short delay, and one
//! that keeps failing stops the relay (`cm-relay run` exits non-zero with the reason) instead
//! of running on without it. A dead sweeper would otherwise leave the kill switch silently off.
//!
//! [`RestartBudget`] is the pure decision (restart after a delay, or give up); [`supervise`]
//! is the thin async shell around the `JoinSet`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First restart delay; doubled for each failure inside the window.
pub const RESTART_BASE: Duration = Duration::from_millis(100);
/// Longest restart delay.
pub const RESTART_CAP: Duration = Duration::from_secs(5);
/// This many failures of one task within [`FAILURE_WINDOW`] and the relay stops.
pub const MAX_FAILURES: usize = 5;
/// The window in which a task's failures are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// A boxed core-task future.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Builds a fresh run of a task (called again on every restart).
pub type TaskFactory = Box<dyn Fn() -> TaskFuture + Send + Sync>;

/// A core task that kept failing: the relay must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the relay's {task} task failed {failures} times within {window:?} (last: {last}); the relay stopped rather than run without it; see the log above, and restart it (a service manager does this by itself)"
)]
pub struct CoreTaskFailed {
    /// The task's name.
    pub task: &'static str,
    /// Failures counted in the window.
    pub failures: usize,
    /// The window.
    pub window: Duration,
    /// How its last run ended.
    pub last: String,
}

/// What to do after a task failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterFailure {
    /// Start it again after this delay.
    Restart(Duration),
    /// Too many failures in the window: stop.
    GiveUp {
        /// Failures counted.
        failures: usize,
    },
}

/// One task's recent failures: the pure restart decision.
#[derive(Debug, Clone, Default)]
pub struct RestartBudget {
    failures: VecDeque<Instant>,
}

impl RestartBudget {
    /// Records a failure at `now` and decides.
    pub fn on_failure(&mut self, now: Instant) -> AfterFailure {
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
        let n = self.failures.len();
        if n >= MAX_FAILURES {
            return AfterFailure::GiveUp { failures: n };
        }
        let exp = u32::try_from(n.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(16);
        AfterFailure::Restart(RESTART_BASE.saturating_mul(1u32 << exp).min(RESTART_CAP))
    }
}

/// Makes a named core task panic at once: a drill for the supervision (tests use it to prove
/// that a panicking sweeper is restarted). Inert unless [`FaultHook::panic_now`] is called.
#[derive(Debug, Clone, Default)]
pub struct FaultHook {
    by_task: Arc<parking_lot::Mutex<HashMap<&'static str, Arc<Notify>>>>,
}

impl FaultHook {
    fn notify_for(&self, task: &'static str) -> Arc<Notify> {
        let mut map = self.by_task.lock();
        Arc::clone(map.entry(task).or_default())
    }

    /// Makes the current run of `task` panic (or its next run, if none is running).
    pub fn panic_now(&self, task: &'static str) {
        self.notify_for(task).notify_one();
    }
}

/// One supervised task.
pub struct CoreTask {
    /// Its name, in logs and errors.
    pub name: &'static str,
    /// Builds a run of it.
    pub factory: TaskFactory,
}

impl std::fmt::Debug for CoreTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreTask")
            .field("name", &self.name)
            .finish()
    }
}

fn start(
    set: &mut JoinSet<()>,
    names: &mut HashMap<tokio::task::Id, usize>,
    tasks: &[CoreTask],
    index: usize,
    delay: Duration,
    faults: &FaultHook,
) {
    let Some(task) = tasks.get(index) else { return };
    let run = (task.factory)();
    let fault = faults.notify_for(task.name);
    let name = task.name;
    let handle = set.spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        tokio::select! {
            () = run => {}
            () = fault.notified() => panic!("fault injected into the {name} task"),
        }
    });
    names.insert(handle.id(), index);
}

/// Runs `tasks` until `cancel`, restarting any that ends before it; returns the failure that
/// made it give up, or `Ok` once cancelled and every task has ended.
///
/// # Errors
/// [`CoreTaskFailed`] when one task failed [`MAX_FAILURES`] times within [`FAILURE_WINDOW`].
pub async fn supervise(
    tasks: Vec<CoreTask>,
    cancel: CancellationToken,
    faults: FaultHook,
) -> Result<(), CoreTaskFailed> {
    let mut set = JoinSet::new();
    let mut names = HashMap::new();
    let mut budgets: Vec<RestartBudget> = vec![RestartBudget::default(); tasks.len()];
    for i in 0..tasks.len() {
        start(&mut set, &mut names, &tasks, i, Duration::ZERO, &faults);
    }
    while let Some(joined) = set.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, ())) => (id, Ok(())),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(index) = names.remove(&id) else {
            continue;
        };
        if cancel.is_cancelled() && result.is_ok() {
            continue;
        }
        let name = tasks.get(index).map_or("?", |t| t.name);
        let how = cm_client::task_end::describe(result);
        if cancel.is_cancelled() {
            tracing::warn!(task = name, how, "core task ended badly during shutdown");
            continue;
        }
        let Some(budget) = budgets.get_mut(index) else {
            continue;
        };
        match budget.on_failure(Instant::now()) {
            AfterFailure::Restart(delay) => {
                tracing::error!(
                    task = name,
                    how,
                    ?delay,
                    "core task ended unexpectedly; restarting it"
                );
                start(&mut set, &mut names, &tasks, index, delay, &faults);
            }
            AfterFailure::GiveUp { failures } => {
                tracing::error!(
                    task = name,
                    how,
                    failures,
                    "core task keeps failing; stopping the relay"
                );
                cancel.cancel();
                set.shutdown().await;
                return Err(CoreTaskFailed {
                    task: name,
                    failures,
                    window: FAILURE_WINDOW,
                    last: how,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(runs: &Arc<AtomicUsize>, f: fn(usize) -> TaskFuture) -> TaskFactory {
        let runs = Arc::clone(runs);
        Box::new(move || f(runs.fetch_add(1, Ordering::SeqCst)))
    }

    #[test]
    fn restarts_back_off_then_give_up_within_the_window() {
        let t = Instant::now();
        let mut b = RestartBudget::default();
        let delays: Vec<AfterFailure> = (0..4)
            .map(|i| b.on_failure(t + Duration::from_secs(i)))
            .collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800].map(|ms| AfterFailure::Restart(Duration::from_millis(ms)))
        );
        assert_eq!(
            b.on_failure(t + Duration::from_secs(5)),
            AfterFailure::GiveUp { failures: 5 }
        );
        // Failures spread out never add up.
        let mut b = RestartBudget::default();
        for i in 0..20u32 {
            assert_eq!(
                b.on_failure(t + FAILURE_WINDOW * i),
                AfterFailure::Restart(RESTART_BASE)
            );
        }
    }

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_a_cancelled_one_is_not() {
        let runs = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let (seen_tx, mut seen) = tokio::sync::mpsc::channel::<usize>(8);
        let factory = {
            let runs = Arc::clone(&runs);
            let cancel = cancel.clone();
            Box::new(move || -> TaskFuture {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let (seen_tx, cancel) = (seen_tx.clone(), cancel.clone());
                Box::pin(async move {
                    let _ = seen_tx.send(run).await;
                    assert!(run != 0, "the first run panics");
                    cancel.cancelled().await;
                })
            }) as TaskFactory
        };
        let tasks = vec![CoreTask {
            name: "flaky",
            factory,
        }];
        let sup = tokio::spawn(supervise(tasks, cancel.clone(), FaultHook::default()));
        assert_eq!(seen.recv().await, Some(0));
        assert_eq!(seen.recv().await, Some(1), "restarted after the panic");
        cancel.cancel();
        assert_eq!(sup.await.ok(), Some(Ok(())));
        assert_eq!(runs.load(Ordering::SeqCst), 2, "no restart after cancel");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_keeps_returning_stops_the_relay_with_a_clear_error() {
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks = vec![CoreTask {
            name: "sweeper",
            factory: counting(&runs, |_| Box::pin(async {})),
        }];
        let cancel = CancellationToken::new();
        let err = supervise(tasks, cancel.clone(), FaultHook::default())
            .await
            .expect_err("gives up");
        assert_eq!(err.task, "sweeper");
        assert_eq!(err.failures, MAX_FAILURES);
        assert_eq!(err.last, "returned early");
        assert!(
            err.to_string().contains("sweeper task failed 5 times"),
            "{err}"
        );
        assert!(
            cancel.is_cancelled(),
            "the rest of the relay is told to stop"
        );
        assert_eq!(runs.load(Ordering::SeqCst), MAX_FAILURES);
    }

    #[tokio::test]
    async fn an_injected_fault_panics_the_named_task_only() {
        let cancel = CancellationToken::new();
        let faults = FaultHook::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let other = Arc::new(AtomicUsize::new(0));
        let (tx, mut started) = tokio::sync::mpsc::channel::<&'static str>(8);
        let make = |name: &'static str, runs: &Arc<AtomicUsize>| {
            let (runs, tx, cancel) = (Arc::clone(runs), tx.clone(), cancel.clone());
            Box::new(move || -> TaskFuture {
                runs.fetch_add(1, Ordering::SeqCst);
                let (tx, cancel) = (tx.clone(), cancel.clone());
                Box::pin(async move {
                    let _ = tx.send(name).await;
                    cancel.cancelled().await;
                })
            }) as TaskFactory
        };
        let tasks = vec![
            CoreTask {
                name: "sweeper",
                factory: make("sweeper", &runs),
            },
            CoreTask {
                name: "queue",
                factory: make("queue", &other),
            },
        ];
        let sup = tokio::spawn(supervise(tasks, cancel.clone(), faults.clone()));
        let mut first = vec![started.recv().await, started.recv().await];
        first.sort();
        assert_eq!(first, vec![Some("queue"), Some("sweeper")]);
        faults.panic_now("sweeper");
        assert_eq!(started.recv().await, Some("sweeper"), "restarted");
        cancel.cancel();
        assert_eq!(sup.await.ok(), Some(Ok(())));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(
            other.load(Ordering::SeqCst),
            1,
            "the queue task was untouched"
        );
    }
}
