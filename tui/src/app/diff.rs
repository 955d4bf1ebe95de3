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

    /// A key on the diff screen with `visible` patch rows shown: scrolls and moves here,
    /// says what the app must do for the rest. No IO.
    pub fn update(&mut self, action: Action, visible: usize) -> Outcome {
        let files = self.files.as_ref().map_or(0, Vec::len);
        let rows = self.selected().map_or(0, view::diff::row_count);
        let max = rows.saturating_sub(visible);
        let page = visible.saturating_sub(1).max(1);
        match action {
            Action::Back => return Outcome::Back,
            Action::SelectPrev => self.top = self.top.saturating_sub(1),
            Action::SelectNext => self.top = (self.top + 1).min(max),
            Action::PageUp => self.top = self.top.saturating_sub(page),
            Action::PageDown => self.top = (self.top + page).min(max),
            Action::SelectFirst => self.top = 0,
            Action::SelectLast => self.top = max,
            Action::PrevFile => {
                self.file = self.file.saturating_sub(1);
                self.top = 0;
            }
            Action::NextFile => {
                self.file = (self.file + 1).min(files.saturating_sub(1));
                self.top = 0;
            }
            Action::PrevBlock | Action::NextBlock => {
                let starts = self
                    .selected()
                    .map(view::diff::hunk_starts)
                    .unwrap_or_default();
                let target = if action == Action::NextBlock {
                    starts.into_iter().find(|&s| s > self.top)
                } else {
                    starts.into_iter().rev().find(|&s| s < self.top)
                };
                if let Some(t) = target {
                    self.top = t.min(max);
                }
            }
            Action::Refresh => return Outcome::Reload,
            Action::ToggleDiffScope => {
                return Outcome::Show(match self.scope {
                    DiffScope::Session => DiffScope::Worktree,
                    DiffScope::Worktree => DiffScope::Session,
                });
            }
            _ => {}
        }
        Outcome::Stay
    }

    /// Whether `event` of the workspace may have moved the changes shown (`for_session`: it
    /// belongs to the open session).
    pub fn moved_by(&self, event: &Event, for_session: bool) -> bool {
        match (self.scope, event) {
            (_, Event::SessionIdle { .. }) => for_session,
            // The user message carries the turn's diff summary once OpenCode has computed it.
            (DiffScope::Session, Event::MessageUpdated { role, .. }) => {
                for_session && role == "user"
            }
            (DiffScope::Worktree, Event::FileEdited { .. }) => true,
            _ => false,
        }
    }

    /// The answer to request `request`: taken if it is the one awaited (a newer request's
    /// answer replaces an older one's, which is then ignored).
    pub fn loaded(&mut self, request: u64, files: Vec<FileDiff>) {
        if self.request == Some(request) {
            self.request = None;
            self.file = self.file.min(files.len().saturating_sub(1));
            self.files = Some(files);
            self.error = None;
        }
    }

    /// Request `request` failed: shown if it is the one awaited.
    pub fn failed(&mut self, request: u64, e: &CallError) {
        if self.request == Some(request) {
            self.request = None;
            self.error = Some(RemoteText::from(&e.message));
        }
    }
}

/// What the diff view asks of the app after a key (the app owns the screens and the
/// connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here.
    Stay,
    /// Go back to the session.
    Back,
    /// Read the diff again.
    Reload,
    /// Show the diff of this scope instead.
    Show(DiffScope),
}

impl App {
    /// Shows the diff of `scope` for the open session.
    pub(super) fn open_diff(&mut self, scope: DiffScope, fx: &mut Vec<Effect>) {
        self.screen = Screen::Diff;
        self.stack.open_diff(DiffView::new(scope));
        self.load_diff(fx);
    }

    fn load_diff(&mut self, fx: &mut Vec<Effect>) {
        let (Some(session), Some(diff)) = (self.stack.session.as_ref(), self.stack.diff.as_ref())
        else {
            return;
        };
        let (target, query) = (session.scope(), diff.scope.query());
        let id = self.request(target, Call::Diff(query), fx);
        if let Some(diff) = self.stack.diff.as_mut() {
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
        let Some(diff) = self.stack.diff.as_mut() else {
            self.screen = Screen::Session;
            return;
        };
        match diff.update(action, visible) {
            Outcome::Stay => {}
            Outcome::Back => self.screen = Screen::Session,
            Outcome::Reload => self.load_diff(fx),
            Outcome::Show(scope) => self.open_diff(scope, fx),
        }
    }

    /// An event of the open session's workspace (`for_session`: it belongs to the open
    /// session): reads the open diff again when the changes may have moved. A newer answer
    /// replaces an older request's, which is then ignored.
    pub(super) fn diff_event(&mut self, event: &Event, for_session: bool, fx: &mut Vec<Effect>) {
        let shown = self
            .stack
            .diff
            .as_ref()
            .filter(|_| self.screen == Screen::Diff);
        if shown.is_some_and(|d| d.moved_by(event, for_session)) {
            self.load_diff(fx);
        }
    }

    pub(super) fn diff_loaded(&mut self, request: u64, files: Vec<FileDiff>) {
        if let Some(diff) = self.stack.diff.as_mut() {
            diff.loaded(request, files);
        }
    }

    pub(super) fn diff_failed(&mut self, request: u64, e: &CallError) {
        if let Some(diff) = self.stack.diff.as_mut() {
            diff.failed(request, e);
        }
    }

    /// After a reconnect: load a diff that never arrived.
    pub(super) fn diff_reconnected(&mut self, fx: &mut Vec<Effect>) {
        if self.stack.diff.as_ref().is_some_and(|d| d.files.is_none()) {
            self.load_diff(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, hunks: usize) -> FileDiff {
        let patch = (0..hunks)
            .map(|i| format!("@@ -{i},1 +{i},1 @@\n-old {i}\n+new {i}\n"))
            .collect::<String>();
        FileDiff {
            file: name.into(),
            patch,
            additions: 1,
            deletions: 1,
            status: "modified".into(),
        }
    }

    #[test]
    fn the_diff_view_moves_itself_and_hands_the_rest_to_the_app() {
        let mut v = DiffView::new(DiffScope::Session);
        v.request = Some(7);
        v.loaded(6, vec![file("stale.rs", 1)]);
        assert!(v.files.is_none(), "an older request's answer is ignored");
        v.loaded(7, vec![file("a.rs", 3), file("b.rs", 1)]);
        assert_eq!(v.selected().map(|f| f.file.as_str()), Some("a.rs"));

        assert_eq!(v.update(Action::NextBlock, 2), Outcome::Stay);
        assert!(v.top > 0, "the next hunk is scrolled to");
        assert_eq!(v.update(Action::NextFile, 2), Outcome::Stay);
        assert_eq!((v.file, v.top), (1, 0));
        assert_eq!(v.update(Action::NextFile, 2), Outcome::Stay);
        assert_eq!(v.file, 1, "the last file stays selected");

        assert_eq!(v.update(Action::Back, 2), Outcome::Back);
        assert_eq!(v.update(Action::Refresh, 2), Outcome::Reload);
        assert_eq!(
            v.update(Action::ToggleDiffScope, 2),
            Outcome::Show(DiffScope::Worktree)
        );

        v.request = Some(8);
        v.failed(8, &CallError::transport("gone\u{1b}[2J"));
        assert_eq!(v.error.as_deref(), Some("gone"));
    }

    #[test]
    fn the_diff_view_says_which_events_move_its_changes() {
        let session = DiffView::new(DiffScope::Session);
        let worktree = DiffView::new(DiffScope::Worktree);
        let idle = Event::SessionIdle {
            session: "ses_1".into(),
        };
        assert!(session.moved_by(&idle, true));
        assert!(!session.moved_by(&idle, false), "another session's turn");
        let edited = Event::FileEdited {
            file: "a.rs".into(),
        };
        assert!(worktree.moved_by(&edited, false));
        assert!(!session.moved_by(&edited, true));
    }
}
