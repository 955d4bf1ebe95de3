//! The configured workspaces at run time: for each, its event hub, its OpenCode supervisor and
//! the small records that make retries safe. Built once at start; `main.rs` and the operations
//! layer share it.

use crate::config::{OpencodeConfig, Workspace};
use crate::hub::EventHub;
use crate::idempotency::{Bounded, MAX_ANSWERED, PromptRecord};
use crate::supervisor::{SupervisorDeps, SupervisorHandle, leftovers};
use parking_lot::Mutex;
use proto::ids::CredId;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often orphaned tool processes re-parented to the agent are reaped.
const REAP_INTERVAL: Duration = Duration::from_secs(10);
/// Bound on stopping every OpenCode at shutdown (dispose + SIGTERM + grace + cleanup).
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// One workspace at run time.
#[derive(Debug)]
pub struct WorkspaceRuntime {
    /// Name and root.
    pub workspace: Workspace,
    /// Its events.
    pub hub: Arc<EventHub>,
    /// Its OpenCode.
    pub supervisor: SupervisorHandle,
    /// Prompt idempotency keys; the async lock also serialises prompts of a workspace, so two
    /// concurrent retries cannot both reach OpenCode.
    pub prompts: tokio::sync::Mutex<PromptRecord>,
    /// Permission and question ids this agent already answered.
    pub answered: Mutex<Bounded<()>>,
    /// Standing permission grants ("always" answers kept by the agent, not by OpenCode).
    pub grants: Arc<crate::grants::Grants>,
}

impl WorkspaceRuntime {
    /// Remembers that request `id` was answered.
    pub fn mark_answered(&self, id: &str) {
        self.answered.lock().insert(id.to_owned(), ());
    }

    /// Whether request `id` was answered by this agent.
    pub fn was_answered(&self, id: &str) -> bool {
        self.answered.lock().contains(id)
    }
}

/// All workspaces of this host.
#[derive(Debug)]
pub struct Workspaces {
    entries: BTreeMap<String, Arc<WorkspaceRuntime>>,
    config: Arc<OpencodeConfig>,
    cancel: CancellationToken,
    /// The host owner's limits, checked on every forwarded stream.
    policy: crate::policy::Policy,
    /// Launch leases (JIT binding of each OpenCode launch to a credential).
    leases: Arc<crate::lease::Leases>,
    /// The host's `[git]` settings (clone URL policy and limits).
    git: crate::git::policy::GitSettings,
    /// Running launches as recorded (their markers and ports, for `port_list`).
    registry: Arc<crate::supervisor::statefile::Registry>,
    /// The `[forward]` rules and the forwarded connections open now.
    forwarding: crate::forward::Forwarding,
}

impl Workspaces {
    /// Sets up every workspace with the default policy (locked while `<state_dir>/lock`
    /// exists) and the default launch lease.
    pub fn spawn(workspaces: &[Workspace], config: OpencodeConfig, state_dir: &Path) -> Arc<Self> {
        let policy = crate::policy::Policy::new(crate::policy::PolicyConfig::default(), state_dir);
        Self::spawn_with(
            workspaces,
            config,
            state_dir,
            policy,
            crate::config::DEFAULT_LAUNCH_LEASE,
            crate::git::policy::GitSettings::default(),
        )
    }

    /// Sets up every workspace (OpenCode itself starts on demand) and the orphan reaper.
    pub fn spawn_with(
        workspaces: &[Workspace],
        config: OpencodeConfig,
        state_dir: &Path,
        policy: crate::policy::Policy,
        lease: std::time::Duration,
        git: crate::git::policy::GitSettings,
    ) -> Arc<Self> {
        // An earlier run killed without a clean stop leaves OpenCode (and its tools) running
        // unsupervised; they hold memory and the workspaces' databases.
        // Children of an earlier run that still run are re-adopted (state file); only the
        // rest are strays.
        let names: Vec<&str> = workspaces.iter().map(|w| w.name.as_str()).collect();
        let registry = crate::supervisor::statefile::Registry::load(state_dir, &names);
        let stale = leftovers::stale_launches(state_dir);
        if !stale.is_empty() {
            let killed = leftovers::kill(&stale);
            tracing::warn!(killed, pids = ?stale.iter().map(|p| p.pid).collect::<Vec<_>>(), "killed OpenCode processes left by an earlier run of the agent");
        }
        for w in workspaces {
            crate::sandbox::announce(&w.name, &w.sandbox);
        }
        let config = Arc::new(config);
        let leases = Arc::new(crate::lease::Leases::new(lease));
        let entries = workspaces
            .iter()
            .map(|w| {
                let hub = Arc::new(registry.hub(&w.name));
                let grants = Arc::new(crate::grants::Grants::new(crate::policy::lock_path(
                    state_dir,
                )));
                let supervisor = SupervisorHandle::spawn(SupervisorDeps {
                    workspace: w.clone(),
                    config: Arc::clone(&config),
                    state_dir: state_dir.to_owned(),
                    hub: Arc::clone(&hub),
                    registry: Arc::clone(&registry),
                    grants: Arc::clone(&grants),
                    leases: Arc::clone(&leases),
                });
                let rt = WorkspaceRuntime {
                    workspace: w.clone(),
                    hub,
                    supervisor,
                    prompts: tokio::sync::Mutex::new(PromptRecord::default()),
                    answered: Mutex::new(Bounded::new(MAX_ANSWERED)),
                    grants,
                };
                (w.name.clone(), Arc::new(rt))
            })
            .collect();
        let cancel = CancellationToken::new();
        let reaper_cancel = cancel.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REAP_INTERVAL);
            loop {
                tokio::select! {
                    biased;
                    () = reaper_cancel.cancelled() => return,
                    _ = tick.tick() => {
                        let _ = tokio::task::spawn_blocking(leftovers::reap_adopted).await;
                    }
                }
            }
        });
        Arc::new(Self {
            entries,
            config,
            cancel,
            policy,
            leases,
            git,
            registry,
            forwarding: crate::forward::Forwarding::default(),
        })
    }

    /// The `[forward]` rules and the forwarded connections open now.
    pub fn forwarding(&self) -> &crate::forward::Forwarding {
        &self.forwarding
    }

    /// Every workspace's running OpenCode launch: its marker and server port.
    pub fn launches(&self) -> Vec<crate::forward::detect::Launch> {
        self.registry
            .children()
            .into_iter()
            .map(|(workspace, c)| crate::forward::detect::Launch {
                workspace,
                marker: c.marker,
                port: c.port,
            })
            .collect()
    }

    /// The host's `[git]` settings.
    pub fn git_settings(&self) -> &crate::git::policy::GitSettings {
        &self.git
    }

    /// The host owner's limits (`Policy::check` before serving any operation).
    pub fn policy(&self) -> &crate::policy::Policy {
        &self.policy
    }

    /// The launch leases.
    pub fn leases(&self) -> &crate::lease::Leases {
        &self.leases
    }

    /// The workspace called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<WorkspaceRuntime>> {
        self.entries.get(name)
    }

    /// Every workspace, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<WorkspaceRuntime>> {
        self.entries.values()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// OpenCode settings.
    pub fn opencode_config(&self) -> &OpencodeConfig {
        &self.config
    }

    /// Resolves with a workspace's name when its supervisor has ended (a panic; or after
    /// [`Workspaces::shutdown`]); never while every supervisor runs.
    pub async fn supervisor_ended(&self) -> String {
        let mut set = tokio::task::JoinSet::new();
        for rt in self.entries.values() {
            let (handle, name) = (rt.supervisor.clone(), rt.workspace.name.clone());
            set.spawn(async move {
                handle.ended().await;
                name
            });
        }
        match set.join_next().await {
            Some(Ok(name)) => name,
            Some(Err(e)) => format!("(unknown: {e})"),
            None => std::future::pending().await,
        }
    }

    /// Stops every launch bound to one of `creds` (the relay reported them revoked; see
    /// `lease.rs`); returns once those stops are done. Each workspace's supervisor decides and
    /// stops.
    pub async fn on_revoked(&self, creds: &HashSet<CredId>) {
        for rt in self.iter() {
            rt.supervisor.creds_revoked(creds.clone()).await;
        }
    }

    /// The relay revoked this host: every running OpenCode stops; returns once they have.
    pub async fn on_host_killed(&self) {
        for rt in self.iter() {
            rt.supervisor.host_killed().await;
        }
    }

    /// Stops every OpenCode (in parallel, bounded) and ends the supervisors.
    pub async fn shutdown(&self) {
        let stops = self.entries.values().map(|w| {
            let w = Arc::clone(w);
            async move {
                let info = w.supervisor.shutdown().await;
                tracing::info!(workspace = %info.workspace, state = ?info.state, "OpenCode stopped for shutdown");
            }
        });
        let all = join_all(stops);
        if tokio::time::timeout(SHUTDOWN_BOUND, all).await.is_err() {
            tracing::warn!(bound = ?SHUTDOWN_BOUND, "some OpenCode processes did not stop in time");
        }
        self.cancel.cancel();
    }
}

/// Runs futures concurrently and waits for all (a tiny `join_all` on a `JoinSet`).
async fn join_all<F>(futs: impl Iterator<Item = F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}
