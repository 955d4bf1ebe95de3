//! All UI state of the full-screen app and the one pure function that changes it:
//! [`App::update`] takes an [`Event`] and returns [`Effect`]s for the runtime to execute.
//! No IO, no clock reads (time arrives in `Event::Tick`), no terminal or rendering types.
//!
//! Screens stack Hosts → Workspaces → Sessions → Session (→ Diff); each level's state lives in
//! its own submodule and survives reconnects, which re-read what is shown and resume watches.

pub mod admin;
pub mod attention;
mod diff;
mod hosts;
pub mod list;
pub mod palette;
pub mod prompt;
pub mod question;
mod replies;
pub mod session;
mod session_manage;
mod sessions;
pub mod transcript;
pub mod watch;
pub mod workspace_detail;
mod workspaces;

#[cfg(test)]
pub(crate) mod tests;

pub use diff::{DiffScope, DiffView};
pub use hosts::CHROME_ROWS;
pub use session::SessionView;
pub use sessions::SessionsView;
pub use workspaces::WorkspacesView;

use crate::action::Action;
use crate::call::{Call, Request, Scope};
use crate::effect::Effect;
use crate::event::{Event, KeyPress, NetEvent};
use crate::keymap::{Context, Keymap};
use crate::profile::Profile;
use attention::Attention;
use hosts::Hosts;
use list::ListNav;
use prompt::History;
use proto::ids::{ConnId, HostId};
use proto::rbac::Role;
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
    /// The text.
    pub text: String,
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
    /// `None` until the first list arrives ("loading" differs from "no hosts").
    hosts: Option<Hosts>,
    host_nav: ListNav,
    width: u16,
    height: u16,
    help: bool,
    screen: Screen,
    workspaces: Option<WorkspacesView>,
    sessions: Option<SessionsView>,
    session: Option<SessionView>,
    diff: Option<DiffView>,
    attention: Attention,
    attention_open: bool,
    watches: BTreeMap<crate::call::WatchKey, WatchState>,
    roles: HashMap<HostId, Role>,
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
    /// The `:` palette, while open.
    palette: Option<palette::Palette>,
    /// The question being answered, while its form is open.
    question: Option<question::QuestionForm>,
    /// The administration screen's state, once opened.
    admin: Option<admin::AdminView>,
    /// Relay profile names from tui.toml (for `:relay NAME`).
    relays: Vec<String>,
    /// The relay profile in use, if it came from tui.toml.
    relay: Option<String>,
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
            hosts: None,
            host_nav: ListNav::default(),
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
            help: false,
            screen: Screen::Hosts,
            workspaces: None,
            sessions: None,
            session: None,
            diff: None,
            attention: Attention::default(),
            attention_open: false,
            watches: BTreeMap::new(),
            roles: HashMap::new(),
            busy: HashSet::new(),
            bell: true,
            rang: false,
            notice: None,
            next_id: 0,
            key_seed: now_ms,
            history: History::default(),
            keymap: Keymap::default(),
            palette: None,
            question: None,
            admin: None,
            relays: Vec::new(),
            relay: None,
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
            Event::Key(key) => self.on_key(key, &mut fx),
            Event::Tick { now_ms } => {
                self.now_ms = now_ms;
                if self.notice.as_ref().is_some_and(|n| n.until_ms <= now_ms) {
                    self.notice = None;
                }
                self.watch_tick(&mut fx);
            }
            Event::Resize { width, height } => {
                self.width = width;
                self.height = height;
            }
            Event::Paste(text) => self.on_paste(&text),
            Event::Scroll { up } => self.on_scroll(up, &mut fx),
            Event::Net(net) => self.on_net(net, &mut fx),
        }
        if let Some(view) = self.session.as_mut() {
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

    /// Where keys go now.
    pub fn context(&self) -> Context {
        if self.help {
            Context::Help
        } else if self.palette.is_some() {
            Context::Palette
        } else if self.question.is_some() {
            Context::Question
        } else {
            self.screen_context()
        }
    }

    /// Where keys go under the help overlay (what the overlay describes).
    pub fn screen_context(&self) -> Context {
        if self.attention_open {
            return Context::Attention;
        }
        let typing = |nav: Option<&ListNav>| nav.is_some_and(ListNav::typing);
        match self.screen {
            Screen::Hosts if self.host_nav.typing() => Context::Filter,
            Screen::Hosts => Context::Hosts,
            Screen::Workspaces if typing(self.workspaces.as_ref().map(|w| &w.nav)) => {
                Context::Filter
            }
            Screen::Workspaces => Context::Workspaces,
            Screen::Sessions if typing(self.sessions.as_ref().map(|s| &s.nav)) => Context::Filter,
            Screen::Sessions => Context::Sessions,
            Screen::Session if self.session.as_ref().is_some_and(|s| s.focus) => Context::Prompt,
            Screen::Session => Context::Session,
            Screen::Diff => Context::Diff,
            Screen::Admin if self.admin.as_ref().is_some_and(|a| a.input.is_some()) => {
                Context::AdminInput
            }
            Screen::Admin => Context::Admin,
        }
    }

    fn on_key(&mut self, key: KeyPress, fx: &mut Vec<Effect>) {
        let context = self.context();
        let action = self.keymap.action_for(context, key);
        let typed = self.keymap.typed_char(context, key);
        match context {
            Context::Help => match action {
                Some(Action::ToggleHelp) => self.help = false,
                Some(Action::Quit) => fx.push(Effect::Quit),
                _ => {}
            },
            Context::Filter => match action {
                Some(Action::Quit) => fx.push(Effect::Quit),
                Some(a @ (Action::CursorUp | Action::CursorDown)) => self.move_selection(a),
                _ => self.edit_filter(action, typed),
            },
            Context::Prompt => self.prompt_key(action, typed, fx),
            Context::Palette => self.palette_key(action, typed, fx),
            Context::AdminInput => self.admin_input_key(action, typed, fx),
            Context::Question => {
                if let Some(action) = action {
                    self.question_action(action, fx);
                }
            }
            _ => {
                if let Some(action) = action {
                    self.on_action(context, action, fx);
                }
            }
        }
    }

    /// The mouse wheel scrolls what is under the keys: the transcript or diff by a few rows,
    /// a list or the attention panel by one row. Ignored under the help and the palette.
    fn on_scroll(&mut self, up: bool, fx: &mut Vec<Effect>) {
        let (context, notches) = match self.context() {
            Context::Help | Context::Palette | Context::Question | Context::AdminInput => return,
            Context::Prompt => (Context::Session, 3),
            Context::Filter => (self.list_context(), 1),
            c @ (Context::Session | Context::Diff) => (c, 3),
            c => (c, 1),
        };
        let action = if up {
            Action::SelectPrev
        } else {
            Action::SelectNext
        };
        for _ in 0..notches {
            self.on_action(context, action, fx);
        }
    }

    /// The list screen's own context (under its filter).
    fn list_context(&self) -> Context {
        match self.screen {
            Screen::Workspaces => Context::Workspaces,
            Screen::Sessions => Context::Sessions,
            _ => Context::Hosts,
        }
    }

    /// Pasted text goes into the prompt box (line breaks kept), or the first line into the
    /// filter, the palette or the admin input line.
    fn on_paste(&mut self, text: &str) {
        match self.context() {
            Context::Prompt => {
                if let Some(view) = self.session.as_mut() {
                    view.editor.paste(text);
                }
            }
            Context::Filter => {
                let line = text.lines().next().unwrap_or_default();
                for c in line.chars().filter(|c| !c.is_control()) {
                    self.edit_filter(None, Some(c));
                }
            }
            Context::Palette | Context::AdminInput => {
                // One line: a name, a filter, a confirmation (never a key press).
                let line: String = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                if let Some(p) = self.palette.as_mut() {
                    p.input.push_str(&line);
                    p.selected = 0;
                } else if let Some(i) = self.admin.as_mut().and_then(|a| a.input.as_mut()) {
                    i.text.push_str(&line);
                }
            }
            _ => {}
        }
    }

    fn on_action(&mut self, context: Context, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Quit => fx.push(Effect::Quit),
            Action::ToggleHelp => self.help = true,
            Action::OpenPalette => self.open_palette(),
            Action::OpenAdmin => self.open_admin(fx),
            Action::ToggleAttention => self.attention_open = !self.attention_open,
            Action::ToggleBell => {
                self.bell = !self.bell;
                let text = if self.bell { "bell on" } else { "bell off" };
                self.notify(text, false);
            }
            Action::Reconnect => {
                // After a fatal refusal the same credential would be refused again.
                if !matches!(self.conn, ConnState::Offline { .. }) {
                    self.conn = ConnState::Connecting;
                    self.rtt = None;
                    fx.push(Effect::Reconnect);
                }
            }
            _ => match context {
                Context::Hosts => self.hosts_action(action, fx),
                Context::Workspaces => self.workspaces_action(action, fx),
                Context::Sessions => self.sessions_action(action, fx),
                Context::Session => self.session_action(action, fx),
                Context::Diff => self.diff_action(action, fx),
                Context::Attention => self.attention_action(action, fx),
                Context::Admin => self.admin_action(action, fx),
                Context::Prompt
                | Context::Filter
                | Context::Help
                | Context::Palette
                | Context::Question
                | Context::AdminInput => {}
            },
        }
    }

    fn nav_mut(&mut self) -> Option<&mut ListNav> {
        match self.screen {
            Screen::Hosts => Some(&mut self.host_nav),
            Screen::Workspaces => self.workspaces.as_mut().map(|w| &mut w.nav),
            Screen::Sessions => self.sessions.as_mut().map(|s| &mut s.nav),
            Screen::Session | Screen::Diff | Screen::Admin => None,
        }
    }

    /// Moves the selection of the list on screen.
    fn move_selection(&mut self, action: Action) {
        let len = match self.screen {
            Screen::Hosts => self.visible_hosts().len(),
            Screen::Workspaces => self.workspaces.as_ref().map_or(0, |w| w.visible().len()),
            Screen::Sessions => self.sessions.as_ref().map_or(0, |s| s.visible().len()),
            Screen::Session | Screen::Diff | Screen::Admin => 0,
        };
        let page = self.list_page();
        if let Some(nav) = self.nav_mut() {
            nav.move_by(action, len, page);
        }
    }

    fn edit_filter(&mut self, action: Option<Action>, typed: Option<char>) {
        if let Some(nav) = self.nav_mut() {
            nav.edit(action, typed);
        }
    }

    /// Rows of a list page.
    fn list_page(&self) -> usize {
        usize::from(self.height.saturating_sub(CHROME_ROWS).max(1))
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
                self.refresh(fx);
            }
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
            }
            NetEvent::Reply { request, result } => self.on_reply(request, result, fx),
            NetEvent::WatchStarted { watch, next_seq } => {
                self.on_watch_started(&watch, next_seq, fx);
            }
            NetEvent::WatchFrame { watch, frame } => self.on_watch_frame(&watch, frame, fx),
            NetEvent::WatchEnded { watch, reason } => self.on_watch_ended(&watch, reason),
            NetEvent::Role { host, role } => {
                self.roles.insert(host, role);
            }
        }
    }

    /// After (re)connecting: re-read what the screens show, resume the watches, resend an
    /// unconfirmed prompt. The screens themselves stay where they are.
    fn refresh(&mut self, fx: &mut Vec<Effect>) {
        if let Some(host) = self.workspaces.as_ref().map(|w| w.host.clone()) {
            self.request(Scope::host(&host), Call::WorkspaceList, fx);
        }
        if let Some(watch) = self.sessions.as_ref().map(SessionsView::watch) {
            self.request(watch.scope(), Call::SessionList, fx);
            self.request(watch.scope(), Call::PermissionList, fx);
        }
        self.session_reconnected(fx);
        self.diff_reconnected(fx);
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
            text: text.into(),
            error,
            until_ms: self.now_ms.saturating_add(NOTICE_MS),
        });
    }

    /// A fresh idempotency key: the run's seed and a counter.
    fn idempotency_key(&mut self) -> String {
        self.next_id += 1;
        format!("tui-{:016x}-{}", self.key_seed, self.next_id)
    }

    /// Whether the relay connection is up.
    pub fn is_connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }

    /// `user@relay`.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The local clock as of the last tick, unix ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Milliseconds until the credential expires (0 once it has).
    pub fn login_left_ms(&self) -> u64 {
        self.expires_at_ms.saturating_sub(self.now_ms)
    }

    /// The connection state.
    pub fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// The last ping round trip on the current connection.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Which screen is shown.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    /// Whether the help overlay is shown.
    pub fn help_visible(&self) -> bool {
        self.help
    }

    /// Whether the attention panel is open.
    pub fn attention_open(&self) -> bool {
        self.attention_open
    }

    /// The attention items.
    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// Whether the bell rings on new attention.
    pub fn bell(&self) -> bool {
        self.bell
    }

    /// The current notice, if one is showing.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref().filter(|n| n.until_ms > self.now_ms)
    }

    /// The workspaces screen's state.
    pub fn workspaces(&self) -> Option<&WorkspacesView> {
        self.workspaces.as_ref()
    }

    /// The sessions screen's state.
    pub fn sessions(&self) -> Option<&SessionsView> {
        self.sessions.as_ref()
    }

    /// The session screen's state.
    pub fn session(&self) -> Option<&SessionView> {
        self.session.as_ref()
    }

    /// The diff view's state.
    pub fn diff(&self) -> Option<&DiffView> {
        self.diff.as_ref()
    }

    /// Terminal width.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// The host the screens are about (the open one, else the selected one).
    pub fn current_host(&self) -> Option<&HostId> {
        match self.screen {
            Screen::Hosts => self.selected_host().map(|h| &h.host),
            _ => self.workspaces.as_ref().map(|w| &w.host),
        }
    }

    /// The principal's role on the current host, if the relay said.
    pub fn role(&self) -> Option<Role> {
        self.current_host().and_then(|h| self.roles.get(h)).copied()
    }

    /// The connection state in a few words: "connected", "reconnecting in 4s", "offline".
    pub fn connection_text(&self) -> String {
        match &self.conn {
            ConnState::Connecting => "connecting…".into(),
            ConnState::Connected { .. } => "connected".into(),
            ConnState::Reconnecting { retry_at_ms, .. } => {
                let left = retry_at_ms.saturating_sub(self.now_ms);
                if left == 0 {
                    "reconnecting…".into()
                } else {
                    format!("reconnecting in {}s", left.div_ceil(1000))
                }
            }
            // Retrying cannot help: say why, not just "offline".
            ConnState::Offline { revoked: true, .. } => "login revoked".into(),
            ConnState::Offline { .. } => "login refused".into(),
        }
    }

    /// Why the connection is not up, when there is a reason to show.
    pub fn problem(&self) -> Option<&str> {
        match &self.conn {
            ConnState::Reconnecting { reason, .. } | ConnState::Offline { reason, .. } => {
                Some(reason)
            }
            ConnState::Connecting | ConnState::Connected { .. } => None,
        }
    }
}
