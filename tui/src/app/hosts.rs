//! The hosts screen: the relay's live host list, its selection (kept on the same host across
//! updates and reconnects) and filter, and opening a host's workspaces.

use super::list::{ListKey, ListNav};
use super::{App, Screen, SessionsView, WorkspacesView, list};
use crate::action::Action;
use crate::call::{Call, Scope};
use crate::effect::Effect;
use proto::ids::HostId;
use proto::message::{HostInfo, HostList};

/// Rows of the screen that are not list rows (table border and header, banner, status bar);
/// a page is the terminal height minus these.
pub const CHROME_ROWS: u16 = 5;

/// The last host list and when it arrived.
#[derive(Debug, Clone, PartialEq)]
struct Hosts {
    list: HostList,
    /// Local clock at arrival: heartbeat ages keep counting from the relay's clock plus the
    /// local time elapsed since, so a skewed local clock cannot make them wrong.
    received_at_ms: u64,
}

/// The text a host row is filtered by.
fn host_text(h: &HostInfo) -> String {
    match &h.status {
        Some(s) => format!("{} {} {}", h.host, s.hostname, s.os),
        None => h.host.to_string(),
    }
}

/// State of the hosts screen (always at the bottom of the stack).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostsView {
    /// `None` until the first list arrives ("loading" differs from "no hosts").
    list: Option<Hosts>,
    /// Selection and filter.
    pub nav: ListNav,
}

impl HostsView {
    /// A key on the hosts screen with list pages of `page` rows: moves and filters here,
    /// says what the app must do for the rest. No IO.
    pub fn update(&mut self, action: Action, page: usize) -> Outcome {
        let len = self.visible().len();
        match self.nav.key(action, len, page) {
            ListKey::Moved | ListKey::Handled => Outcome::Stay,
            // Esc drops a filter first, then quits.
            ListKey::Back => Outcome::Quit,
            ListKey::Other => match (action, self.selected()) {
                (Action::Open, Some(h)) => Outcome::Open(h.host.clone()),
                _ => Outcome::Stay,
            },
        }
    }

    /// Takes a new list that arrived at local time `now_ms`, keeping the selection on the
    /// same host if it is still there, else at the same position (clamped).
    pub fn loaded(&mut self, list: HostList, now_ms: u64) {
        let kept = self.selected().map(|h| h.host.clone());
        self.list = Some(Hosts {
            list,
            received_at_ms: now_ms,
        });
        match kept.and_then(|id| self.visible().iter().position(|h| h.host == id)) {
            Some(i) => self.nav.select(i),
            None => {
                let len = self.visible().len();
                self.nav.clamp(len);
            }
        }
    }

    /// All hosts, in the relay's order (empty until loaded).
    pub fn all(&self) -> &[HostInfo] {
        self.list.as_ref().map_or(&[], |h| h.list.hosts.as_slice())
    }

    /// The hosts that pass the filter.
    pub fn visible(&self) -> Vec<&HostInfo> {
        let filter = self.nav.filter();
        self.all()
            .iter()
            .filter(|h| list::matches(filter, &host_text(h)))
            .collect()
    }

    /// The selected host.
    pub fn selected(&self) -> Option<&HostInfo> {
        self.visible().get(self.nav.selected()).copied()
    }

    /// Selects `host`, if it is visible.
    pub fn select(&mut self, host: &HostId) {
        if let Some(i) = self.visible().iter().position(|h| &h.host == host) {
            self.nav.select(i);
        }
    }
}

/// What the hosts view asks of the app after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (or nothing to do).
    Stay,
    /// Leave the app (`Esc` with no filter).
    Quit,
    /// Open this host's workspaces.
    Open(HostId),
}

impl App {
    pub(super) fn hosts_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let page = self.list_page();
        match self.stack.hosts.update(action, page) {
            Outcome::Stay => {}
            Outcome::Quit => fx.push(Effect::Quit),
            Outcome::Open(host) => self.go_to_workspaces(&host, fx),
        }
    }

    /// Opens `host`'s workspaces screen (reusing its state if it is the one already open).
    pub(super) fn go_to_workspaces(&mut self, host: &HostId, fx: &mut Vec<Effect>) {
        self.screen = Screen::Workspaces;
        if self
            .stack
            .workspaces
            .as_ref()
            .is_some_and(|w| &w.host == host)
        {
            self.request(Scope::host(host), Call::WorkspaceList, fx);
            return;
        }
        self.stack.open_workspaces(WorkspacesView::new(host));
        self.stack.hosts.select(host);
        self.request(Scope::host(host), Call::WorkspaceList, fx);
    }

    /// Takes a new list, keeping the selection on the same host if it is still there, else
    /// at the same position (clamped). When the open host goes offline, says so; when it comes
    /// back, re-reads what its screens show as after a reconnect.
    pub(super) fn replace_hosts(&mut self, list: HostList, fx: &mut Vec<Effect>) {
        let open = self.stack.workspaces.as_ref().map(|w| w.host.clone());
        let was_online = open.as_ref().and_then(|h| self.host(h)).map(|h| h.online);
        self.stack.hosts.loaded(list, self.now_ms);
        let Some(open) = open else { return };
        let is_online = self.host(&open).map(|h| h.online);
        match (was_online, is_online) {
            (Some(false), Some(true)) => {
                self.notify(format!("host {open} is back online"), false);
                self.host_resync(&open, fx);
            }
            (Some(true) | None, Some(false)) => {
                self.notify(
                    format!("host {open} went offline — prompts will be queued until it is back"),
                    true,
                );
            }
            _ => {}
        }
    }

    /// The open host came back: re-read its workspaces, the open sessions list and session,
    /// and reopen its ended watches now (where they left off) instead of after their backoff.
    fn host_resync(&mut self, host: &HostId, fx: &mut Vec<Effect>) {
        if !self.is_connected() {
            return;
        }
        self.request(Scope::host(host), Call::WorkspaceList, fx);
        if let Some(watch) = self.stack.sessions.as_ref().map(SessionsView::watch) {
            self.request(watch.scope(), Call::SessionList, fx);
            self.request(watch.scope(), Call::PermissionList, fx);
        }
        self.session_reconnected(fx);
        self.diff_reconnected(fx);
        for (watch, state) in &mut self.watches {
            if &watch.host == host && !state.open {
                state.retry_at_ms = None;
                state.failures = 0;
                fx.push(Effect::Watch {
                    watch: watch.clone(),
                    after_seq: state.last_seq,
                });
            }
        }
    }

    /// The host the open screens are about (workspaces, sessions, session, diff) when the
    /// host list says it is offline.
    pub fn open_host_offline(&self) -> Option<&HostId> {
        if matches!(self.screen, Screen::Hosts | Screen::Admin) {
            return None;
        }
        let host = &self.stack.workspaces.as_ref()?.host;
        self.host(host).is_some_and(|h| !h.online).then_some(host)
    }

    /// The role from the grant on every host (`*`), as the last host list said.
    pub(super) fn global_role(&self) -> Option<proto::rbac::Role> {
        self.stack
            .hosts
            .list
            .as_ref()
            .and_then(|h| h.list.global_role)
    }

    /// Whether a host list has arrived yet.
    pub fn hosts_loaded(&self) -> bool {
        self.stack.hosts.list.is_some()
    }

    /// All hosts, in the relay's order (empty until loaded).
    pub fn hosts(&self) -> &[HostInfo] {
        self.stack.hosts.all()
    }

    /// The hosts that pass the filter.
    pub fn visible_hosts(&self) -> Vec<&HostInfo> {
        self.stack.hosts.visible()
    }

    /// The hosts list's selection and filter.
    pub fn host_nav(&self) -> &ListNav {
        &self.stack.hosts.nav
    }

    /// How many hosts are online.
    pub fn online_count(&self) -> usize {
        self.hosts().iter().filter(|h| h.online).count()
    }

    /// The selected row of the visible hosts, if there are any.
    pub fn selected(&self) -> Option<usize> {
        (!self.visible_hosts().is_empty()).then_some(self.stack.hosts.nav.selected())
    }

    /// The selected host.
    pub fn selected_host(&self) -> Option<&HostInfo> {
        self.stack.hosts.selected()
    }

    /// A host by id.
    pub fn host(&self, id: &HostId) -> Option<&HostInfo> {
        self.hosts().iter().find(|h| &h.host == id)
    }

    /// The relay's clock now, estimated from the last list's clock plus local time since; use
    /// it with heartbeat times, which are relay-clock values.
    pub fn relay_now_ms(&self) -> u64 {
        match &self.stack.hosts.list {
            Some(h) => h
                .list
                .now_ms
                .saturating_add(self.now_ms.saturating_sub(h.received_at_ms)),
            None => self.now_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::list;

    #[test]
    fn the_hosts_view_keeps_its_selection_and_hands_the_rest_to_the_app() {
        let mut v = HostsView::default();
        assert_eq!(v.update(Action::Open, 10), Outcome::Stay, "nothing loaded");
        v.loaded(list(&["alpha", "beta"]), 1_000);
        assert_eq!(v.update(Action::SelectNext, 10), Outcome::Stay);
        v.loaded(list(&["aardvark", "alpha", "beta"]), 2_000);
        assert_eq!(
            v.update(Action::Open, 10),
            Outcome::Open(HostId::from("beta")),
            "the selection stays on the same host"
        );
        assert_eq!(v.update(Action::Back, 10), Outcome::Quit);
    }
}
