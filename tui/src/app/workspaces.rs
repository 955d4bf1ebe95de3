//! The workspaces screen: one host's workspaces with root availability and OpenCode state,
//! starting and stopping OpenCode, and opening a workspace's sessions. Opening a host also
//! watches its workspaces, so their requests and failures reach the attention panel.

use super::attention::{Item, ItemKind};
use super::list::{self, ListKey, ListNav};
use super::workspace_detail::Detail;
use super::{App, Screen, SessionsView};
use crate::action::Action;
use crate::call::{Call, CallError, Scope, WatchKey};
use crate::effect::Effect;
use proto::ids::{HostId, WorkspaceName};
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

    fn replace(&mut self, list: Vec<WorkspaceInfo>) {
        let kept = self.selected().map(|w| w.name.clone());
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

impl App {
    pub(super) fn workspaces_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.list_page();
        let Some(view) = self.stack.workspaces.as_mut() else {
            self.screen = Screen::Hosts;
            return;
        };
        let len = view.visible().len();
        match view.nav.key(action, len, page) {
            ListKey::Moved => return self.fetch_workspace_detail(fx),
            ListKey::Handled => return,
            ListKey::Back => {
                self.screen = Screen::Hosts;
                return;
            }
            ListKey::Other => {}
        }
        let host = view.host.clone();
        let selected = view.selected().map(|w| w.name.clone());
        match action {
            Action::Open => {
                if let Some(name) = selected {
                    self.go_to_sessions(&WatchKey::new(&host, &name), fx);
                }
            }
            Action::RevokeAlways => self.revoke_workspace_grants(fx),
            Action::StartOpencode | Action::StopOpencode => {
                let Some(name) = selected else { return };
                if self.host(&host).is_some_and(|h| !h.online) {
                    let text = format!(
                        "host {host} is offline: OpenCode can be started or stopped once it is back"
                    );
                    self.notify(text, true);
                    return;
                }
                let (call, verb) = if action == Action::StartOpencode {
                    (Call::OpencodeStart, "starting")
                } else {
                    (Call::OpencodeStop, "stopping")
                };
                if self.act(Scope::workspace(&host, &name), call, fx).is_some() {
                    self.notify(format!("{verb} OpenCode in {name}…"), false);
                    self.ensure_watch(&WatchKey::new(&host, &name), fx);
                }
            }
            _ => {}
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
        // The boundary for workspace names: one that is not a valid name is neither listed
        // nor watched (the agent refuses such names in its config, so only a broken or
        // hostile host sends one).
        let (list, bad): (Vec<_>, Vec<_>) = list
            .into_iter()
            .partition(|w| WorkspaceName::try_from(w.name.as_str()).is_ok());
        if let Some(e) = bad
            .first()
            .and_then(|w| WorkspaceName::try_from(w.name.as_str()).err())
        {
            let n = crate::view::text::count(bad.len(), "workspace");
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
        if let Some(view) = self
            .stack
            .workspaces
            .as_mut()
            .filter(|v| v.host == scope.host)
        {
            view.replace(list);
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
            view.error = Some(RemoteText::from(&e.message));
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
