//! The session screen: the live transcript (history, then the workspace's events for this
//! session), its scroll position and selected block, the prompt box with history, sending a
//! prompt with an idempotency key (resent with the same key after a dropped connection), and
//! abort.

use super::attention::ItemKind;
use super::prompt::Editor;
use super::transcript::Transcript;
use super::{App, DiffScope, Screen};
use crate::action::Action;
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use crate::view;
use proto::event::Event;
use proto::ids::{HostId, SessionId, WorkspaceName};
use proto::ops::{Message, PermissionAnswer, Prompt, PromptAccepted, SessionStatus};
use proto::text::RemoteText;
use std::collections::HashSet;

/// How often a prompt whose answer was lost in transport is sent again (same key) before the
/// app gives up and puts the text back into the box.
pub const PROMPT_ATTEMPTS: u32 = 3;

/// A prompt sent and not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The text.
    pub text: String,
    /// Its idempotency key (the same on every attempt).
    pub key: String,
    /// The request in flight, if any (none while disconnected).
    pub request: Option<u64>,
    /// Attempts so far.
    pub attempts: u32,
}

/// Which session the screen shows: one OpenCode has (its id validated where it arrived), or
/// the draft `n` opened, which its first prompt creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRef {
    /// Not created yet.
    Draft,
    /// OpenCode's session.
    Id(SessionId),
}

impl SessionRef {
    /// The id, or `""` for the draft.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Draft => "",
            Self::Id(id) => id.as_str(),
        }
    }

    /// Whether the session is not created yet.
    pub fn is_draft(&self) -> bool {
        matches!(self, Self::Draft)
    }
}

impl PartialEq<str> for SessionRef {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SessionRef {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for SessionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of the session screen.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    /// The host.
    pub host: HostId,
    /// The workspace.
    pub workspace: WorkspaceName,
    /// OpenCode's session id (or the draft's).
    pub id: SessionRef,
    /// Its title.
    pub title: RemoteText,
    /// Busy, idle or retrying.
    pub status: SessionStatus,
    /// The conversation.
    pub transcript: Transcript,
    /// Whether the history has arrived.
    pub loaded: bool,
    /// Why reading the history failed.
    pub error: Option<RemoteText>,
    /// Events that arrived before the history, applied once it is here.
    buffered: Vec<Event>,
    /// The `messages` request whose answer is awaited.
    pub(super) history_request: Option<u64>,
    /// First transcript row shown; `None` follows the bottom.
    top: Option<usize>,
    /// The selected block (index in [`Transcript::blocks`]).
    block: Option<usize>,
    /// The prompt being written.
    pub editor: Editor,
    /// Whether the prompt box has the keys.
    pub focus: bool,
    /// The prompt being sent.
    pub outbox: Option<Outgoing>,
    /// The transcript laid out (kept current by `App::update`, drawn by `ui`).
    layout: view::transcript::Layout,
}

impl SessionView {
    /// A view of session `id` of `workspace` on `host`, loading its history.
    pub fn new(host: &HostId, workspace: WorkspaceName, id: SessionRef, title: &str) -> Self {
        Self {
            host: host.clone(),
            workspace,
            id,
            title: RemoteText::new(title),
            status: SessionStatus::Idle,
            transcript: Transcript::default(),
            loaded: false,
            error: None,
            buffered: Vec::new(),
            history_request: None,
            top: None,
            block: None,
            editor: Editor::default(),
            focus: false,
            outbox: None,
            layout: view::transcript::Layout::default(),
        }
    }

    /// The workspace's watch key.
    pub fn watch(&self) -> WatchKey {
        WatchKey::new(&self.host, self.workspace.as_str())
    }

    /// This session as a call scope.
    pub fn scope(&self) -> Scope {
        Scope::session(&self.host, self.workspace.as_str(), self.id.as_str())
    }

    /// First transcript row shown; `None` follows the bottom.
    pub fn top(&self) -> Option<usize> {
        self.top
    }

    /// The selected block, if any.
    pub fn block(&self) -> Option<usize> {
        self.block
    }

    /// The transcript as laid out at the last update (for the terminal's width then).
    pub fn layout(&self) -> &view::transcript::Layout {
        &self.layout
    }

    /// Lays out what changed since the last call, for a screen `width` columns wide.
    pub(super) fn sync_layout(&mut self, width: u16) {
        self.layout.sync(&self.transcript, view::inner_width(width));
    }

    /// Applies an event of this session.
    pub fn apply(&mut self, event: Event) {
        match &event {
            Event::SessionStatus { status, .. } => self.status = status.clone(),
            Event::SessionIdle { .. } => self.status = SessionStatus::Idle,
            Event::SessionUpdated { session } => {
                self.title = RemoteText::new(&session.title);
                self.status = session.status.clone();
            }
            Event::TextDelta { .. } => self.status = SessionStatus::Busy,
            _ => {}
        }
        if self.loaded {
            self.transcript.apply(&event);
        } else {
            self.buffered.push(event);
        }
    }

    /// Takes the history, then replays what arrived meanwhile. Deltas for parts the history
    /// already has are dropped (the history may include them; the part's next whole update
    /// fixes any shortfall), everything else is applied (whole objects are idempotent).
    fn load(&mut self, history: Vec<Message>) {
        let known: HashSet<String> = history
            .iter()
            .flat_map(|m| m.parts.iter())
            .map(|p| super::transcript::part_id(p).to_owned())
            .collect();
        self.transcript.replace_history(history);
        for event in std::mem::take(&mut self.buffered) {
            if matches!(&event, Event::TextDelta { part_id, .. } if known.contains(part_id)) {
                continue;
            }
            self.transcript.apply(&event);
        }
        self.loaded = true;
        self.error = None;
        self.block = self.block.filter(|&b| b < self.transcript.blocks().len());
    }
}

impl App {
    /// Rows of what the open session's first waiting request asks, as the request box shows
    /// them (0: nothing waits).
    pub fn request_rows(&self) -> usize {
        let Some(item) = self
            .shown_request()
            .and_then(|i| self.attention.items().get(i))
        else {
            return 0;
        };
        match &item.kind {
            ItemKind::Permission(p) => view::permission::detail(p).len(),
            _ => 1,
        }
    }

    /// Total transcript rows and the rows that fit, as the screen lays them out now.
    fn transcript_geometry(&mut self) -> (usize, usize) {
        let width = self.width;
        if let Some(view) = self.stack.session.as_mut() {
            view.sync_layout(width);
        }
        let Some(view) = self.stack.session.as_ref() else {
            return (0, 1);
        };
        let request_rows = self.request_rows();
        let layout =
            view::session_layout(self.main_height(), view.editor.lines().len(), request_rows);
        let visible = usize::from(layout.transcript.saturating_sub(view::BORDER)).max(1);
        (view.layout.len(), visible)
    }

    fn scroll(&mut self, action: Action) {
        let (rows, visible) = self.transcript_geometry();
        let max = rows.saturating_sub(visible);
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        let top = view.top.unwrap_or(max).min(max);
        let page = visible.saturating_sub(1).max(1);
        let next = match action {
            Action::SelectPrev => top.saturating_sub(1),
            Action::SelectNext => top + 1,
            Action::PageUp => top.saturating_sub(page),
            Action::PageDown => top + page,
            Action::SelectFirst => 0,
            _ => max,
        };
        view.top = (next < max).then_some(next);
    }

    /// Selects the previous or next block and scrolls it into view.
    fn select_block(&mut self, action: Action) {
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        let count = view.transcript.blocks().len();
        if count == 0 {
            self.notify("no tool calls or reasoning to select yet", false);
            return;
        }
        view.block = Some(match (view.block, action) {
            (None, _) => count - 1,
            (Some(b), Action::PrevBlock) => b.saturating_sub(1),
            (Some(b), _) => (b + 1).min(count - 1),
        });
        let (rows, visible) = self.transcript_geometry();
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        let Some(row) = view.block.and_then(|b| view.layout.block_row(b)) else {
            return;
        };
        let max = rows.saturating_sub(visible);
        let top = view.top.unwrap_or(max).min(max);
        let top = if row < top {
            row
        } else if row >= top + visible {
            row + 1 - visible
        } else {
            top
        };
        view.top = (top < max).then_some(top);
    }

    pub(super) fn session_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.session.as_mut() else {
            self.screen = Screen::Sessions;
            return;
        };
        match action {
            Action::SelectPrev
            | Action::SelectNext
            | Action::PageUp
            | Action::PageDown
            | Action::SelectFirst
            | Action::SelectLast => self.scroll(action),
            Action::FocusPrompt => view.focus = true,
            Action::Back => {
                let confirming = self.shown_request().is_some_and(|i| self.cancel_always(i));
                if !confirming {
                    self.screen = Screen::Sessions;
                }
            }
            // Nothing to abort or diff before the first prompt created the session.
            Action::Abort | Action::ShowDiff if view.id.is_draft() => {}
            Action::Abort => {
                let scope = view.scope();
                if self.act(scope, Call::Abort, fx).is_some() {
                    self.notify("aborting…", false);
                }
            }
            Action::ShowDiff => self.open_diff(DiffScope::Session, fx),
            Action::AllowOnce => self.answer_in_session(PermissionAnswer::Once, fx),
            Action::AllowAlways => self.answer_in_session(PermissionAnswer::Always, fx),
            Action::AllowAlwaysThis => match self.shown_request() {
                Some(i) => self.answer_always_this(i, fx),
                None => self.notify("no permission request is waiting in this session", false),
            },
            a @ (Action::ScrollRequestUp | Action::ScrollRequestDown) => {
                if let Some(i) = self.shown_request() {
                    self.scroll_request(i, a == Action::ScrollRequestDown);
                }
            }
            Action::Reject => self.answer_in_session(PermissionAnswer::Reject, fx),
            Action::PrevBlock | Action::NextBlock => self.select_block(action),
            Action::ToggleBlock => {
                let id = view
                    .block
                    .and_then(|b| view.transcript.blocks().get(b).map(|s| (*s).to_owned()));
                match id {
                    Some(id) => view.transcript.toggle(&id),
                    None => self.notify("select a tool call or reasoning with [ or ] first", false),
                }
            }
            _ => {}
        }
    }

    /// Keys while the prompt box has the focus.
    pub(super) fn prompt_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        let history = &mut self.history;
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        let editor = &mut view.editor;
        if let Some(c) = typed {
            editor.insert(c);
            return;
        }
        match action {
            Some(Action::Send) => self.send_prompt(fx),
            Some(Action::Newline) => editor.newline(),
            Some(Action::LeaveInput) => view.focus = false,
            Some(Action::ToggleAttention) => self.attention_open = !self.attention_open,
            Some(Action::Quit) => fx.push(Effect::Quit),
            Some(Action::CursorLeft) => editor.left(),
            Some(Action::CursorRight) => editor.right(),
            Some(Action::LineStart) => editor.home(),
            Some(Action::LineEnd) => editor.end(),
            Some(Action::DeleteBack) => editor.backspace(),
            Some(Action::DeleteForward) => editor.delete(),
            Some(Action::DeleteWord) => editor.delete_word(),
            Some(Action::ClearLine) => editor.clear_line(),
            Some(Action::CursorUp) => {
                if !editor.up()
                    && let Some(older) = history.older(&editor.text())
                {
                    let older = older.to_owned();
                    editor.set_text(&older);
                }
            }
            Some(Action::CursorDown) => {
                if !editor.down()
                    && let Some(newer) = history.newer()
                {
                    let newer = newer.to_owned();
                    editor.set_text(&newer);
                }
            }
            _ => {}
        }
    }

    fn send_prompt(&mut self, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.session.as_ref() else {
            return;
        };
        let text = view.editor.text();
        if text.trim().is_empty() {
            return;
        }
        if view.outbox.is_some() {
            self.notify("still sending the previous prompt", false);
            return;
        }
        let key = self.idempotency_key();
        self.history.push(&text);
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        view.editor.clear();
        view.top = None;
        view.outbox = Some(Outgoing {
            text,
            key,
            request: None,
            attempts: 0,
        });
        if !self.is_connected() {
            self.notify(
                "not connected: the prompt goes out when the connection is back",
                false,
            );
        }
        self.flush_outbox(fx);
    }

    /// Sends the pending prompt (again, with the same key) if connected.
    pub(super) fn flush_outbox(&mut self, fx: &mut Vec<Effect>) {
        let Some((scope, call)) = self.stack.session.as_ref().and_then(|v| {
            let out = v.outbox.as_ref().filter(|o| o.request.is_none())?;
            // A session not created yet (`n`) is created first; the prompt follows.
            if v.id.is_draft() {
                let create = Call::SessionCreate(proto::ops::CreateSession::default());
                return Some((Scope::workspace(&v.host, v.workspace.as_str()), create));
            }
            let prompt = Prompt {
                text: out.text.clone(),
                idempotency_key: out.key.clone(),
                model: None,
                agent: None,
            };
            Some((v.scope(), Call::Prompt(prompt)))
        }) else {
            return;
        };
        let id = self.request(scope, call, fx);
        if let Some(out) = self.stack.session.as_mut().and_then(|v| v.outbox.as_mut()) {
            out.request = id;
            if id.is_some() {
                out.attempts += 1;
            }
        }
    }

    fn outbox_for(&mut self, request: u64) -> Option<&mut SessionView> {
        self.stack.session.as_mut().filter(|v| {
            v.outbox
                .as_ref()
                .is_some_and(|o| o.request == Some(request))
        })
    }

    pub(super) fn prompt_accepted(&mut self, request: u64, _accepted: &PromptAccepted) {
        if let Some(view) = self.outbox_for(request) {
            view.outbox = None;
            view.status = SessionStatus::Busy;
        }
    }

    /// The host is offline: the relay keeps the prompt and delivers it once when it is back.
    pub(super) fn prompt_queued(&mut self, request: u64, queued: &proto::queue::Queued) {
        if let Some(view) = self.outbox_for(request) {
            view.outbox = None;
        }
        let line = crate::queue_cli::queued_line(queued, self.now_ms);
        self.notify(line, false);
    }

    pub(super) fn prompt_failed(&mut self, request: u64, e: &CallError) {
        let connected = self.is_connected();
        let Some(view) = self.outbox_for(request) else {
            return;
        };
        let Some(out) = view.outbox.as_mut() else {
            return;
        };
        out.request = None;
        if e.code.is_none() && out.attempts < PROMPT_ATTEMPTS {
            // Lost in transport: the same key makes a resend safe. Resent on reconnect, or on
            // the next tick if the connection is still up.
            if connected {
                self.notify(format!("prompt not confirmed ({e}); resending"), true);
            }
            return;
        }
        let text = out.text.clone();
        view.outbox = None;
        if view.editor.is_empty() {
            view.editor.set_text(&text);
        }
        view.focus = true;
        self.notify(format!("prompt not sent: {e}"), true);
    }

    pub(super) fn history_loaded(&mut self, request: u64, list: Vec<Message>) {
        if let Some(view) = self
            .stack
            .session
            .as_mut()
            .filter(|v| v.history_request == Some(request))
        {
            view.history_request = None;
            view.load(list);
        }
    }

    pub(super) fn history_failed(&mut self, request: u64, e: &CallError) {
        if let Some(view) = self
            .stack
            .session
            .as_mut()
            .filter(|v| v.history_request == Some(request))
        {
            view.history_request = None;
            view.error = Some(RemoteText::from(&e.message));
        }
    }

    /// Re-reads the history (after a resync, or when it never arrived).
    pub(super) fn reload_history(&mut self, fx: &mut Vec<Effect>) {
        let Some(scope) = self.stack.session.as_ref().map(SessionView::scope) else {
            return;
        };
        let id = self.request(
            scope,
            Call::Messages(proto::ops::MessagesQuery::default()),
            fx,
        );
        if let Some(view) = self.stack.session.as_mut() {
            view.history_request = id;
            view.loaded = false;
        }
    }

    /// After a reconnect: fetch a history that never arrived, resend an unconfirmed prompt.
    pub(super) fn session_reconnected(&mut self, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        if let Some(out) = view.outbox.as_mut() {
            out.request = None;
            out.attempts = 0;
        }
        if !view.loaded {
            self.reload_history(fx);
        }
        self.flush_outbox(fx);
    }

    /// On a tick: resend a prompt whose answer was lost while the connection stayed up.
    pub(super) fn session_tick(&mut self, fx: &mut Vec<Effect>) {
        self.flush_outbox(fx);
    }
}
