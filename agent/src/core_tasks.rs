//! The agent's core tasks (the link to the relay, the workspaces' supervisors) run under one
//! supervisor, a [`JoinSet`]: a task that panics or returns before shutdown is noticed, logged,
//! and stops the agent with a clear error (`cm-agent run` exits non-zero, and a service manager
//! starts it again; OpenCode left running is re-adopted). Running on without the link, or
//! with a workspace nobody supervises, would fail silently.

use std::collections::HashMap;
use std::future::Future;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A core task ended while the agent was not stopping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the agent's {task} task {how}; the agent stopped rather than run without it (see the log above; a service manager restarts it)"
)]
pub struct CoreTaskEnded {
    /// The task's name.
    pub task: &'static str,
    /// How it ended ("returned early", "panicked: …").
    pub how: String,
}

/// The supervised tasks.
#[derive(Debug)]
pub struct CoreTasks {
    set: JoinSet<()>,
    names: HashMap<tokio::task::Id, &'static str>,
    cancel: CancellationToken,
}

impl CoreTasks {
    /// No tasks yet; `cancel` marks the agent as stopping (tasks ending after it are fine).
    pub fn new(cancel: CancellationToken) -> Self {
        Self {
            set: JoinSet::new(),
            names: HashMap::new(),
            cancel,
        }
    }

    /// Runs `task` under supervision.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for the first task that ends before `cancel`; never resolves otherwise (tasks
    /// that end after `cancel` are expected).
    pub async fn ended_unexpectedly(&mut self) -> CoreTaskEnded {
        while let Some(joined) = self.set.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, ())) => (id, Ok(())),
                Err(e) => (e.id(), Err(e)),
            };
            let task = self.names.remove(&id).unwrap_or("unnamed");
            if self.cancel.is_cancelled() && result.is_ok() {
                continue;
            }
            let how = cm_client::task_end::describe(result);
            tracing::error!(
                task,
                how,
                "core task ended unexpectedly; stopping the agent"
            );
            return CoreTaskEnded { task, how };
        }
        std::future::pending().await
    }

    /// Waits (bounded by the caller) for every task to end after `cancel`.
    pub async fn drain(&mut self) {
        while let Some(joined) = self.set.join_next_with_id().await {
            if let Err(e) = joined
                && e.is_panic()
            {
                let task = self.names.get(&e.id()).copied().unwrap_or("unnamed");
                tracing::warn!(
                    task,
                    how = cm_client::task_end::describe(Err(e)),
                    "core task failed while stopping"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_noticed_by_name() {
        let cancel = CancellationToken::new();
        let mut tasks = CoreTasks::new(cancel.clone());
        let c = cancel.clone();
        tasks.spawn("link", async move { c.cancelled().await });
        tasks.spawn("workspace supervisors", async { panic!("boom") });
        let ended = tasks.ended_unexpectedly().await;
        assert_eq!(ended.task, "workspace supervisors");
        assert_eq!(ended.how, "panicked: boom");
        assert!(ended.to_string().contains("agent stopped"), "{ended}");
        cancel.cancel();
        tasks.drain().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_returns_early_is_noticed_and_one_ending_at_shutdown_is_not() {
        let cancel = CancellationToken::new();
        let mut tasks = CoreTasks::new(cancel.clone());
        tasks.spawn("link", async {});
        let ended = tasks.ended_unexpectedly().await;
        assert_eq!((ended.task, ended.how.as_str()), ("link", "returned early"));

        let mut tasks = CoreTasks::new(cancel.clone());
        let c = cancel.clone();
        tasks.spawn("link", async move { c.cancelled().await });
        cancel.cancel();
        // Paused clock: the timeout only fires once nothing else can happen.
        let quiet = tokio::time::timeout(
            std::time::Duration::from_secs(3600),
            tasks.ended_unexpectedly(),
        )
        .await;
        assert!(quiet.is_err(), "an end after cancel is not a failure");
    }

    #[tokio::test]
    async fn a_workspace_supervisor_that_panics_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = crate::config::Workspace {
            name: "w".into(),
            root: tmp.path().to_owned(),
            permissions: Default::default(),
            sandbox: Default::default(),
        };
        let workspaces = crate::workspaces::Workspaces::spawn(
            &[ws],
            Default::default(),
            &tmp.path().join("state"),
        );
        let cancel = CancellationToken::new();
        let mut tasks = CoreTasks::new(cancel.clone());
        let watched = std::sync::Arc::clone(&workspaces);
        tasks.spawn("workspace supervisor", async move {
            let name = watched.supervisor_ended().await;
            assert_eq!(name, "w");
        });
        workspaces.get("w").unwrap().supervisor.panic_now();
        let ended = tasks.ended_unexpectedly().await;
        assert_eq!(ended.task, "workspace supervisor");
        assert_eq!(ended.how, "returned early");
        cancel.cancel();
        workspaces.shutdown().await;
    }
}
