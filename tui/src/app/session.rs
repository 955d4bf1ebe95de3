//! The session screen: the live transcript (history, then the workspace's events for this
//! session), its scroll position and selected block, the prompt box with history, and abort.
//! Sending the prompt is in `send`.

use super::attention::ItemKind;
use super::prompt::{Editor, History};
use super::{App, DiffScope, Screen};
use crate::action::Action;
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use crate::transcript::Transcript;
use crate::view;
use proto::event::Event;
use proto::ids::{HostId, SessionId, WorkspaceName};
use proto::ops::{Message, PermissionAnswer, SessionStatus};
use proto::text::RemoteText;
use std::collections::HashSet;

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
    pub outbox: Option<super::send::Outgoing>,
    /// The model and agent its prompts name (`M` picks them).
    pub pick: super::model_picker::ModelPick,
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
            pick: super::model_picker::ModelPick::default(),
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

    /// Follows the bottom of the transcript again.
    pub(super) fn follow_bottom(&mut self) {
        self.top = None;
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

    /// A key on the session screen, with `rows` transcript rows laid out and `visible` of
    /// them shown: scrolls, selects and folds here, says what the app must do for the rest.
    /// No IO.
    pub fn update(&mut self, action: Action, rows: usize, visible: usize) -> Outcome {
        match action {
            Action::SelectPrev
            | Action::SelectNext
            | Action::PageUp
            | Action::PageDown
            | Action::SelectFirst
            | Action::SelectLast => self.scroll(action, rows, visible),
            Action::FocusPrompt => self.focus = true,
            Action::Back => return Outcome::Back,
            // Nothing to abort or diff before the first prompt created the session.
            Action::Abort | Action::ShowDiff if self.id.is_draft() => {}
            Action::Abort => return Outcome::Abort,
            Action::ShowDiff => return Outcome::ShowDiff,
            Action::AllowOnce => return Outcome::Answer(PermissionAnswer::Once),
            Action::AllowAlways => return Outcome::Answer(PermissionAnswer::Always),
            Action::Reject => return Outcome::Answer(PermissionAnswer::Reject),
            Action::AllowAlwaysThis => return Outcome::AllowAlwaysThis,
            Action::ScrollRequestUp => return Outcome::ScrollRequest { down: false },
            Action::ScrollRequestDown => return Outcome::ScrollRequest { down: true },
            Action::PrevBlock | Action::NextBlock => {
                if self.transcript.blocks().is_empty() {
                    return Outcome::Notice("no tool calls or reasoning to select yet");
                }
                self.select_block(action, rows, visible);
            }
            Action::ToggleBlock => {
                let id = self
                    .block
                    .and_then(|b| self.transcript.blocks().get(b).map(|s| (*s).to_owned()));
                match id {
                    Some(id) => self.transcript.toggle(&id),
                    None => {
                        return Outcome::Notice(
                            "select a tool call or reasoning with [ or ] first",
                        );
                    }
                }
            }
            _ => {}
        }
        Outcome::Stay
    }

    fn scroll(&mut self, action: Action, rows: usize, visible: usize) {
        let max = rows.saturating_sub(visible);
        let top = self.top.unwrap_or(max).min(max);
        let page = visible.saturating_sub(1).max(1);
        let next = match action {
            Action::SelectPrev => top.saturating_sub(1),
            Action::SelectNext => top + 1,
            Action::PageUp => top.saturating_sub(page),
            Action::PageDown => top + page,
            Action::SelectFirst => 0,
            _ => max,
        };
        self.top = (next < max).then_some(next);
    }

    /// Selects the previous or next block (there is one) and scrolls it into view.
    fn select_block(&mut self, action: Action, rows: usize, visible: usize) {
        let count = self.transcript.blocks().len();
        self.block = Some(match (self.block, action) {
            (None, _) => count.saturating_sub(1),
            (Some(b), Action::PrevBlock) => b.saturating_sub(1),
            (Some(b), _) => (b + 1).min(count.saturating_sub(1)),
        });
        let Some(row) = self.block.and_then(|b| self.layout.block_row(b)) else {
            return;
        };
        let max = rows.saturating_sub(visible);
        let top = self.top.unwrap_or(max).min(max);
        let top = if row < top {
            row
        } else if row >= top + visible {
            row + 1 - visible
        } else {
            top
        };
        self.top = (top < max).then_some(top);
    }

    /// A key while the prompt box has the focus: edits here (walking `history` on up and
    /// down at the box's edge), says what the app must do for the rest.
    pub fn prompt_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        history: &mut History,
    ) -> PromptOutcome {
        let editor = &mut self.editor;
        if let Some(c) = typed {
            editor.insert(c);
            return PromptOutcome::Stay;
        }
        match action {
            // A line ending in `\` continues: a new line from a keyboard without Alt-Enter.
            Some(Action::Send) if editor.before_cursor_is('\\') => {
                editor.backspace();
                editor.newline();
            }
            Some(Action::Send) => return PromptOutcome::Send,
            Some(Action::Newline) => editor.newline(),
            Some(Action::LeaveInput) => self.focus = false,
            Some(Action::ToggleAttention) => return PromptOutcome::ToggleAttention,
            Some(Action::Quit) => return PromptOutcome::Quit,
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
        PromptOutcome::Stay
    }

    /// The answer to `messages` request `request`: taken if it is the one awaited.
    pub fn history_loaded(&mut self, request: u64, history: Vec<Message>) {
        if self.history_request == Some(request) {
            self.history_request = None;
            self.load(history);
        }
    }

    /// `messages` request `request` failed: shown if it is the one awaited.
    pub fn history_failed(&mut self, request: u64, e: &CallError) {
        if self.history_request == Some(request) {
            self.history_request = None;
            self.error = Some(RemoteText::from(&e.message));
        }
    }

    /// Takes the history, then replays what arrived meanwhile. Deltas for parts the history
    /// already has are dropped (the history may include them; the part's next whole update
    /// fixes any shortfall), everything else is applied (whole objects are idempotent).
    fn load(&mut self, history: Vec<Message>) {
        let known: HashSet<String> = history
            .iter()
            .flat_map(|m| m.parts.iter())
            .map(|p| crate::transcript::part_id(p).to_owned())
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

/// What the session view asks of the app after a key (the app owns the screens, the
/// attention panel, the notices and the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (or nothing to do).
    Stay,
    /// Leave for the sessions (unless a waiting request's confirmation is cancelled first).
    Back,
    /// Abort the session's turn.
    Abort,
    /// Show the session's diff.
    ShowDiff,
    /// Answer the session's waiting permission request.
    Answer(PermissionAnswer),
    /// Allow the waiting request always, for this pattern.
    AllowAlwaysThis,
    /// Scroll the waiting request's box.
    ScrollRequest {
        /// Down rather than up.
        down: bool,
    },
    /// Say this (nothing to select or fold yet).
    Notice(&'static str),
}

/// What the prompt box asks of the app after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Edited here.
    Stay,
    /// Send the prompt.
    Send,
    /// Open or close the attention panel.
    ToggleAttention,
    /// Quit the app.
    Quit,
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

    pub(super) fn session_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        if self.stack.session.is_none() {
            self.screen = Screen::Sessions;
            return;
        }
        let (rows, visible) = self.transcript_geometry();
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        let scope = view.scope();
        match view.update(action, rows, visible) {
            Outcome::Stay => {}
            Outcome::Back => {
                let confirming = self.shown_request().is_some_and(|i| self.cancel_always(i));
                if !confirming {
                    self.screen = Screen::Sessions;
                }
            }
            Outcome::Abort => {
                if self.act(scope, Call::Abort, fx).is_some() {
                    self.notify("aborting…", false);
                }
            }
            Outcome::ShowDiff => self.open_diff(DiffScope::Session, fx),
            Outcome::Answer(answer) => self.answer_in_session(answer, fx),
            Outcome::AllowAlwaysThis => match self.shown_request() {
                Some(i) => self.answer_always_this(i, fx),
                None => self.notify("no permission request is waiting in this session", false),
            },
            Outcome::ScrollRequest { down } => {
                if let Some(i) = self.shown_request() {
                    self.scroll_request(i, down);
                }
            }
            Outcome::Notice(text) => self.notify(text, false),
        }
    }

    /// Keys while the prompt box has the focus.
    pub(super) fn prompt_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        match view.prompt_key(action, typed, &mut self.history) {
            PromptOutcome::Stay => {}
            PromptOutcome::Send => self.send_prompt(fx),
            PromptOutcome::ToggleAttention => self.attention_open = !self.attention_open,
            PromptOutcome::Quit => fx.push(Effect::Quit),
        }
    }

    pub(super) fn history_loaded(&mut self, request: u64, list: Vec<Message>) {
        if let Some(view) = self.stack.session.as_mut() {
            view.history_loaded(request, list);
        }
    }

    pub(super) fn history_failed(&mut self, request: u64, e: &CallError) {
        if let Some(view) = self.stack.session.as_mut() {
            view.history_failed(request, e);
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
}

#[cfg(test)]
mod tests;
