//! The screens under the overlays, as one typed stack: Hosts (always at the bottom) →
//! Workspaces → Sessions → Session → Diff, and Admin beside them. Each view owns its state.
//!
//! Going back shows the level below and keeps the views above it, so opening the same
//! workspace or session again finds it as it was (its prompt draft, its scroll); opening a
//! view at a level drops every view above that level. That rule lives here only.

use super::admin::AdminView;
use super::{DiffView, HostsView, SessionView, SessionsView, WorkspacesView};

/// The screen views that exist (shown or kept above the one shown).
#[derive(Debug, Clone, Default)]
pub(super) struct Stack {
    /// The relay's hosts (always there).
    pub(super) hosts: HostsView,
    /// One host's workspaces.
    pub(super) workspaces: Option<WorkspacesView>,
    /// One workspace's sessions.
    pub(super) sessions: Option<SessionsView>,
    /// One session.
    pub(super) session: Option<SessionView>,
    /// The open session's diff.
    pub(super) diff: Option<DiffView>,
    /// Relay administration, once opened (beside the others: it keeps its tab and rows while
    /// the operator goes back to the hosts).
    pub(super) admin: Option<AdminView>,
}

impl Stack {
    /// A host's workspaces, replacing every view above the hosts.
    pub(super) fn open_workspaces(&mut self, view: WorkspacesView) {
        self.workspaces = Some(view);
        self.sessions = None;
        self.session = None;
        self.diff = None;
    }

    /// A workspace's sessions, replacing the session and diff views.
    pub(super) fn open_sessions(&mut self, view: SessionsView) {
        self.sessions = Some(view);
        self.session = None;
        self.diff = None;
    }

    /// A session, replacing the diff view.
    pub(super) fn open_session(&mut self, view: SessionView) {
        self.session = Some(view);
        self.diff = None;
    }

    /// The open session's diff.
    pub(super) fn open_diff(&mut self, view: DiffView) {
        self.diff = Some(view);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::session::SessionRef;
    use proto::ids::{HostId, WorkspaceName};

    fn demo() -> WorkspaceName {
        WorkspaceName::try_from("demo").expect("valid")
    }

    #[test]
    fn opening_a_level_drops_the_views_above_it_and_keeps_those_below() {
        let host = HostId::from("box");
        let mut stack = Stack::default();
        stack.open_workspaces(WorkspacesView::new(&host));
        stack.open_sessions(SessionsView::new(&host, demo()));
        stack.open_session(SessionView::new(&host, demo(), SessionRef::Draft, "new"));
        assert!(stack.workspaces.is_some() && stack.sessions.is_some());
        assert!(stack.session.is_some());

        stack.open_sessions(SessionsView::new(&host, demo()));
        assert!(
            stack.session.is_none(),
            "a new sessions list drops the session"
        );
        assert!(stack.workspaces.is_some(), "the level below stays");

        stack.open_session(SessionView::new(&host, demo(), SessionRef::Draft, "new"));
        stack.open_workspaces(WorkspacesView::new(&HostId::from("other")));
        assert!(stack.sessions.is_none() && stack.session.is_none() && stack.diff.is_none());
    }
}
