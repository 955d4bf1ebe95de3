//! Renaming and deleting sessions from the sessions screen: `R` opens the palette with
//! `rename TITLE` to edit; `D` pressed twice on the same session deletes it (OpenCode cannot
//! undo that). The answers update the list at once; the workspace's events confirm them.

use super::{App, SessionRow};
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use proto::ops::{RenameSession, SessionInfo};

/// The palette command that renames the selected session: `rename NEW TITLE`.
pub(super) const RENAME: &str = "rename ";

impl App {
    /// `R` on the sessions screen: the palette with the title to edit.
    pub(super) fn rename_prompt(&mut self, selected: &SessionRow) {
        self.open_palette_with(&format!("{RENAME}{}", selected.title));
    }

    /// The first `D` on a session: says what a second one does.
    pub(super) fn confirm_delete(&mut self, selected: &SessionRow) {
        let name = display_name(selected);
        self.notify(
            format!("delete session {name} and its history? press D again (cannot be undone)"),
            true,
        );
    }

    /// The second `D` on a session: deletes it.
    pub(super) fn delete_session(
        &mut self,
        watch: &WatchKey,
        selected: &SessionRow,
        fx: &mut Vec<Effect>,
    ) {
        let scope = Scope::session(&watch.host, &watch.workspace, selected.id.as_str());
        if self.act(scope, Call::SessionDelete, fx).is_some() {
            self.notify(format!("deleting {}…", display_name(selected)), false);
        }
    }

    /// `rename TITLE` from the palette: renames the selected session.
    pub(super) fn rename_selected(&mut self, title: &str, fx: &mut Vec<Effect>) {
        let title = title.trim();
        if title.is_empty() {
            self.notify("type the new title after `rename `", true);
            return;
        }
        let Some(view) = self.stack.sessions.as_ref() else {
            return;
        };
        let Some(selected) = view.selected() else {
            self.notify("no session selected", false);
            return;
        };
        let scope = Scope::session(&view.host, view.workspace.as_str(), selected.id.as_str());
        let body = RenameSession {
            title: title.to_owned(),
        };
        self.act(scope, Call::SessionRename(body), fx);
    }

    /// `session_rename` answered.
    pub(super) fn session_renamed(&mut self, scope: &Scope, info: SessionInfo) {
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        let watch = crate::call::WatchKey::new(&scope.host, ws);
        self.attention.set_title(&watch, &info.id, &info.title);
        if let Some(s) = self
            .stack
            .session
            .as_mut()
            .filter(|s| s.id == info.id.as_str() && s.watch() == watch)
        {
            s.title = proto::text::RemoteText::new(&info.title);
        }
        let text = format!("renamed to “{}”", crate::view::text::sanitize(&info.title));
        if let Some(view) = self.stack.sessions.as_mut().filter(|v| v.watch() == watch) {
            view.upsert(info);
        }
        self.notify(text, false);
    }

    /// `session_delete` answered.
    pub(super) fn session_deleted(&mut self, scope: &Scope) {
        let (Some(ws), Some(id)) = (scope.workspace.as_deref(), scope.session.as_deref()) else {
            return;
        };
        let watch = crate::call::WatchKey::new(&scope.host, ws);
        if let Some(view) = self.stack.sessions.as_mut().filter(|v| v.watch() == watch) {
            view.remove(id);
        }
        self.notify("session deleted", false);
    }

    /// `session_rename` or `session_delete` failed.
    pub(super) fn manage_failed(&mut self, what: &str, e: &CallError) {
        self.notify(format!("{what} failed: {e}"), true);
    }
}

/// How a session is named in a notice: its title, else its id.
fn display_name(s: &SessionRow) -> String {
    let name = if s.title.is_empty() {
        s.id.as_str()
    } else {
        s.title.as_str()
    };
    format!("“{name}”")
}
