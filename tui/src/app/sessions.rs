//! The sessions screen: a workspace's OpenCode sessions (title, status, last activity), kept
//! live by the workspace's events; `n` opens a new one with the prompt focused (OpenCode creates
//! it when the first prompt is sent, so leaving without writing leaves no empty session).

use super::list::{self, ListKey, ListNav};
use super::session::SessionRef;
use super::{App, Screen, SessionView};
use crate::action::Action;
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use proto::event::Event;
use proto::ids::{HostId, InvalidId, SessionId, WorkspaceName};
use proto::ops::{SessionInfo, SessionStatus};
use proto::text::RemoteText;

/// The title of a session whose first prompt is not written yet.
const NEW_SESSION_TITLE: &str = "new session";

/// One session as the sessions screen keeps it: decoded from the host's [`SessionInfo`], its
/// id validated and its title sanitized.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// OpenCode's session id.
    pub id: SessionId,
    /// Its title.
    pub title: RemoteText,
    /// Busy, idle or retrying.
    pub status: SessionStatus,
    /// Last update, unix ms.
    pub updated_ms: u64,
}

impl TryFrom<SessionInfo> for SessionRow {
    type Error = InvalidId;
    fn try_from(info: SessionInfo) -> Result<Self, InvalidId> {
        Ok(Self {
            id: SessionId::try_from(info.id)?,
            title: RemoteText::from(info.title),
            status: info.status,
            updated_ms: info.updated_ms,
        })
    }
}

/// State of the sessions screen.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionsView {
    /// The host.
    pub host: HostId,
    /// The workspace.
    pub workspace: WorkspaceName,
    /// Newest activity first.
    list: Option<Vec<SessionRow>>,
    /// Why the last refresh failed.
    pub error: Option<RemoteText>,
    /// Selection and filter.
    pub nav: ListNav,
    /// The session `D` was pressed on once; a second `D` on it deletes it.
    pub(super) delete_armed: Option<SessionId>,
}

impl SessionsView {
    /// A view of `workspace`'s sessions on `host`, loading.
    pub fn new(host: &HostId, workspace: WorkspaceName) -> Self {
        Self {
            host: host.clone(),
            workspace,
            list: None,
            error: None,
            nav: ListNav::default(),
            delete_armed: None,
        }
    }

    /// The workspace's watch key.
    pub fn watch(&self) -> WatchKey {
        WatchKey::new(&self.host, self.workspace.as_str())
    }

    /// The sessions, once loaded.
    pub fn list(&self) -> Option<&[SessionRow]> {
        self.list.as_deref()
    }

    /// The sessions that pass the filter.
    pub fn visible(&self) -> Vec<&SessionRow> {
        let filter = self.nav.filter();
        self.list
            .iter()
            .flatten()
            .filter(|s| list::matches(filter, &format!("{} {}", s.title, s.id)))
            .collect()
    }

    /// The selected session.
    pub fn selected(&self) -> Option<&SessionRow> {
        self.visible().get(self.nav.selected()).copied()
    }

    /// Selects the session `id`, if visible.
    pub fn select_id(&mut self, id: &str) {
        if let Some(i) = self.visible().iter().position(|s| s.id == id) {
            self.nav.select(i);
        }
    }

    /// A key on the sessions screen with list pages of `page` rows: moves, filters and arms a
    /// delete here, says what the app must do for the rest. No IO.
    pub fn update(&mut self, action: Action, page: usize) -> Outcome {
        let len = self.visible().len();
        match self.nav.key(action, len, page) {
            ListKey::Moved | ListKey::Handled => return Outcome::Stay,
            ListKey::Back => return Outcome::Back,
            ListKey::Other => {}
        }
        let selected = self.selected().cloned();
        match (action, selected) {
            (Action::Open, Some(row)) => Outcome::Open(row),
            (Action::NewSession, _) => Outcome::New,
            (Action::RenameSession | Action::DeleteSession, None) => Outcome::NothingSelected,
            (Action::RenameSession, Some(row)) => {
                self.delete_armed = None;
                Outcome::Rename(row)
            }
            // `D` twice on the same session deletes it; the first press only asks.
            (Action::DeleteSession, Some(row)) if self.delete_armed.as_ref() != Some(&row.id) => {
                self.delete_armed = Some(row.id.clone());
                Outcome::ConfirmDelete(row)
            }
            (Action::DeleteSession, Some(row)) => {
                self.delete_armed = None;
                Outcome::Delete(row)
            }
            _ => Outcome::Stay,
        }
    }

    /// Reading the list failed.
    pub fn failed(&mut self, e: &CallError) {
        self.error = Some(RemoteText::from(&e.message));
    }

    /// Shows `list` from the host, keeping the selection. Sessions whose id is not a valid id
    /// are left out (so no screen, call or row is ever made from one): returns how many, and
    /// why the first was refused.
    pub fn loaded(&mut self, list: Vec<SessionInfo>) -> Option<(usize, InvalidId)> {
        let mut rows = Vec::with_capacity(list.len());
        let mut refused: Option<(usize, InvalidId)> = None;
        for info in list {
            match SessionRow::try_from(info) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    let n = refused.as_ref().map_or(0, |(n, _)| *n);
                    refused = Some((n + 1, refused.map_or(e, |(_, first)| first)));
                }
            }
        }
        self.show(rows);
        refused
    }

    /// Shows `rows`, newest activity first, keeping the selection on the same session.
    fn show(&mut self, mut rows: Vec<SessionRow>) {
        let kept = self.selected().map(|s| s.id.clone());
        rows.sort_by(|a, b| b.updated_ms.cmp(&a.updated_ms).then(a.id.cmp(&b.id)));
        self.list = Some(rows);
        self.error = None;
        match kept {
            Some(id) if self.visible().iter().any(|s| s.id == id) => self.select_id(id.as_str()),
            _ => {
                let len = self.visible().len();
                self.nav.clamp(len);
            }
        }
    }

    /// Removes one session from the list.
    pub(super) fn remove(&mut self, id: &str) {
        if let Some(list) = self.list.as_ref() {
            let rest = list.iter().filter(|s| s.id != id).cloned().collect();
            self.show(rest);
        }
    }

    /// Inserts or updates one session (keeping the selection on the same session). An event
    /// naming a session with an invalid id changes nothing.
    pub(super) fn upsert(&mut self, info: SessionInfo) {
        let (Some(list), Ok(row)) = (self.list.as_ref(), SessionRow::try_from(info)) else {
            return;
        };
        let mut list = list.clone();
        match list.iter_mut().find(|s| s.id == row.id) {
            Some(existing) => *existing = row,
            None => list.push(row),
        }
        self.show(list);
    }

    fn set_status(&mut self, id: &str, status: SessionStatus) {
        if let Some(s) = self.list.iter_mut().flatten().find(|s| s.id == id) {
            s.status = status;
        }
    }

    /// Applies a workspace event to the list.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::SessionUpdated { session } => self.upsert(session.clone()),
            Event::SessionDeleted { session } => self.remove(session),
            Event::SessionStatus { session, status } => self.set_status(session, status.clone()),
            Event::SessionIdle { session } => self.set_status(session, SessionStatus::Idle),
            _ => {}
        }
    }
}

/// What the sessions view asks of the app after a key (the app owns the screens, the
/// notices and the connection).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Handled here (or nothing to do).
    Stay,
    /// Go back to the workspaces.
    Back,
    /// Open this session.
    Open(SessionRow),
    /// Open a new session (a draft until its first prompt).
    New,
    /// Rename or delete with no session selected.
    NothingSelected,
    /// Edit this session's title in the palette.
    Rename(SessionRow),
    /// Ask to press `D` again to delete this session.
    ConfirmDelete(SessionRow),
    /// Delete this session (`D` pressed twice on it).
    Delete(SessionRow),
}

impl App {
    /// The workspace of `watch` as a validated name; a notice saying why when the host sent a
    /// name that is not one.
    pub(super) fn decode_workspace(&mut self, watch: &WatchKey) -> Option<WorkspaceName> {
        match WorkspaceName::try_from(watch.workspace.as_str()) {
            Ok(name) => Some(name),
            Err(e) => {
                self.notify(format!("cannot open that workspace: {e}"), true);
                None
            }
        }
    }

    pub(super) fn sessions_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.list_page();
        let Some(view) = self.stack.sessions.as_mut() else {
            self.screen = Screen::Workspaces;
            return;
        };
        let watch = view.watch();
        match view.update(action, page) {
            Outcome::Stay => {}
            Outcome::Back => self.screen = Screen::Workspaces,
            Outcome::Open(s) => {
                self.open_session(&watch, s.id.as_str(), &s.title, Some(s.status), fx);
            }
            Outcome::New => self.open_draft(&watch, fx),
            Outcome::NothingSelected => self.notify("no session selected", false),
            Outcome::Rename(s) => self.rename_prompt(&s),
            Outcome::ConfirmDelete(s) => self.confirm_delete(&s),
            Outcome::Delete(s) => self.delete_session(&watch, &s, fx),
        }
    }

    pub(super) fn sessions_loaded(&mut self, scope: &Scope, list: Vec<SessionInfo>) {
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        let watch = WatchKey::new(&scope.host, ws);
        for s in &list {
            self.attention.set_title(&watch, &s.id, &s.title);
        }
        let refused = self
            .stack
            .sessions
            .as_mut()
            .filter(|v| v.watch() == watch)
            .and_then(|view| view.loaded(list));
        if let Some((n, e)) = refused {
            let n = crate::view::text::count(n, "session");
            self.notify(format!("{watch} sent {n} not shown: {e}"), true);
        }
    }

    /// `session_create` failed after its draft was left (the draft's own failure gives the
    /// prompt back instead).
    pub(super) fn create_failed(&mut self, e: &CallError) {
        self.notify(format!("no new session: {e}"), true);
    }

    pub(super) fn sessions_failed(&mut self, scope: &Scope, e: &CallError) {
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        let watch = WatchKey::new(&scope.host, ws);
        if let Some(view) = self.stack.sessions.as_mut().filter(|v| v.watch() == watch) {
            view.failed(e);
        }
    }

    /// A session the operator created: list it, open it, focus the prompt.
    /// `n`: the screen of a session not created yet, the prompt focused. Its first prompt
    /// creates it (see [`App::draft_created`]); leaving first creates nothing.
    fn open_draft(&mut self, watch: &WatchKey, fx: &mut Vec<Effect>) {
        let Some(workspace) = self.decode_workspace(watch) else {
            return;
        };
        self.screen = Screen::Session;
        let mut view =
            SessionView::new(&watch.host, workspace, SessionRef::Draft, NEW_SESSION_TITLE);
        view.loaded = true;
        view.focus = true;
        self.ensure_watch(watch, fx);
        self.stack.open_session(view);
    }

    /// The draft's `session_create` (request `request`) answered: it is a session now; its
    /// first prompt goes out.
    fn draft_created(&mut self, request: u64, info: &SessionInfo, fx: &mut Vec<Effect>) -> bool {
        if !self.is_draft_create(request) {
            return false;
        }
        let id = match SessionId::try_from(info.id.as_str()) {
            Ok(id) => id,
            Err(e) => {
                let e = CallError::transport(format!("the host named the new session badly: {e}"));
                self.prompt_failed(request, &e);
                return true;
            }
        };
        let Some(view) = self.stack.session.as_mut() else {
            return false;
        };
        view.id = SessionRef::Id(id);
        if !info.title.is_empty() {
            view.title = RemoteText::new(&info.title);
        }
        if let Some(out) = view.outbox.as_mut() {
            out.request = None;
            out.attempts = 0;
        }
        let watch = view.watch();
        self.attention.seen(&watch, &info.id);
        if let Some(list) = self.stack.sessions.as_mut().filter(|v| v.watch() == watch) {
            if list.list.is_none() {
                list.list = Some(Vec::new());
            }
            list.upsert(info.clone());
            list.select_id(&info.id);
        }
        self.flush_outbox(fx);
        true
    }

    /// Whether `request` is the draft session's `session_create`.
    pub(super) fn is_draft_create(&self, request: u64) -> bool {
        self.stack.session.as_ref().is_some_and(|v| {
            v.id.is_draft()
                && v.outbox
                    .as_ref()
                    .is_some_and(|o| o.request == Some(request))
        })
    }

    pub(super) fn session_created(
        &mut self,
        request: u64,
        scope: &Scope,
        info: SessionInfo,
        fx: &mut Vec<Effect>,
    ) {
        if self.draft_created(request, &info, fx) {
            return;
        }
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        // The draft was left before the session was there: list it, and say its first
        // prompt was not sent.
        let watch = WatchKey::new(&scope.host, ws);
        self.attention.set_title(&watch, &info.id, &info.title);
        if let Some(view) = self.stack.sessions.as_mut().filter(|v| v.watch() == watch) {
            if view.list.is_none() {
                view.list = Some(Vec::new());
            }
            view.upsert(info);
        }
        self.notify(
            "the new session was created after you left it; its prompt was not sent",
            false,
        );
    }

    /// Opens a session from anywhere (the attention panel): builds the stack below it.
    pub(super) fn go_to_session(
        &mut self,
        watch: &WatchKey,
        session: &str,
        title: &str,
        fx: &mut Vec<Effect>,
    ) {
        if self
            .stack
            .sessions
            .as_ref()
            .is_none_or(|s| &s.watch() != watch)
        {
            self.go_to_sessions(watch, fx);
        }
        if let Some(view) = self.stack.sessions.as_mut() {
            view.select_id(session);
        }
        self.open_session(watch, session, title, None, fx);
    }

    /// Shows session `id` (reusing its state if it is the one already open).
    pub(super) fn open_session(
        &mut self,
        watch: &WatchKey,
        id: &str,
        title: &str,
        status: Option<SessionStatus>,
        fx: &mut Vec<Effect>,
    ) {
        // The boundary: ids from the host are decoded here, before they name a screen.
        let Some(workspace) = self.decode_workspace(watch) else {
            return;
        };
        let session_id = match SessionId::try_from(id) {
            Ok(id) => id,
            Err(e) => {
                self.notify(format!("cannot open that session: {e}"), true);
                return;
            }
        };
        self.screen = Screen::Session;
        self.attention.seen(watch, id);
        if self
            .stack
            .session
            .as_ref()
            .is_some_and(|s| s.id == id && &s.watch() == watch)
        {
            return;
        }
        let mut view = SessionView::new(&watch.host, workspace, SessionRef::Id(session_id), title);
        if let Some(status) = status {
            view.status = status;
        }
        self.ensure_watch(watch, fx);
        view.history_request = self.request(
            Scope::session(&watch.host, &watch.workspace, id),
            Call::Messages(proto::ops::MessagesQuery::default()),
            fx,
        );
        self.stack.open_session(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::session_info;

    fn view() -> SessionsView {
        let demo = WorkspaceName::try_from("demo").expect("valid");
        SessionsView::new(&HostId::from("box"), demo)
    }

    #[test]
    fn the_sessions_view_arms_a_delete_and_hands_the_rest_to_the_app() {
        let mut v = view();
        assert_eq!(
            v.update(Action::DeleteSession, 10),
            Outcome::NothingSelected
        );
        assert_eq!(v.update(Action::NewSession, 10), Outcome::New);
        let refused = v.loaded(vec![
            session_info("ses_old", "old", 1_000_000, SessionStatus::Idle),
            session_info("ses_new", "new", 2_000_000, SessionStatus::Busy),
        ]);
        assert!(refused.is_none());
        let newest = v.selected().cloned().expect("a selection");
        assert_eq!(newest.id, "ses_new", "newest activity first");
        assert_eq!(v.update(Action::Open, 10), Outcome::Open(newest.clone()));

        assert_eq!(
            v.update(Action::DeleteSession, 10),
            Outcome::ConfirmDelete(newest.clone())
        );
        assert_eq!(v.update(Action::SelectNext, 10), Outcome::Stay);
        let old = v.selected().cloned().expect("a selection");
        assert_eq!(
            v.update(Action::DeleteSession, 10),
            Outcome::ConfirmDelete(old.clone()),
            "a D on another session asks again"
        );
        assert_eq!(v.update(Action::DeleteSession, 10), Outcome::Delete(old));
        assert_eq!(v.update(Action::Back, 10), Outcome::Back);

        v.failed(&CallError::transport("gone\u{1b}[2J"));
        assert_eq!(v.error.as_deref(), Some("gone"));
    }
}
