//! The diff view: the session's changes (or the whole working tree's), a file list and the
//! selected file's hunks, scrolled by line and jumped by hunk.
//!
//! OpenCode computes a turn's diff only after the turn is idle and then updates the user
//! message (`session.idle` → `session.diff` → `message.updated` of the user message), so a
//! diff read right after a turn can be empty. The open view reads again on those events of
//! its session (and on `file.edited` for the working tree), and on `r`.

use super::{App, Screen};
use crate::action::Action;
use crate::call::{Call, CallError};
use crate::effect::Effect;
use crate::view;
use proto::event::Event;
use proto::ops::{DiffQuery, FileDiff};
use proto::text::RemoteText;

/// Which changes the diff shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffScope {
    /// Every turn of the open session.
    Session,
    /// Everything uncommitted in the workspace.
    Worktree,
}

impl DiffScope {
    /// The query for this scope.
    pub fn query(self) -> DiffQuery {
        match self {
            Self::Session => DiffQuery::Session { message_id: None },
            Self::Worktree => DiffQuery::Worktree,
        }
    }

    /// A few words for the title.
    pub fn label(self) -> &'static str {
        match self {
            Self::Session => "session changes",
            Self::Worktree => "working tree",
        }
    }
}

/// State of the diff view.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffView {
    /// What is shown.
    pub scope: DiffScope,
    /// The files, once loaded.
    pub files: Option<Vec<FileDiff>>,
    /// Why loading failed.
    pub error: Option<RemoteText>,
    /// The selected file.
    pub file: usize,
    /// First patch row shown.
    pub top: usize,
    request: Option<u64>,
}

impl DiffView {
    fn new(scope: DiffScope) -> Self {
        Self {
            scope,
            files: None,
            error: None,
            file: 0,
            top: 0,
            request: None,
        }
    }

    /// The selected file.
    pub fn selected(&self) -> Option<&FileDiff> {
        self.files.as_ref().and_then(|f| f.get(self.file))
    }
}

impl App {
    /// Shows the diff of `scope` for the open session.
    pub(super) fn open_diff(&mut self, scope: DiffScope, fx: &mut Vec<Effect>) {
        self.screen = Screen::Diff;
        self.diff = Some(DiffView::new(scope));
        self.load_diff(fx);
    }

    fn load_diff(&mut self, fx: &mut Vec<Effect>) {
        let (Some(session), Some(diff)) = (self.session.as_ref(), self.diff.as_ref()) else {
            return;
        };
        let (target, query) = (session.scope(), diff.scope.query());
        let id = self.request(target, Call::Diff(query), fx);
        if let Some(diff) = self.diff.as_mut() {
            diff.request = id;
            diff.error = None;
        }
    }

    /// Patch rows that fit in the view (the panel's borders and the file name row).
    fn diff_visible(&self) -> usize {
        usize::from(self.main_height().saturating_sub(view::BORDER + 1)).max(1)
    }

    pub(super) fn diff_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let visible = self.diff_visible();
        let Some(diff) = self.diff.as_mut() else {
            self.screen = Screen::Session;
            return;
        };
        let files = diff.files.as_ref().map_or(0, Vec::len);
        let rows = diff.selected().map_or(0, view::diff::row_count);
        let max = rows.saturating_sub(visible);
        let page = visible.saturating_sub(1).max(1);
        match action {
            Action::Back => self.screen = Screen::Session,
            Action::SelectPrev => diff.top = diff.top.saturating_sub(1),
            Action::SelectNext => diff.top = (diff.top + 1).min(max),
            Action::PageUp => diff.top = diff.top.saturating_sub(page),
            Action::PageDown => diff.top = (diff.top + page).min(max),
            Action::SelectFirst => diff.top = 0,
            Action::SelectLast => diff.top = max,
            Action::PrevFile => {
                diff.file = diff.file.saturating_sub(1);
                diff.top = 0;
            }
            Action::NextFile => {
                diff.file = (diff.file + 1).min(files.saturating_sub(1));
                diff.top = 0;
            }
            Action::PrevBlock | Action::NextBlock => {
                let starts = diff
                    .selected()
                    .map(view::diff::hunk_starts)
                    .unwrap_or_default();
                let target = if action == Action::NextBlock {
                    starts.into_iter().find(|&s| s > diff.top)
                } else {
                    starts.into_iter().rev().find(|&s| s < diff.top)
                };
                if let Some(t) = target {
                    diff.top = t.min(max);
                }
            }
            Action::Refresh => self.load_diff(fx),
            Action::ToggleDiffScope => {
                let scope = match diff.scope {
                    DiffScope::Session => DiffScope::Worktree,
                    DiffScope::Worktree => DiffScope::Session,
                };
                self.open_diff(scope, fx);
            }
            _ => {}
        }
    }

    /// An event of the open session's workspace (`for_session`: it belongs to the open
    /// session): reads the open diff again when the changes may have moved. A newer answer
    /// replaces an older request's, which is then ignored.
    pub(super) fn diff_event(&mut self, event: &Event, for_session: bool, fx: &mut Vec<Effect>) {
        let Some(diff) = self.diff.as_ref().filter(|_| self.screen == Screen::Diff) else {
            return;
        };
        let reload = match (diff.scope, event) {
            (_, Event::SessionIdle { .. }) => for_session,
            // The user message carries the turn's diff summary once OpenCode has computed it.
            (DiffScope::Session, Event::MessageUpdated { role, .. }) => {
                for_session && role == "user"
            }
            (DiffScope::Worktree, Event::FileEdited { .. }) => true,
            _ => false,
        };
        if reload {
            self.load_diff(fx);
        }
    }

    pub(super) fn diff_loaded(&mut self, request: u64, files: Vec<FileDiff>) {
        if let Some(diff) = self.diff.as_mut().filter(|d| d.request == Some(request)) {
            diff.request = None;
            diff.file = diff.file.min(files.len().saturating_sub(1));
            diff.files = Some(files);
            diff.error = None;
        }
    }

    pub(super) fn diff_failed(&mut self, request: u64, e: &CallError) {
        if let Some(diff) = self.diff.as_mut().filter(|d| d.request == Some(request)) {
            diff.request = None;
            diff.error = Some(RemoteText::from(&e.message));
        }
    }

    /// After a reconnect: load a diff that never arrived.
    pub(super) fn diff_reconnected(&mut self, fx: &mut Vec<Effect>) {
        if self.diff.as_ref().is_some_and(|d| d.files.is_none()) {
            self.load_diff(fx);
        }
    }
}
