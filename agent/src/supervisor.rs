//! One supervisor per workspace: an actor that owns that workspace's `opencode serve`, feeds
//! what happens into the pure [`state::Machine`], and carries out the actions it returns
//! (spawn, timers, health probe, stop, kill, publish). Operations talk to it through a
//! [`SupervisorHandle`]. It owns every stop of its OpenCode and the reason: operators', the
//! idle timer's, and the launch lease's (it sleeps until the lease's next check on tokio's
//! clock, and revocation notices reach it as commands; see `crate::lease`).
//!
//! Over 600 lines: the handle, the actor's loop and carrying out the machine's actions are one
//! protocol and read together; the lease's side is in `supervisor/lease_stop.rs`.

mod activity;
pub mod keeper;
mod lease_stop;
pub mod leftovers;
pub mod process;
mod reader;
pub mod state;
pub mod statefile;

use crate::config::{OpencodeConfig, Workspace};
use crate::hub::EventHub;
use crate::opencode::binary::Search;
use crate::opencode::client::OpencodeClient;
use crate::opencode::launch;
pub use activity::Activity;
use process::{ProcessEvent, Running};
use proto::event::Event;
use proto::ops::{OpencodeInfo, OpencodeState};
use state::{Action, Input, Machine};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// The supervisor's published state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// As operators see it.
    pub info: OpencodeInfo,
    /// A client for the running server, when ready.
    pub client: Option<OpencodeClient>,
    /// OpenCode's pid while a process exists.
    pub pid: Option<u32>,
}

/// Why OpenCode could not be made ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Start failed or gave up after crashes (operator-facing text).
    #[error("{message}")]
    Failed {
        /// What went wrong, with OpenCode's last output.
        message: String,
    },
    /// Not ready within the bound.
    #[error("OpenCode did not become ready within {after:?}")]
    Timeout {
        /// The bound.
        after: Duration,
    },
    /// It was stopped while the caller waited.
    #[error("OpenCode was stopped while starting")]
    Stopped,
    /// The supervisor is gone (the agent is shutting down).
    #[error("the agent is shutting down")]
    ShuttingDown,
}

type StartReply = oneshot::Sender<Result<OpencodeClient, StartError>>;

enum Command {
    Start(Option<StartReply>),
    Stop(oneshot::Sender<OpencodeInfo>),
    Shutdown(oneshot::Sender<OpencodeInfo>),
    /// The relay reported these credentials revoked (launch leases).
    CredsRevoked(
        std::collections::HashSet<proto::ids::CredId>,
        oneshot::Sender<OpencodeInfo>,
    ),
    /// The relay revoked this host (kill switch).
    HostKilled(oneshot::Sender<OpencodeInfo>),
    /// A supervision drill: the actor panics (see [`SupervisorHandle::panic_now`]).
    Panic,
}

/// What a supervisor needs.
#[derive(Debug, Clone)]
pub struct SupervisorDeps {
    /// The workspace.
    pub workspace: Workspace,
    /// OpenCode settings.
    pub config: Arc<OpencodeConfig>,
    /// The agent's state folder.
    pub state_dir: PathBuf,
    /// Where events go.
    pub hub: Arc<EventHub>,
    /// The agent's state file (running children, for re-adoption after a restart).
    pub registry: Arc<statefile::Registry>,
    /// Standing permission grants: matching requests are answered "once" on the granter's
    /// behalf; they end when a new launch is read.
    pub grants: Arc<crate::grants::Grants>,
    /// The launch leases (this workspace's is checked by the actor).
    pub leases: Arc<crate::lease::Leases>,
    /// The applied relay templates (this workspace's is merged into each launch's config).
    pub templates: Arc<crate::template::AppliedTemplates>,
    /// A workspace added from a folder beneath a root: every launch first checks that its
    /// folder is still the real folder directly in that root (the root's OpenCode could have
    /// swapped in a link since the last admitted request).
    pub added: bool,
}

/// The handle operations use.
#[derive(Debug, Clone)]
pub struct SupervisorHandle {
    commands: mpsc::UnboundedSender<Command>,
    snapshot: watch::Receiver<Snapshot>,
    activity: Arc<Activity>,
    ready_timeout: Duration,
}

impl SupervisorHandle {
    /// Starts the actor (OpenCode itself starts on demand).
    pub fn spawn(deps: SupervisorDeps) -> Self {
        let machine = Machine::new(deps.workspace.name.clone(), deps.config.ready_timeout);
        let (snapshot_tx, snapshot) = watch::channel(Snapshot {
            info: machine.info(),
            client: None,
            pid: None,
        });
        // Unbounded, yet no peer can make them grow: every command's sender waits for its
        // answer (operations, bounded by the relay's stream slots per host; the link's one
        // revocation worker), and a launch sends a handful of process events (ready line,
        // attached, exited), never OpenCode's output.
        let (commands, rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let activity = Arc::new(Activity::new());
        let ready_timeout = deps.config.ready_timeout;
        let adopt = deps.registry.take_candidate(&deps.workspace.name);
        let actor = Actor {
            adopt,
            machine,
            deps,
            activity: Arc::clone(&activity),
            snapshot_tx,
            events_tx,
            launches: 0,
            current: None,
            ready_deadline: None,
            backoff_deadline: None,
            warn_plan: None,
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            shutting_down: false,
            abort_before_stop: false,
            lease_stop: None,
        };
        tokio::spawn(actor.run(rx, events_rx));
        Self {
            commands,
            snapshot,
            activity,
            ready_timeout,
        }
    }

    /// The current state.
    pub fn info(&self) -> OpencodeInfo {
        self.snapshot.borrow().info.clone()
    }

    /// The full published state.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Watches state changes.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Marks the workspace as used (postpones the idle stop).
    pub fn touch(&self) {
        self.activity.touch();
    }

    /// The client, if OpenCode is ready now (never starts it).
    pub fn client_if_ready(&self) -> Option<OpencodeClient> {
        let s = self.snapshot.borrow();
        (s.info.state == OpencodeState::Ready)
            .then(|| s.client.clone())
            .flatten()
    }

    /// Starts OpenCode if needed and waits until it is ready, bounded by `ready_timeout`.
    ///
    /// # Errors
    /// [`StartError`] says why it is not ready.
    pub async fn ensure_ready(&self) -> Result<OpencodeClient, StartError> {
        self.touch();
        if let Some(c) = self.client_if_ready() {
            return Ok(c);
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Start(Some(tx)))
            .map_err(|_| StartError::ShuttingDown)?;
        // Generous: a launch may crash and be restarted once within the wait.
        let bound = self.ready_timeout.saturating_mul(2);
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StartError::ShuttingDown),
            Err(_) => Err(StartError::Timeout { after: bound }),
        }
    }

    /// Asks for a start without waiting.
    pub fn start(&self) {
        let _ = self.commands.send(Command::Start(None));
    }

    /// Stops OpenCode and waits until it and its tool processes are gone.
    pub async fn stop(&self) -> OpencodeInfo {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_err() {
            return self.info();
        }
        rx.await.unwrap_or_else(|_| self.info())
    }

    /// Stops OpenCode and ends the actor.
    pub async fn shutdown(&self) -> OpencodeInfo {
        self.ask(Command::Shutdown).await
    }

    async fn ask(
        &self,
        cmd: impl FnOnce(oneshot::Sender<OpencodeInfo>) -> Command,
    ) -> OpencodeInfo {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(cmd(tx)).is_err() {
            return self.info();
        }
        rx.await.unwrap_or_else(|_| self.info())
    }
}

struct Actor {
    /// A child of an earlier run to take over instead of the first spawn.
    adopt: Option<statefile::ChildRecord>,
    machine: Machine,
    deps: SupervisorDeps,
    activity: Arc<Activity>,
    snapshot_tx: watch::Sender<Snapshot>,
    events_tx: process::EventTx,
    launches: u64,
    current: Option<Running>,
    ready_deadline: Option<Instant>,
    backoff_deadline: Option<Instant>,
    /// In `[sandbox] mode = "warn"`: the current launch's rules, checked against tool calls.
    warn_plan: Option<Arc<crate::sandbox::SandboxPlan>>,
    start_waiters: Vec<StartReply>,
    stop_waiters: Vec<oneshot::Sender<OpencodeInfo>>,
    shutting_down: bool,
    /// The next `Action::Stop` aborts running turns first (`Action::AbortTurns`).
    abort_before_stop: bool,
    /// The reason of a lease stop under way, logged once it is done.
    lease_stop: Option<String>,
}

async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Actor {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::UnboundedReceiver<(u64, ProcessEvent)>,
    ) {
        if let Some(c) = &self.adopt {
            tracing::info!(workspace = %self.deps.workspace.name, pid = c.pid, port = c.port, "re-adopting OpenCode left running by an earlier run of the agent");
            self.feed(Input::StartRequested).await;
        }
        loop {
            let state = self.machine.state();
            let ready_at = self
                .ready_deadline
                .filter(|_| state == OpencodeState::Starting);
            let backoff_at = self
                .backoff_deadline
                .filter(|_| state == OpencodeState::Backoff);
            let idle_at = self
                .deps
                .config
                .idle_stop
                .filter(|_| state == OpencodeState::Ready)
                .map(|d| self.activity.last() + d);
            // Renewals move the lease's end without waking the actor: the check re-reads it.
            let lease_at = (state == OpencodeState::Ready).then(|| {
                self.deps
                    .leases
                    .next_check(&self.deps.workspace.name, Instant::now())
            });
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => {
                        self.shutting_down = true;
                        self.feed(Input::StopRequested).await;
                    }
                },
                Some((launch, ev)) = events.recv() => self.on_process_event(launch, ev).await,
                () = at(ready_at) => {
                    self.ready_deadline = None;
                    self.feed(Input::ReadyTimeout).await;
                }
                () = at(backoff_at) => {
                    self.backoff_deadline = None;
                    self.feed(Input::BackoffElapsed).await;
                }
                () = at(lease_at) => self.check_lease().await,
                () = at(idle_at) => {
                    // Activity may have moved the deadline since the sleep began.
                    if let Some(idle) = self.deps.config.idle_stop
                        && self.activity.last().elapsed() >= idle
                    {
                        tracing::info!(workspace = %self.deps.workspace.name, ?idle, "stopping idle OpenCode");
                        self.feed(Input::IdleTimeout).await;
                    }
                }
            }
            if self.shutting_down
                && matches!(
                    self.machine.state(),
                    OpencodeState::Stopped | OpencodeState::Failed
                )
            {
                self.settle();
                return;
            }
        }
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Start(reply) => {
                if self.shutting_down {
                    if let Some(r) = reply {
                        let _ = r.send(Err(StartError::ShuttingDown));
                    }
                    return;
                }
                if let Some(r) = reply {
                    self.start_waiters.push(r);
                }
                self.feed(Input::StartRequested).await;
            }
            Command::Stop(reply) => {
                self.stop_waiters.push(reply);
                self.feed(Input::StopRequested).await;
            }
            Command::Shutdown(reply) => {
                self.shutting_down = true;
                self.stop_waiters.push(reply);
                self.feed(Input::StopRequested).await;
            }
            Command::CredsRevoked(creds, reply) => self.on_creds_revoked(&creds, reply).await,
            Command::HostKilled(reply) => self.on_host_killed(reply).await,
            Command::Panic => panic!(
                "supervision drill: the supervisor of workspace {} was made to panic",
                self.deps.workspace.name
            ),
        }
    }

    async fn on_process_event(&mut self, launch: u64, ev: ProcessEvent) {
        if self.current.as_ref().map(|r| r.launch) != Some(launch) {
            return;
        }
        match ev {
            ProcessEvent::ReadyLine { port } => {
                tracing::debug!(workspace = %self.deps.workspace.name, ?port, "OpenCode is listening");
                self.feed(Input::ReadyLine).await;
            }
            ProcessEvent::Attached { version } => {
                // The idle period counts from readiness, not from the request that started it.
                self.activity.touch();
                self.feed(Input::HealthOk { version }).await;
            }
            ProcessEvent::Exited {
                status,
                stderr_tail,
            } => {
                if let Some(r) = self.current.take() {
                    r.token.cancel();
                    self.deps
                        .registry
                        .set_child(&self.deps.workspace.name, None);
                    tracing::info!(workspace = %self.deps.workspace.name, pid = r.pid, %status, "OpenCode exited");
                }
                self.feed(Input::Exited {
                    status,
                    stderr_tail,
                })
                .await;
            }
        }
    }

    /// Feeds an input and everything it leads to, then publishes the state.
    async fn feed(&mut self, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let actions = self.machine.handle(input, Instant::now());
            for action in actions {
                if let Some(next) = self.execute(action).await {
                    queue.push_back(next);
                }
            }
        }
        self.settle();
    }

    async fn execute(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::Spawn => Some(self.spawn()),
            Action::ArmReadyTimer(d) => {
                self.ready_deadline = Some(Instant::now() + d);
                None
            }
            Action::CheckHealth => {
                if let Some(r) = &self.current {
                    tokio::spawn(reader::run(
                        r.client.clone(),
                        Arc::clone(&self.deps.hub),
                        Arc::clone(&self.deps.grants),
                        Arc::clone(&self.activity),
                        self.events_tx.clone(),
                        r.launch,
                        r.token.clone(),
                        self.warn_plan.clone(),
                    ));
                }
                None
            }
            Action::ScheduleBackoff(d) => {
                tracing::warn!(workspace = %self.deps.workspace.name, delay = ?d, "OpenCode crashed; restarting after a delay");
                self.backoff_deadline = Some(Instant::now() + d);
                None
            }
            Action::AbortTurns => {
                self.abort_before_stop = true;
                None
            }
            Action::Stop { dispose } => match &self.current {
                Some(r) => {
                    let r = r.clone();
                    let abort = std::mem::take(&mut self.abort_before_stop);
                    let ws = self.deps.workspace.name.clone();
                    tokio::spawn(async move {
                        if abort {
                            crate::lease::abort_running_turns(&r.client, &ws).await;
                        }
                        r.stop(dispose).await;
                    });
                    None
                }
                None => Some(Input::Exited {
                    status: "not running".into(),
                    stderr_tail: Vec::new(),
                }),
            },
            Action::Kill => {
                if let Some(r) = &self.current {
                    let r = r.clone();
                    tokio::spawn(async move { r.kill().await });
                }
                None
            }
            Action::Emit(info) => {
                tracing::info!(workspace = %info.workspace, state = ?info.state, restarts = info.restarts, "OpenCode state");
                // A stop is done once the process is gone, even if a start queued meanwhile
                // begins at once.
                if matches!(info.state, OpencodeState::Stopped | OpencodeState::Failed) {
                    if let Some(reason) = self.lease_stop.take() {
                        tracing::warn!(workspace = %info.workspace, %reason, "leased OpenCode stopped");
                    }
                    // Publish the stopped state (no pid, no client) before answering, so a
                    // caller that reads the snapshot after its stop returns never sees the old
                    // process.
                    self.snapshot_tx.send_replace(Snapshot {
                        info: info.clone(),
                        client: None,
                        pid: self.current.as_ref().map(|r| r.pid),
                    });
                    for w in self.stop_waiters.drain(..) {
                        let _ = w.send(info.clone());
                    }
                }
                self.deps.hub.publish(Event::Opencode { info });
                None
            }
        }
    }

    /// Spawns a launch; the input is `Spawned` or `SpawnFailed`.
    fn spawn(&mut self) -> Input {
        if let Some(child) = self.adopt.take() {
            self.launches += 1;
            let r = process::adopt(
                &child,
                &self.deps.workspace.root,
                self.launches,
                self.events_tx.clone(),
            );
            let pid = r.pid;
            self.current = Some(r);
            // Recorded again: the new record carries this run's view (same child).
            self.deps
                .registry
                .set_child(&self.deps.workspace.name, Some(child));
            return Input::Spawned { pid };
        }
        let failed = |error: String| Input::SpawnFailed { error };
        if self.deps.added && !crate::added_workspaces::still_in_place(&self.deps.workspace.root) {
            tracing::error!(workspace = %self.deps.workspace.name, root = %self.deps.workspace.root.display(), "OpenCode not started: the added workspace's folder is no longer a real folder directly in its root");
            return failed(format!(
                "OpenCode not started: folder {} is no longer a real folder directly in its root \
                 (a link was swapped in?); put the folder back, or remove the workspace and add it again",
                self.deps.workspace.root.display()
            ));
        }
        let sandbox = crate::sandbox::info(&self.deps.workspace.sandbox);
        if sandbox.state == "refused" {
            tracing::error!(workspace = %self.deps.workspace.name, "{}", sandbox.detail);
            return failed(format!(
                "sandbox {}; use a kernel with Landlock, or set [sandbox] mode = \"warn\" or \"off\" in agent.toml",
                sandbox.detail
            ));
        }
        // Never silently without the sandbox (see keeper::launcher).
        if let Err(e) = keeper::launcher(self.deps.workspace.sandbox.mode) {
            tracing::error!(workspace = %self.deps.workspace.name, "{e}");
            return failed(e.to_string());
        }
        let binary = match Search::from_env(self.deps.config.binary.clone()).resolve() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(workspace = %self.deps.workspace.name, error = %e, detail = ?e, "cannot start OpenCode");
                return failed(e.to_string());
            }
        };
        let secrets = launch::random_hex().map_err(|e| e.to_string());
        let marker = launch::random_hex().map_err(|e| e.to_string());
        let port = launch::free_port().map_err(|e| e.to_string());
        let (password, marker, port) = match (secrets, marker, port) {
            (Ok(p), Ok(m), Ok(port)) => (p, m[..32].to_owned(), port),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::error!(error = %e, "cannot prepare an OpenCode launch");
                return failed("the agent cannot prepare an OpenCode launch; see its log".into());
            }
        };
        let template = self.usable_template();
        let plan = launch::plan(
            &binary,
            &self.deps.config,
            &self.deps.workspace,
            &self.deps.state_dir,
            port,
            password,
            marker,
            template.as_ref().map(|t| &t.content),
        );
        self.warn_plan = (plan.sandbox.mode == crate::sandbox::Mode::Warn).then(|| {
            tracing::warn!(workspace = %self.deps.workspace.name, rules = ?plan.sandbox, "sandbox (warn): OpenCode runs without the kernel sandbox; these rules would apply");
            Arc::new(plan.sandbox.clone())
        });
        if let Err(e) = launch::prepare(&plan) {
            tracing::error!(dir = %plan.dirs.base.display(), error = %e, "cannot prepare OpenCode's state folder");
            return failed("the agent cannot write OpenCode's state folder; see its log".into());
        }
        self.launches += 1;
        match process::spawn(&plan, self.launches, self.events_tx.clone()) {
            Ok(r) => {
                tracing::info!(workspace = %self.deps.workspace.name, pid = r.pid, port, binary = %binary.display(), "OpenCode spawned");
                let pid = r.pid;
                let raw = i32::try_from(pid).unwrap_or(0);
                self.deps.registry.set_child(
                    &self.deps.workspace.name,
                    Some(statefile::ChildRecord {
                        pid: raw,
                        start_time: leftovers::start_time(raw).unwrap_or(0),
                        port,
                        password: plan.password.clone(),
                        marker: plan.marker.clone(),
                        started_ms: std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                        lease: None,
                    }),
                );
                self.current = Some(r);
                Input::Spawned { pid }
            }
            Err(e) => {
                tracing::error!(binary = %binary.display(), error = %e, "cannot spawn OpenCode");
                failed(format!(
                    "cannot run OpenCode ({e}): run scripts/install-opencode.sh or set [opencode] binary"
                ))
            }
        }
    }

    /// The applied template, if it still passes the host's limits for this workspace now (its
    /// permissions may be stricter than when it was applied); one that does not is left out,
    /// with a warning and a line in `last_error`.
    fn usable_template(&mut self) -> Option<proto::template::Template> {
        let t = self.deps.templates.get(&self.deps.workspace.name)?;
        let limits = crate::template::HostLimits {
            policy: self.deps.templates.policy(),
            allowed_models: &self.deps.config.allowed_models,
            permissions: &self.deps.workspace.permissions,
        };
        match crate::template::check(&t, &limits) {
            Ok(()) => Some(t),
            Err(e) => {
                tracing::warn!(workspace = %self.deps.workspace.name, error = %e, "the applied template is not used");
                self.machine.note(format!(
                    "template {} v{} is not used: {e}",
                    t.id.name, t.id.version
                ));
                None
            }
        }
    }

    /// Publishes the state and answers waiters it settles.
    fn settle(&mut self) {
        let info = self.machine.info();
        let ready = info.state == OpencodeState::Ready;
        let client = self
            .current
            .as_ref()
            .filter(|_| ready)
            .map(|r| r.client.clone());
        self.snapshot_tx.send_replace(Snapshot {
            info: info.clone(),
            client: client.clone(),
            pid: self.current.as_ref().map(|r| r.pid),
        });
        match info.state {
            OpencodeState::Ready => {
                if let Some(c) = client {
                    for w in self.start_waiters.drain(..) {
                        let _ = w.send(Ok(c.clone()));
                    }
                }
            }
            OpencodeState::Failed => {
                let message = info
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "OpenCode failed to start".into());
                for w in self.start_waiters.drain(..) {
                    let _ = w.send(Err(StartError::Failed {
                        message: message.clone(),
                    }));
                }
                for w in self.stop_waiters.drain(..) {
                    let _ = w.send(info.clone());
                }
            }
            OpencodeState::Stopped => {
                for w in self.start_waiters.drain(..) {
                    let _ = w.send(Err(StartError::Stopped));
                }
                for w in self.stop_waiters.drain(..) {
                    let _ = w.send(info.clone());
                }
            }
            OpencodeState::Starting | OpencodeState::Backoff | OpencodeState::Stopping => {}
        }
    }
}
