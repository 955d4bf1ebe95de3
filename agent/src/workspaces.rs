//! The workspaces at run time: for each, its event hub, its OpenCode supervisor and the small
//! Over 600 lines because it is the one owner of every workspace runtime (configured, added, removed) and their shared settings; the zero-trust state added two accessors.
//! records that make retries safe. The configured ones are built at start; workspaces added
//! from a root's subfolders ([`added`]) join and leave at run time (readers take a cheap
//! snapshot under a read lock; every change is announced on [`Workspaces::changes`]).
//! `main.rs` and the operations layer share it.

pub use crate::added_workspaces as added;
pub mod candidates;
mod root_check;

use crate::config::{OpencodeConfig, Workspace};
use crate::hub::EventHub;
use crate::idempotency::{Bounded, MAX_ANSWERED, PromptRecord};
use crate::supervisor::{SupervisorDeps, SupervisorHandle, leftovers};
use added::{AddError, AddedRecord};
use parking_lot::{Mutex, RwLock};
use proto::ids::CredId;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
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
    /// For a workspace added from a subfolder: the root workspace and the folder.
    pub added: Option<AddedRecord>,
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

/// What [`Workspaces::start`] sets up.
#[derive(Debug)]
pub struct Setup<'a> {
    /// The configured workspaces.
    pub workspaces: &'a [Workspace],
    /// OpenCode settings.
    pub config: OpencodeConfig,
    /// The agent's state directory.
    pub state_dir: &'a Path,
    /// The host owner's limits.
    pub policy: crate::policy::Policy,
    /// Launch lease length.
    pub lease: Duration,
    /// The `[git]` settings.
    pub git: crate::git::policy::GitSettings,
    /// The configured workspaces whose subfolders may become workspaces.
    pub subworkspace_roots: Vec<String>,
}

/// All workspaces of this host.
#[derive(Debug)]
pub struct Workspaces {
    entries: RwLock<BTreeMap<String, Arc<WorkspaceRuntime>>>,
    config: Arc<OpencodeConfig>,
    cancel: CancellationToken,
    /// The host owner's limits, checked on every forwarded stream.
    policy: crate::policy::Policy,
    /// Launch leases (JIT binding of each OpenCode launch to a credential).
    leases: Arc<crate::lease::Leases>,
    /// The host's `[git]` settings (clone URL policy and limits).
    git: crate::git::policy::GitSettings,
    /// The relay template each workspace runs.
    templates: Arc<crate::template::AppliedTemplates>,
    /// What a workspace added later needs (its launches as recorded: markers and ports, for
    /// `port_list`, too).
    state_dir: PathBuf,
    registry: Arc<crate::supervisor::statefile::Registry>,
    subworkspace_roots: Vec<String>,
    /// The added workspaces' records (restored ones and those whose root is gone now), held
    /// while a change is made, so changes are one at a time.
    records: tokio::sync::Mutex<Vec<AddedRecord>>,
    /// Bumped after every added or removed workspace.
    changes: tokio::sync::watch::Sender<u64>,
    /// The `[forward]` rules and the forwarded connections open now.
    forwarding: crate::forward::Forwarding,
    /// Zero-trust hosts' trust state (set once at start; `None`: relay-trusted).
    trust: std::sync::OnceLock<Arc<crate::trust::HostTrust>>,
    /// Zero-trust hosts' end-to-end channels and queued prompts served.
    e2e: crate::e2e_state::E2eState,
    /// What the host's own user did at the desk, waiting for a link to tell the relay.
    local_notices: crate::local_notices::LocalNotices,
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

    /// Sets up every workspace (OpenCode itself starts on demand) and the orphan reaper; no
    /// root allows subworkspaces.
    pub fn spawn_with(
        workspaces: &[Workspace],
        config: OpencodeConfig,
        state_dir: &Path,
        policy: crate::policy::Policy,
        lease: std::time::Duration,
        git: crate::git::policy::GitSettings,
    ) -> Arc<Self> {
        Self::start(Setup {
            workspaces,
            config,
            state_dir,
            policy,
            lease,
            git,
            subworkspace_roots: Vec::new(),
        })
    }

    /// Sets up every configured workspace and the added ones recorded in the state directory
    /// (OpenCode itself starts on demand), and the orphan reaper.
    pub fn start(setup: Setup<'_>) -> Arc<Self> {
        let Setup {
            workspaces,
            config,
            state_dir,
            policy,
            lease,
            git,
            subworkspace_roots,
        } = setup;
        let records = added::load(state_dir);
        let mut all: Vec<(Workspace, Option<AddedRecord>)> =
            workspaces.iter().map(|w| (w.clone(), None)).collect();
        for r in &records {
            match restored(workspaces, &subworkspace_roots, &all, r) {
                Ok(w) => all.push((w, Some(r.clone()))),
                Err(why) => {
                    tracing::warn!(workspace = %r.name, root = %r.parent, folder = %r.folder, %why, "an added workspace is not restored (kept on record)");
                }
            }
        }
        // An earlier run killed without a clean stop leaves OpenCode (and its tools) running
        // unsupervised; they hold memory and the workspaces' databases.
        // Children of an earlier run that still run are re-adopted (state file); only the
        // rest are strays.
        let names: Vec<&str> = all.iter().map(|(w, _)| w.name.as_str()).collect();
        let registry = crate::supervisor::statefile::Registry::load(state_dir, &names);
        let stale = leftovers::stale_launches(state_dir);
        if !stale.is_empty() {
            let killed = leftovers::kill(&stale);
            tracing::warn!(killed, pids = ?stale.iter().map(|p| p.pid).collect::<Vec<_>>(), "killed OpenCode processes left by an earlier run of the agent");
        }
        for (w, _) in &all {
            crate::sandbox::announce(&w.name, &w.sandbox);
        }
        let every: Vec<Workspace> = all.iter().map(|(w, _)| w.clone()).collect();
        let templates = Arc::new(crate::template::AppliedTemplates::load(
            state_dir,
            &every,
            policy.config().templates.clone(),
            &config,
        ));
        let config = Arc::new(config);
        let leases = Arc::new(crate::lease::Leases::new(lease));
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
        let me = Self {
            entries: RwLock::new(BTreeMap::new()),
            config,
            cancel,
            policy,
            leases,
            git,
            templates,
            state_dir: state_dir.to_owned(),
            registry,
            forwarding: crate::forward::Forwarding::default(),
            trust: std::sync::OnceLock::new(),
            e2e: crate::e2e_state::E2eState::load(state_dir, cm_client::time::now_ms()),
            local_notices: crate::local_notices::LocalNotices::default(),
            subworkspace_roots,
            records: tokio::sync::Mutex::new(records),
            changes: tokio::sync::watch::Sender::new(0),
        };
        {
            let mut entries = me.entries.write();
            for (w, record) in all {
                let rt = me.runtime(w, record);
                entries.insert(rt.workspace.name.clone(), rt);
            }
        }
        Arc::new(me)
    }

    /// A workspace's runtime: its hub, grants and supervisor.
    fn runtime(&self, w: Workspace, added: Option<AddedRecord>) -> Arc<WorkspaceRuntime> {
        let hub = Arc::new(self.registry.hub(&w.name));
        let grants = Arc::new(crate::grants::Grants::new(crate::policy::lock_path(
            &self.state_dir,
        )));
        let supervisor = SupervisorHandle::spawn(SupervisorDeps {
            workspace: w.clone(),
            config: Arc::clone(&self.config),
            state_dir: self.state_dir.clone(),
            hub: Arc::clone(&hub),
            registry: Arc::clone(&self.registry),
            grants: Arc::clone(&grants),
            leases: Arc::clone(&self.leases),
            templates: Arc::clone(&self.templates),
            added: added.is_some(),
        });
        Arc::new(WorkspaceRuntime {
            workspace: w,
            hub,
            supervisor,
            prompts: tokio::sync::Mutex::new(PromptRecord::default()),
            answered: Mutex::new(Bounded::new(MAX_ANSWERED)),
            grants,
            added,
        })
    }

    /// The relay template each workspace runs.
    pub fn templates(&self) -> &crate::template::AppliedTemplates {
        &self.templates
    }

    /// Bumped after every added or removed workspace (the link sends a heartbeat at once, so
    /// the relay's host list shows the names without waiting).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The configured workspaces whose immediate subfolders may become workspaces.
    pub fn subworkspace_roots(&self) -> &[String] {
        &self.subworkspace_roots
    }

    /// The candidates beneath `root` (a root that allows subworkspaces), or beneath every such
    /// root.
    pub fn candidates(
        &self,
        root: Option<&str>,
    ) -> Result<proto::workspace::WorkspaceCandidates, AddError> {
        let entries = self.entries.read().clone();
        let roots: Vec<(String, PathBuf)> = match root {
            Some(r) => {
                if !self.subworkspace_roots.iter().any(|n| n == r) {
                    return Err(AddError::NotAllowed { root: r.to_owned() });
                }
                entries
                    .get(r)
                    .map(|rt| vec![(r.to_owned(), rt.workspace.root.clone())])
                    .unwrap_or_default()
            }
            None => self
                .subworkspace_roots
                .iter()
                .filter_map(|n| {
                    entries
                        .get(n)
                        .map(|rt| (n.clone(), rt.workspace.root.clone()))
                })
                .collect(),
        };
        let taken = entries
            .values()
            .map(|rt| (rt.workspace.root.clone(), rt.workspace.name.clone()))
            .collect();
        Ok(candidates::list(&roots, &taken))
    }

    /// Makes `folder`, an immediate subfolder of workspace `root`'s folder, the workspace
    /// `name` (default: the folder's name), with `root`'s permissions and sandbox; recorded so
    /// it comes back after a restart.
    ///
    /// # Errors
    /// The root does not allow it; the folder is not a real immediate subfolder; the name is
    /// invalid or taken; the record cannot be written.
    pub async fn add(
        &self,
        root: &str,
        folder: &str,
        name: Option<&str>,
    ) -> Result<Arc<WorkspaceRuntime>, AddError> {
        let mut records = self.records.lock().await;
        if !self.subworkspace_roots.iter().any(|n| n == root) {
            return Err(AddError::NotAllowed {
                root: root.to_owned(),
            });
        }
        added::check_folder(folder)?;
        let name = name.unwrap_or(folder);
        if !proto::ids::is_valid_name(name) {
            return Err(AddError::BadName {
                name: name.chars().take(64).collect(),
            });
        }
        let parent = self.get(root).ok_or_else(|| AddError::NotAllowed {
            root: root.to_owned(),
        })?;
        let path = added::check_child(root, &parent.workspace.root, folder)?;
        if let Some(taken) = self.get(name) {
            return Err(AddError::Taken(format!(
                "a workspace named {} already exists on this host; choose another with --name",
                taken.workspace.name
            )));
        }
        if records.iter().any(|r| r.name == name) {
            return Err(AddError::Taken(format!(
                "the name {name} is kept for an added workspace whose root is not available now;                  choose another with --name"
            )));
        }
        if let Some(same) = self.iter().into_iter().find(|rt| rt.workspace.root == path) {
            return Err(AddError::Taken(format!(
                "folder {folder:?} already is workspace {}",
                same.workspace.name
            )));
        }
        if records.len() >= added::MAX_ADDED {
            return Err(AddError::TooMany);
        }
        let record = AddedRecord {
            name: name.to_owned(),
            parent: root.to_owned(),
            folder: folder.to_owned(),
        };
        let mut next = records.clone();
        next.push(record.clone());
        let state_dir = self.state_dir.clone();
        let to_save = next.clone();
        tokio::task::spawn_blocking(move || added::save(&state_dir, &to_save))
            .await
            .map_err(|e| AddError::Persist(std::io::Error::other(e.to_string())))?
            .map_err(AddError::Persist)?;
        *records = next;
        let w = Workspace {
            name: name.to_owned(),
            root: path,
            permissions: parent.workspace.permissions,
            sandbox: parent.workspace.sandbox.clone(),
        };
        crate::sandbox::announce(&w.name, &w.sandbox);
        let rt = self.runtime(w, Some(record));
        self.entries
            .write()
            .insert(name.to_owned(), Arc::clone(&rt));
        self.changes.send_modify(|n| *n += 1);
        tracing::info!(workspace = %name, root = %root, folder = %folder, "workspace added");
        Ok(rt)
    }

    /// Forgets the added workspace `name`: it leaves the list and its record, then its OpenCode
    /// stops. No file is touched.
    ///
    /// # Errors
    /// A configured workspace; the record cannot be written.
    pub async fn remove(&self, name: &str) -> Result<AddedRecord, AddError> {
        let mut records = self.records.lock().await;
        let Some(rt) = self.get(name) else {
            return Err(AddError::Taken(format!(
                "no workspace named {name} on this host"
            )));
        };
        let Some(record) = rt.added.clone() else {
            return Err(AddError::Configured {
                name: name.to_owned(),
            });
        };
        let next: Vec<AddedRecord> = records.iter().filter(|r| r.name != name).cloned().collect();
        // Its template was checked against this root's permissions: it must not pass to the
        // next workspace of that name.
        let templates = Arc::clone(&self.templates);
        let forget = name.to_owned();
        tokio::task::spawn_blocking(move || templates.forget(&forget))
            .await
            .map_err(|e| AddError::Persist(std::io::Error::other(e.to_string())))?
            .map_err(AddError::Persist)?;
        let state_dir = self.state_dir.clone();
        let to_save = next.clone();
        tokio::task::spawn_blocking(move || added::save(&state_dir, &to_save))
            .await
            .map_err(|e| AddError::Persist(std::io::Error::other(e.to_string())))?
            .map_err(AddError::Persist)?;
        *records = next;
        self.entries.write().remove(name);
        self.changes.send_modify(|n| *n += 1);
        let info = rt.supervisor.shutdown().await;
        tracing::info!(workspace = %name, state = ?info.state, "added workspace removed; its OpenCode stopped");
        Ok(record)
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

    /// The host's trust state when it verifies operators itself (zero-trust), else `None`.
    pub fn trust(&self) -> Option<&Arc<crate::trust::HostTrust>> {
        self.trust.get()
    }

    /// The end-to-end channels operators opened and the queued prompts served (zero-trust
    /// hosts).
    pub fn e2e(&self) -> &crate::e2e_state::E2eState {
        &self.e2e
    }

    /// Makes this host zero-trust (once, at start); a second call is ignored.
    pub fn set_trust(&self, trust: Arc<crate::trust::HostTrust>) {
        let _ = self.trust.set(trust);
    }

    /// The host owner's limits (`Policy::check` before serving any operation).
    pub fn policy(&self) -> &crate::policy::Policy {
        &self.policy
    }

    /// The launch leases.
    pub fn leases(&self) -> &crate::lease::Leases {
        &self.leases
    }

    /// Local actions (`cm-agent attach`) waiting for a link to report them to the relay.
    pub fn local_notices(&self) -> &crate::local_notices::LocalNotices {
        &self.local_notices
    }

    /// The running OpenCode of workspace `name` as recorded: its port and password.
    pub fn server_of(&self, name: &str) -> Option<(u16, String)> {
        let child = self.registry.children().remove(name)?;
        Some((child.port, child.password))
    }

    /// The workspace called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<WorkspaceRuntime>> {
        self.entries.read().get(name).cloned()
    }

    /// Every workspace now, by name.
    pub fn iter(&self) -> Vec<Arc<WorkspaceRuntime>> {
        self.entries.read().values().cloned().collect()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.read().keys().cloned().collect()
    }

    /// OpenCode settings.
    pub fn opencode_config(&self) -> &OpencodeConfig {
        &self.config
    }

    /// Resolves with a workspace's name when the supervisor of a workspace still listed has
    /// ended (a panic; or after [`Workspaces::shutdown`]); never while every supervisor runs.
    /// A removed workspace's supervisor ends without that.
    pub async fn supervisor_ended(&self) -> String {
        let mut changes = self.changes();
        loop {
            changes.borrow_and_update();
            let mut set = tokio::task::JoinSet::new();
            for rt in self.iter() {
                set.spawn(async move {
                    rt.supervisor.ended().await;
                    rt
                });
            }
            let ended = tokio::select! {
                ended = set.join_next() => ended,
                _ = changes.changed() => continue,
            };
            match ended {
                Some(Ok(rt)) => {
                    let name = rt.workspace.name.clone();
                    if self.get(&name).is_some_and(|now| Arc::ptr_eq(&now, &rt)) {
                        return name;
                    }
                }
                Some(Err(e)) => return format!("(unknown: {e})"),
                None => {
                    if changes.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
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
        let stops = self.iter().into_iter().map(|w| {
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

/// The workspace an added record stands for, when its root still allows subworkspaces and its
/// name is free (the folder itself may be gone: it is then reported unavailable).
fn restored(
    configured: &[Workspace],
    roots: &[String],
    so_far: &[(Workspace, Option<AddedRecord>)],
    r: &AddedRecord,
) -> Result<Workspace, String> {
    if !roots.contains(&r.parent) {
        return Err(format!(
            "workspace {} no longer allows subworkspaces",
            r.parent
        ));
    }
    let parent = configured
        .iter()
        .find(|w| w.name == r.parent)
        .ok_or_else(|| format!("workspace {} is no longer configured", r.parent))?;
    added::check_folder(&r.folder).map_err(|e| e.to_string())?;
    if !proto::ids::is_valid_name(&r.name) || so_far.iter().any(|(w, _)| w.name == r.name) {
        return Err("its name is invalid or now taken".into());
    }
    Ok(Workspace {
        name: r.name.clone(),
        root: parent.root.join(&r.folder),
        permissions: parent.permissions,
        sandbox: parent.sandbox.clone(),
    })
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
