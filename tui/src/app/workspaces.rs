//! The workspaces screen: one host's workspaces with root availability and OpenCode state,
//! starting and stopping OpenCode, and opening a workspace's sessions. Opening a host also
//! watches its workspaces, so their requests and failures reach the attention panel.

use super::attention::{Item, ItemKind};
use super::list::{self, ListKey, ListNav};
use super::workspace_detail::{Detail, DetailReply, Loadable};
use super::{App, Screen, SessionsView};
use crate::action::Action;
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use proto::ids::{HostId, InvalidId, WorkspaceName};
use proto::ops::{OpencodeInfo, OpencodeState, WorkspaceInfo};
use proto::text::RemoteText;
use std::collections::HashMap;

/// State of the workspaces screen.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspacesView {
    /// The host.
    pub host: HostId,
    list: Option<Vec<WorkspaceInfo>>,
    /// Why the last refresh failed.
    pub error: Option<RemoteText>,
    /// Selection and filter.
    pub nav: ListNav,
    /// Folders and git status per workspace, once asked for.
    pub(super) details: HashMap<String, Detail>,
    /// The workspace to select once the next list arrives (one just added).
    pub(super) select_after_load: Option<String>,
}

impl WorkspacesView {
    /// A view of `host`'s workspaces, loading.
    pub fn new(host: &HostId) -> Self {
        Self {
            host: host.clone(),
            list: None,
            error: None,
            nav: ListNav::default(),
            details: HashMap::new(),
            select_after_load: None,
        }
    }

    /// The folders and git status of workspace `name`, once asked for.
    pub fn detail(&self, name: &str) -> Option<&Detail> {
        self.details.get(name)
    }

    /// The workspaces, once loaded.
    pub fn list(&self) -> Option<&[WorkspaceInfo]> {
        self.list.as_deref()
    }

    /// The workspaces that pass the filter.
    pub fn visible(&self) -> Vec<&WorkspaceInfo> {
        let filter = self.nav.filter();
        self.list
            .iter()
            .flatten()
            .filter(|w| list::matches(filter, &w.name))
            .collect()
    }

    /// The selected workspace.
    pub fn selected(&self) -> Option<&WorkspaceInfo> {
        self.visible().get(self.nav.selected()).copied()
    }

    /// Selects the workspace called `name`, if it is visible.
    pub fn select_name(&mut self, name: &str) {
        if let Some(i) = self.visible().iter().position(|w| w.name == name) {
            self.nav.select(i);
        }
    }

    /// A key on the workspaces screen with list pages of `page` rows: moves and filters here,
    /// says what the app must do for the rest. No IO.
    pub fn update(&mut self, action: Action, page: usize) -> Outcome {
        let len = self.visible().len();
        match self.nav.key(action, len, page) {
            ListKey::Moved => return Outcome::Moved,
            ListKey::Handled => return Outcome::Stay,
            ListKey::Back => return Outcome::Back,
            ListKey::Other => {}
        }
        let Some(name) = self.selected().map(|w| w.name.clone()) else {
            return Outcome::Stay;
        };
        match action {
            Action::Open => Outcome::Open(name),
            Action::RevokeAlways => Outcome::Revoke {
                ids: self.standing_grant_ids(&name),
                workspace: name,
            },
            Action::StartOpencode => Outcome::Opencode {
                workspace: name,
                start: true,
            },
            Action::StopOpencode => Outcome::Opencode {
                workspace: name,
                start: false,
            },
            _ => Outcome::Stay,
        }
    }

    /// The ids of workspace `name`'s standing grants, as far as they are loaded.
    fn standing_grant_ids(&self, name: &str) -> Vec<String> {
        match self.details.get(name).map(|d| &d.grants) {
            Some(Loadable::Ready(grants)) => grants.iter().map(|g| g.id.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// An answer for workspace `name`'s details, if they were asked for.
    pub fn detail_replied(&mut self, name: &str, reply: DetailReply) {
        if let Some(d) = self.details.get_mut(name) {
            d.replied(reply);
        }
    }

    /// The list from the host (its names already decoded by [`decode`]).
    pub fn loaded(&mut self, list: Vec<WorkspaceInfo>) {
        self.replace(list);
    }

    /// Reading the list failed.
    pub fn failed(&mut self, e: &CallError) {
        self.error = Some(RemoteText::from(&e.message));
    }

    fn replace(&mut self, list: Vec<WorkspaceInfo>) {
        let wanted = self.select_after_load.take();
        let kept = wanted.or_else(|| self.selected().map(|w| w.name.clone()));
        self.list = Some(list);
        // A fresh list (opened again, reconnected): read the details again too.
        self.details.clear();
        self.error = None;
        match kept {
            Some(name) if self.visible().iter().any(|w| w.name == name) => self.select_name(&name),
            _ => {
                let len = self.visible().len();
                self.nav.clamp(len);
            }
        }
    }

    fn set_opencode(&mut self, info: &OpencodeInfo) {
        if let Some(w) = self
            .list
            .iter_mut()
            .flatten()
            .find(|w| w.name == info.workspace)
        {
            w.opencode = info.clone();
        }
    }
}

/// What the workspaces view asks of the app after a key (the app owns the screens, the
/// watches and the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (or nothing to do).
    Stay,
    /// The selection moved: read the newly selected workspace's details.
    Moved,
    /// Go back to the hosts.
    Back,
    /// Open this workspace's sessions.
    Open(String),
    /// Revoke these standing grants of `workspace` (empty: none are known).
    Revoke {
        /// The workspace.
        workspace: String,
        /// The grants' ids.
        ids: Vec<String>,
    },
    /// Start (or stop) OpenCode in `workspace`.
    Opencode {
        /// The workspace.
        workspace: String,
        /// Start rather than stop.
        start: bool,
    },
}

/// The boundary for workspace names: one that is not a valid name is neither listed nor
/// watched (the agent refuses such names in its config, so only a broken or hostile host sends
/// one). Returns the valid ones, and how many were refused and why the first was.
pub(super) fn decode(list: Vec<WorkspaceInfo>) -> (Vec<WorkspaceInfo>, Option<(usize, InvalidId)>) {
    let mut kept = Vec::with_capacity(list.len());
    let mut refused: Option<(usize, InvalidId)> = None;
    for w in list {
        match WorkspaceName::try_from(w.name.as_str()) {
            Ok(_) => kept.push(w),
            Err(e) => {
                let n = refused.as_ref().map_or(0, |(n, _)| *n);
                refused = Some((n + 1, refused.map_or(e, |(_, first)| first)));
            }
        }
    }
    (kept, refused)
}

impl App {
    pub(super) fn workspaces_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.list_page();
        let Some(view) = self.stack.workspaces.as_mut() else {
            self.screen = Screen::Hosts;
            return;
        };
        let host = view.host.clone();
        match view.update(action, page) {
            Outcome::Stay => {}
            Outcome::Moved => self.fetch_workspace_detail(fx),
            Outcome::Back => self.screen = Screen::Hosts,
            Outcome::Open(name) => self.go_to_sessions(&WatchKey::new(&host, &name), fx),
            Outcome::Revoke { workspace, ids } => {
                self.revoke_workspace_grants(&host, &workspace, ids, fx);
            }
            Outcome::Opencode { workspace, start } => {
                self.start_or_stop_opencode(&host, &workspace, start, fx);
            }
        }
    }

    fn start_or_stop_opencode(
        &mut self,
        host: &HostId,
        name: &str,
        start: bool,
        fx: &mut Vec<Effect>,
    ) {
        if self.host(host).is_some_and(|h| !h.online) {
            let text = format!(
                "host {host} is offline: OpenCode can be started or stopped once it is back"
            );
            self.notify(text, true);
            return;
        }
        let (call, verb) = if start {
            (Call::OpencodeStart, "starting")
        } else {
            (Call::OpencodeStop, "stopping")
        };
        if self.act(Scope::workspace(host, name), call, fx).is_some() {
            self.notify(format!("{verb} OpenCode in {name}…"), false);
            self.ensure_watch(&WatchKey::new(host, name), fx);
        }
    }

    /// Opens a workspace's sessions screen (reusing its state if it is the one already open).
    pub(super) fn go_to_sessions(&mut self, watch: &WatchKey, fx: &mut Vec<Effect>) {
        if self
            .stack
            .workspaces
            .as_ref()
            .is_none_or(|w| w.host != watch.host)
        {
            self.go_to_workspaces(&watch.host, fx);
        }
        if let Some(view) = self.stack.workspaces.as_mut() {
            view.select_name(&watch.workspace);
        }
        let Some(workspace) = self.decode_workspace(watch) else {
            return;
        };
        self.screen = Screen::Sessions;
        if self
            .stack
            .sessions
            .as_ref()
            .is_none_or(|s| &s.watch() != watch)
        {
            self.stack
                .open_sessions(SessionsView::new(&watch.host, workspace));
        }
        self.ensure_watch(watch, fx);
        self.request(watch.scope(), Call::SessionList, fx);
        self.request(watch.scope(), Call::PermissionList, fx);
    }

    pub(super) fn workspaces_loaded(
        &mut self,
        scope: &Scope,
        list: Vec<WorkspaceInfo>,
        fx: &mut Vec<Effect>,
    ) {
        let (list, refused) = decode(list);
        if let Some((n, e)) = refused {
            let n = crate::view::text::count(n, "workspace");
            self.notify(format!("{} sent {n} not shown: {e}", scope.host), true);
        }
        for w in &list {
            let watch = WatchKey::new(&scope.host, &w.name);
            self.opencode_attention(&watch, &w.opencode);
            if w.available {
                let new = !self.watches.contains_key(&watch);
                self.ensure_watch(&watch, fx);
                if new && w.opencode.state == OpencodeState::Ready {
                    self.request(watch.scope(), Call::PermissionList, fx);
                }
            }
        }
        // Which templates are out of date needs the relay's list.
        let templated = list.iter().any(|w| w.template.is_some());
        if let Some(view) = self
            .stack
            .workspaces
            .as_mut()
            .filter(|v| v.host == scope.host)
        {
            view.loaded(list);
            if templated {
                self.ask_templates(fx);
            }
        }
        if self.screen == Screen::Workspaces {
            self.fetch_workspace_detail(fx);
        }
    }

    pub(super) fn workspaces_failed(&mut self, scope: &Scope, e: &CallError) {
        if let Some(view) = self
            .stack
            .workspaces
            .as_mut()
            .filter(|v| v.host == scope.host)
        {
            view.failed(e);
        }
    }

    /// A workspace's OpenCode changed (an answer to start/stop, or an event).
    pub(super) fn opencode_changed(&mut self, host: &HostId, info: &OpencodeInfo) {
        let watch = WatchKey::new(host, &info.workspace);
        self.opencode_attention(&watch, info);
        if let Some(view) = self.stack.workspaces.as_mut().filter(|v| &v.host == host) {
            view.set_opencode(info);
        }
    }

    fn opencode_attention(&mut self, watch: &WatchKey, info: &OpencodeInfo) {
        if info.state == OpencodeState::Failed {
            let kind = ItemKind::OpencodeFailed {
                error: info.last_error.as_deref().map(RemoteText::new),
            };
            self.raise(Item::new(watch, kind, self.now_ms));
        } else {
            self.attention.set_opencode(watch, info, self.now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::workspace;

    #[test]
    fn the_workspaces_view_moves_itself_and_hands_the_rest_to_the_app() {
        let mut v = WorkspacesView::new(&HostId::from("box"));
        assert_eq!(v.update(Action::Open, 10), Outcome::Stay, "nothing loaded");
        v.loaded(vec![
            workspace("api", OpencodeState::Ready),
            workspace("web", OpencodeState::Stopped),
        ]);
        assert_eq!(v.update(Action::SelectNext, 10), Outcome::Moved);
        assert_eq!(v.update(Action::Open, 10), Outcome::Open("web".into()));
        assert_eq!(
            v.update(Action::StartOpencode, 10),
            Outcome::Opencode {
                workspace: "web".into(),
                start: true
            }
        );
        assert_eq!(
            v.update(Action::RevokeAlways, 10),
            Outcome::Revoke {
                workspace: "web".into(),
                ids: Vec::new()
            },
            "no grants known yet"
        );
        assert_eq!(v.update(Action::Back, 10), Outcome::Back);

        v.failed(&CallError::transport("gone\u{1b}[2J"));
        assert_eq!(v.error.as_deref(), Some("gone"));
        v.loaded(vec![workspace("web", OpencodeState::Ready)]);
        assert_eq!(v.error, None, "a fresh list clears the error");
        assert_eq!(v.selected().map(|w| w.name.as_str()), Some("web"));
    }

    #[test]
    fn the_workspaces_view_takes_the_details_it_asked_for() {
        let grant = |id: &str| proto::grant::StandingGrant {
            id: id.into(),
            session: "ses_1".into(),
            permission: "bash".into(),
            patterns: vec!["echo *".into()],
            granted_by: proto::ids::UserId::from("alice"),
            granted_at_ms: 0,
            uses: 0,
        };
        let mut v = WorkspacesView::new(&HostId::from("box"));
        v.loaded(vec![workspace("web", OpencodeState::Ready)]);
        v.detail_replied("web", DetailReply::Grants(Ok(vec![grant("g1")])));
        assert!(v.detail("web").is_none(), "not asked for: not kept");

        v.details.insert(
            "web".into(),
            Detail {
                folders: Loadable::Loading,
                git: Loadable::Loading,
                grants: Loadable::Loading,
            },
        );
        v.detail_replied(
            "web",
            DetailReply::Grants(Ok(vec![grant("g1"), grant("g2")])),
        );
        v.detail_replied("web", DetailReply::Git(Err(RemoteText::new("not a repo"))));
        v.detail_replied("web", DetailReply::Revoked("g1".into()));
        let d = v.detail("web").expect("asked for");
        assert_eq!(d.grants, Loadable::Ready(vec![grant("g2")]));
        assert_eq!(d.git, Loadable::Failed(RemoteText::new("not a repo")));
        assert_eq!(d.folders, Loadable::Loading);
        assert_eq!(
            v.clone().update(Action::RevokeAlways, 10),
            Outcome::Revoke {
                workspace: "web".into(),
                ids: vec!["g2".into()]
            }
        );
    }

    #[test]
    fn workspaces_with_invalid_names_are_left_out_at_the_boundary() {
        let (kept, refused) = decode(vec![
            workspace("ok", OpencodeState::Ready),
            workspace("../etc", OpencodeState::Ready),
            workspace("a/b", OpencodeState::Ready),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(refused.map(|(n, _)| n), Some(2));
    }
}
