//! All UI state of the full-screen app and the one pure function that changes it:
//! [`App::update`] takes an [`Event`] and returns [`Effect`]s for the runtime to execute.
//! No IO, no clock reads (time arrives in `Event::Tick`), no terminal or rendering types.
//!
//! Screens stack Hosts → Workspaces → Sessions → Session (→ Diff), with Admin beside them,
//! in `stack::Stack`; each level's view lives in its own submodule, owns its state, turns a
//! key into an `Outcome` with its own `update` (no IO) and takes its own replies; views survive
//! reconnects, which re-read what is shown and resume watches. `route` sends input to the
//! overlay (help, palette or question form, `overlay::Overlay`) first, then to the screen on
//! top; `App` acts on the outcome (other screens, requests, notices).

pub mod admin;
pub mod attention;
pub mod clone;
mod diff;
mod focus_signal;
pub mod folders;
mod hosts;
pub mod list;
pub mod model_picker;
pub mod notify_panel;
pub mod overlay;
pub mod palette;
pub mod ports;
pub mod prompt;
pub mod question;
mod read;
mod replies;
mod route;
mod send;
pub mod session;
mod session_manage;
mod sessions;
mod stack;
pub mod templates;
pub mod watch;
pub mod workspace_detail;
mod workspaces;

#[cfg(test)]
pub(crate) mod tests;

pub use diff::{DiffScope, DiffView};
pub use hosts::{CHROME_ROWS, HostsView};
pub use session::SessionView;
pub use sessions::{SessionRow, SessionsView};
pub use workspaces::WorkspacesView;

use crate::call::{Call, Request, Scope, StreamCall, StreamItem, StreamRequest};
use crate::effect::Effect;
use crate::event::{Event, NetEvent};
use crate::keymap::Keymap;
use crate::profile::Profile;
use attention::Attention;
use prompt::History;
use proto::ids::{ConnId, HostId};
use proto::rbac::Role;
use proto::text::RemoteText;
use stack::Stack;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use watch::WatchState;

/// Terminal size assumed until the first resize event.
const DEFAULT_SIZE: (u16, u16) = (80, 24);
/// How long a notice stays in the status area.
pub const NOTICE_MS: u64 = 6_000;

/// The relay connection as the user should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// An attempt is under way (at start, or after `r`).
    Connecting,
    /// Authenticated and watching hosts.
    Connected {
        /// The relay's id for the connection.
        conn_id: ConnId,
    },
    /// Lost; the next attempt starts at `retry_at_ms`.
    Reconnecting {
        /// Why the last attempt failed or the connection dropped.
        reason: String,
        /// Local wall clock of the next attempt, unix ms.
        retry_at_ms: u64,
    },
    /// Given up: retrying cannot help (credential refused). Terminal until the app restarts.
    Offline {
        /// What happened and what to run.
        reason: String,
        /// The relay revoked the login (rather than refusing it at login).
        revoked: bool,
    },
}

/// Which level of the screen stack is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    /// The relay's hosts.
    Hosts,
    /// One host's workspaces.
    Workspaces,
    /// One workspace's sessions.
    Sessions,
    /// One session's transcript and prompt.
    Session,
    /// The session's (or working tree's) diff.
    Diff,
    /// Relay administration (admins and owners).
    Admin,
}

/// A short message in the status area (an action's outcome, a refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The text: often holds a peer's words (an error message), so it is sanitized whole.
    pub text: RemoteText,
    /// Whether it reports a failure.
    pub error: bool,
    /// Local clock after which it is no longer shown.
    pub until_ms: u64,
}

/// The full-screen app's state.
#[derive(Debug, Clone)]
pub struct App {
    account: String,
    expires_at_ms: u64,
    now_ms: u64,
    conn: ConnState,
    rtt: Option<Duration>,
    /// The transport of the current connection (`None`: not told yet, or not connected).
    transport: Option<cm_client::transport::Transport>,
    width: u16,
    height: u16,
    /// The help, palette or question form over the screens, while open.
    overlay: Option<overlay::Overlay>,
    /// First row of the help shown (a short terminal scrolls it with j/k).
    help_top: usize,
    screen: Screen,
    /// The screen views, the hosts at the bottom.
    stack: Stack,
    attention: Attention,
    attention_open: bool,
    watches: BTreeMap<crate::call::WatchKey, WatchState>,
    roles: HashMap<HostId, Role>,
    /// Verified end to end or relay-trusted, per host (once a stream went there).
    modes: HashMap<HostId, crate::e2e_channels::HostMode>,
    /// Sessions seen working since their last idle (a finished turn is news for them).
    busy: HashSet<(crate::call::WatchKey, String)>,
    bell: bool,
    /// Something new needs attention during this update (rings once at its end).
    rang: bool,
    notice: Option<Notice>,
    next_id: u64,
    /// Random per run (from the runtime): makes idempotency keys unique across runs.
    key_seed: u64,
    history: History,
    /// The keys in effect (tui.toml overrides applied).
    keymap: Keymap,
    /// Relay profile names from tui.toml (for `:relay NAME`).
    relays: Vec<String>,
    /// The relay profile in use, if it came from tui.toml.
    relay: Option<String>,
    /// The clone form and the clone it started (kept while another overlay covers it).
    clone: Option<clone::CloneForm>,
    /// The templates panel and the apply it started.
    templates: Option<templates::TemplatesPanel>,
    /// When to tell the relay which session is on screen (notifications' presence).
    focus_signal: crate::notify_focus::FocusSignal,
    /// The relay's templates, as far as read.
    template_cache: templates::TemplateCache,
    /// The folders panel (kept when closed: its candidates say where clones may become
    /// workspaces).
    folders: Option<folders::FoldersPanel>,
    /// The ports panel (kept when closed, with its host).
    ports: Option<ports::PortsPanel>,
    /// The port forwards running or starting (they outlive the panel).
    forwards: Vec<ports::Forward>,
}

impl App {
    /// A fresh app for `profile`'s login, at local time `now_ms`.
    pub fn new(profile: &Profile, now_ms: u64) -> Self {
        Self {
            account: profile.account(),
            expires_at_ms: profile.expires_at_ms,
            now_ms,
            conn: ConnState::Connecting,
            rtt: None,
            transport: None,
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
            overlay: None,
            screen: Screen::Hosts,
            stack: Stack::default(),
            attention: Attention::default(),
            attention_open: false,
            help_top: 0,
            watches: BTreeMap::new(),
            roles: HashMap::new(),
            modes: HashMap::new(),
            busy: HashSet::new(),
            bell: true,
            rang: false,
            notice: None,
            next_id: 0,
            key_seed: now_ms,
            history: History::default(),
            keymap: Keymap::default(),
            relays: Vec::new(),
            relay: None,
            clone: None,
            templates: None,
            focus_signal: crate::notify_focus::FocusSignal::new(
                now_ms,
                crate::notify_focus::IDLE_AFTER_MS,
            ),
            template_cache: templates::TemplateCache::default(),
            folders: None,
            ports: None,
            forwards: Vec::new(),
        }
    }

    /// Uses `keymap` (the defaults with tui.toml's overrides).
    #[must_use]
    pub fn with_keymap(mut self, keymap: Keymap) -> Self {
        self.keymap = keymap;
        self
    }

    /// The relay profiles `:relay NAME` can switch to, and the one in use.
    #[must_use]
    pub fn with_relays(mut self, relays: Vec<String>, current: Option<String>) -> Self {
        self.relays = relays;
        self.relay = current;
        self
    }

    /// The keys in effect.
    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }

    /// Seeds idempotency keys with a random number (the runtime passes one per run).
    #[must_use]
    pub fn with_key_seed(mut self, seed: u64) -> Self {
        self.key_seed = seed;
        self
    }

    /// Nobody counts as watching a session after `idle` without a key press (the relay's
    /// notifications about it are then sent again).
    #[must_use]
    pub fn with_presence_idle(mut self, idle: Duration) -> Self {
        let ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        self.focus_signal = crate::notify_focus::FocusSignal::new(self.now_ms, ms);
        self
    }

    /// Turns the terminal bell on new attention on or off.
    #[must_use]
    pub fn with_bell(mut self, bell: bool) -> Self {
        self.bell = bell;
        self
    }

    /// Applies one event; returns what the runtime must do.
    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Key(key) => {
                self.focus_signal.presence.key(self.now_ms);
                self.on_key(key, &mut fx);
            }
            Event::FocusGained => self.on_terminal_focus(true, &mut fx),
            Event::FocusLost => self.on_terminal_focus(false, &mut fx),
            Event::Tick { now_ms } => {
                self.now_ms = now_ms;
                if self.notice.as_ref().is_some_and(|n| n.until_ms <= now_ms) {
                    self.notice = None;
                }
                self.watch_tick(&mut fx);
                self.ports_tick(&mut fx);
                self.focus_tick(&mut fx);
            }
            Event::Resize { width, height } => {
                self.width = width;
                self.height = height;
            }
            Event::Paste(text) => {
                self.focus_signal.presence.key(self.now_ms);
                self.on_paste(&text);
            }
            Event::Scroll { up } => {
                self.focus_signal.presence.activity(self.now_ms);
                self.on_scroll(up, &mut fx);
            }
            Event::Net(net) => self.on_net(net, &mut fx),
        }
        if let Some(view) = self.stack.session.as_mut() {
            view.sync_layout(self.width);
        }
        if std::mem::take(&mut self.rang) {
            if self.bell {
                fx.push(Effect::Bell);
            }
            if let Some(n) = self.attention.newest_notification() {
                fx.push(Effect::Notify(n));
            }
        }
        fx
    }

    /// Rows for the screen's main panel (all but the status bar and banners).
    pub fn main_height(&self) -> u16 {
        let banners = u16::from(self.problem().is_some()) + u16::from(self.notice().is_some());
        self.height.saturating_sub(1 + banners)
    }

    fn on_net(&mut self, event: NetEvent, fx: &mut Vec<Effect>) {
        match event {
            NetEvent::Connected { conn_id } => {
                self.conn = ConnState::Connected { conn_id };
                self.rtt = None;
                self.transport = None;
                self.refresh(fx);
            }
            NetEvent::Transport(t) => self.transport = Some(t),
            NetEvent::Hosts(list) => self.replace_hosts(list, fx),
            NetEvent::Disconnected { reason, retry_in } => {
                if matches!(self.conn, ConnState::Offline { .. }) {
                    return;
                }
                let wait = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
                self.conn = ConnState::Reconnecting {
                    reason,
                    retry_at_ms: self.now_ms.saturating_add(wait),
                };
                self.rtt = None;
                self.watches_closed();
                self.streams_lost(fx);
            }
            NetEvent::Pong { rtt } => {
                if matches!(self.conn, ConnState::Connected { .. }) {
                    self.rtt = Some(rtt);
                }
            }
            NetEvent::Fatal { message, revoked } => {
                self.conn = ConnState::Offline {
                    reason: message,
                    revoked,
                };
                self.rtt = None;
                self.watches_closed();
                self.streams_lost(fx);
            }
            NetEvent::Reply { request, result } => self.on_reply(request, result, fx),
            NetEvent::StreamItem { id, item } => self.on_stream_item(id, item, fx),
            NetEvent::StreamEnded { id, error } => {
                if !self.clone_item(id, clone::CloneItem::Ended(error.clone()), fx) {
                    self.apply_item(id, templates::ApplyItem::Ended(error), fx);
                }
            }
            NetEvent::WatchStarted { watch, next_seq } => {
                self.on_watch_started(&watch, next_seq, fx);
            }
            NetEvent::WatchFrame { watch, frame } => self.on_watch_frame(&watch, frame, fx),
            NetEvent::WatchEnded { watch, reason } => self.on_watch_ended(&watch, reason),
            NetEvent::Forward { id, news } => self.forward_news(id, news),
            NetEvent::Role { host, role } => {
                self.roles.insert(host, role);
            }
            NetEvent::HostMode { host, mode } => {
                self.modes.insert(host, mode);
            }
        }
    }

    /// After (re)connecting: re-read what the screens show, resume the watches, resend an
    /// unconfirmed prompt. The screens themselves stay where they are.
    fn refresh(&mut self, fx: &mut Vec<Effect>) {
        if let Some(host) = self.stack.workspaces.as_ref().map(|w| w.host.clone()) {
            self.request(Scope::host(&host), Call::WorkspaceList, fx);
        }
        if let Some(watch) = self.stack.sessions.as_ref().map(SessionsView::watch) {
            self.request(watch.scope(), Call::SessionList, fx);
            self.request(watch.scope(), Call::PermissionList, fx);
        }
        self.session_reconnected(fx);
        self.diff_reconnected(fx);
        self.notify_reconnected(fx);
        self.rewatch_all(fx);
    }

    /// Emits a request if connected; returns its id.
    fn request(&mut self, scope: Scope, call: Call, fx: &mut Vec<Effect>) -> Option<u64> {
        if !self.is_connected() {
            return None;
        }
        self.next_id += 1;
        fx.push(Effect::Request(Request {
            id: self.next_id,
            scope,
            call,
        }));
        Some(self.next_id)
    }

    /// Opens a stream if connected; returns its id (from the request ids' counter).
    fn stream(&mut self, scope: Scope, call: StreamCall, fx: &mut Vec<Effect>) -> Option<u64> {
        if !self.is_connected() {
            return None;
        }
        self.next_id += 1;
        fx.push(Effect::Stream(StreamRequest {
            id: self.next_id,
            scope,
            call,
        }));
        Some(self.next_id)
    }

    /// The connection ended: its streams ended with it (the host stops a clone whose
    /// operator is gone and removes its folder; an apply goes on without its operator).
    fn streams_lost(&mut self, fx: &mut Vec<Effect>) {
        self.forwards_lost();
        if let Some(id) = self.clone.as_ref().and_then(clone::CloneForm::running) {
            let e = crate::call::CallError::transport(
                "the relay connection was lost: the host stops the clone and removes its folder",
            );
            self.clone_item(id, clone::CloneItem::Ended(Some(e)), fx);
        }
        if let Some(id) = self
            .templates
            .as_ref()
            .filter(|p| p.applying())
            .and_then(|p| p.run.as_ref().map(|r| r.id))
        {
            let e = crate::call::CallError::transport(
                "the relay connection was lost before the end; the workspace list shows the \
                 template it runs once reconnected",
            );
            self.apply_item(id, templates::ApplyItem::Ended(Some(e)), fx);
        }
    }

    /// A frame of stream `id`, to the clone or the apply it belongs to.
    fn on_stream_item(&mut self, id: u64, item: StreamItem, fx: &mut Vec<Effect>) {
        match item {
            StreamItem::CloneStarted(s) => {
                self.clone_item(id, clone::CloneItem::Started(s.dir), fx);
            }
            StreamItem::Clone(e) => {
                self.clone_item(id, clone::CloneItem::Event(e), fx);
            }
            StreamItem::Applied(a) => {
                self.apply_item(id, templates::ApplyItem::Applied(a), fx);
            }
            StreamItem::Apply(e) => {
                self.apply_item(id, templates::ApplyItem::Event(e), fx);
            }
        }
    }

    /// A request the operator asked for: says so when it cannot go out.
    fn act(&mut self, scope: Scope, call: Call, fx: &mut Vec<Effect>) -> Option<u64> {
        let id = self.request(scope, call, fx);
        if id.is_none() {
            self.notify("not connected to the relay; try again once connected", true);
        }
        id
    }

    /// Shows a notice for a few seconds.
    fn notify(&mut self, text: impl Into<String>, error: bool) {
        self.notice = Some(Notice {
            text: RemoteText::new(&text.into()),
            error,
            until_ms: self.now_ms.saturating_add(NOTICE_MS),
        });
    }

    /// A fresh idempotency key: the run's seed and a counter.
    fn idempotency_key(&mut self) -> String {
        self.next_id += 1;
        format!("tui-{:016x}-{}", self.key_seed, self.next_id)
    }
}
