//! Folders beneath workspace roots as workspaces: `f` on the workspaces screen opens the
//! folders panel, which lists the host's `workspace_candidates` (root, folder, git branch,
//! and the workspace a folder already is). Enter on a folder that is no workspace asks for
//! the new workspace's name (the folder's by default) and runs `workspace_add`; the list of
//! workspaces is then read again and the new one selected. `x` on a folder that is a
//! workspace asks, and Enter runs `workspace_remove` (the host forgets it; its files stay).

use super::App;
use super::overlay::Overlay;
use super::workspace_detail::Loadable;
use crate::action::Action;
use crate::call::{Call, CallError, Scope};
use crate::effect::Effect;
use proto::ids::HostId;
use proto::ops::WorkspaceInfo;
use proto::text::RemoteText;
use proto::workspace::{WorkspaceAdd, WorkspaceCandidate, WorkspaceCandidates};

/// What the panel is doing besides listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldersMode {
    /// Moving through the list.
    Browse,
    /// Typing the name of the workspace `folder` (beneath `root`) becomes.
    Naming {
        /// The root holding the folder.
        root: String,
        /// The folder.
        folder: String,
        /// The name typed (the folder's to begin with).
        name: String,
        /// What is wrong with the name, when Enter found something.
        problem: Option<String>,
    },
    /// Asking whether to forget this workspace (Enter confirms).
    ConfirmRemove(String),
    /// `workspace_add` or `workspace_remove` (request id) awaits its answer.
    Busy(u64),
}

/// The folders panel of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldersPanel {
    /// The host.
    pub host: HostId,
    /// The candidates, as far as read.
    pub list: Option<Loadable<WorkspaceCandidates>>,
    /// The `workspace_candidates` request awaited.
    request: Option<u64>,
    /// The highlighted row.
    pub cursor: usize,
    /// What the panel is doing.
    pub mode: FoldersMode,
    /// The last refusal of an add or a remove (the host's words).
    pub refusal: Option<RemoteText>,
}

/// What a key on the panel asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldersOutcome {
    /// Handled here.
    Stay,
    /// Close the panel.
    Close,
    /// Read the candidates again.
    Refresh,
    /// Make `folder` beneath `root` a workspace.
    Add {
        /// The root (the call's workspace).
        root: String,
        /// The call's body.
        body: WorkspaceAdd,
    },
    /// Forget this workspace.
    Remove(String),
}

impl FoldersPanel {
    /// The panel of `host`, nothing read yet.
    pub fn new(host: &HostId) -> Self {
        Self {
            host: host.clone(),
            list: None,
            request: None,
            cursor: 0,
            mode: FoldersMode::Browse,
            refusal: None,
        }
    }

    /// The candidates, once read.
    pub fn ready(&self) -> Option<&[WorkspaceCandidate]> {
        match &self.list {
            Some(Loadable::Ready(list)) => Some(&list.candidates),
            _ => None,
        }
    }

    /// The highlighted candidate.
    pub fn selected(&self) -> Option<&WorkspaceCandidate> {
        self.ready()?.get(self.cursor)
    }

    /// Whether the name of a new workspace is being typed (keys type text).
    pub fn naming(&self) -> bool {
        matches!(self.mode, FoldersMode::Naming { .. })
    }

    /// Starts naming the workspace `folder` beneath `root` becomes.
    pub fn name_folder(&mut self, root: &str, folder: &str) {
        self.refusal = None;
        self.mode = FoldersMode::Naming {
            root: root.to_owned(),
            folder: folder.to_owned(),
            name: folder.chars().filter(|c| !c.is_control()).collect(),
            problem: None,
        };
    }

    /// A key (`action`) or a typed character. No IO.
    pub fn update(&mut self, action: Option<Action>, typed: Option<char>) -> FoldersOutcome {
        if let FoldersMode::Naming {
            root,
            folder,
            name,
            problem,
        } = &mut self.mode
        {
            match action {
                Some(Action::LeaveInput | Action::Back) => self.mode = FoldersMode::Browse,
                Some(Action::DeleteBack) => {
                    name.pop();
                    *problem = None;
                }
                Some(Action::ClearLine) => {
                    name.clear();
                    *problem = None;
                }
                Some(Action::Send) => {
                    let typed = name.trim();
                    if typed.is_empty() {
                        *problem = Some("type the new workspace's name".into());
                        return FoldersOutcome::Stay;
                    }
                    let body = WorkspaceAdd {
                        folder: folder.clone(),
                        name: (typed != folder.as_str()).then(|| typed.to_owned()),
                    };
                    return FoldersOutcome::Add {
                        root: root.clone(),
                        body,
                    };
                }
                _ => {
                    if let Some(c) = typed.filter(|c| !c.is_control()) {
                        name.push(c);
                        *problem = None;
                    }
                }
            }
            return FoldersOutcome::Stay;
        }
        let Some(action) = action else {
            return FoldersOutcome::Stay;
        };
        let last = self.ready().map_or(0, |l| l.len().saturating_sub(1));
        let confirming = matches!(self.mode, FoldersMode::ConfirmRemove(_));
        match action {
            Action::SelectPrev => self.cursor = self.cursor.saturating_sub(1),
            Action::SelectNext => self.cursor = (self.cursor + 1).min(last),
            Action::SelectFirst => self.cursor = 0,
            Action::SelectLast => self.cursor = last,
            Action::Refresh => return FoldersOutcome::Refresh,
            Action::Back if confirming => self.mode = FoldersMode::Browse,
            Action::Back => return FoldersOutcome::Close,
            _ if matches!(self.mode, FoldersMode::Busy(_)) => return FoldersOutcome::Stay,
            Action::Open => {
                if let FoldersMode::ConfirmRemove(name) = &self.mode {
                    let name = name.clone();
                    self.mode = FoldersMode::Browse;
                    return FoldersOutcome::Remove(name);
                }
                let Some(c) = self.selected().cloned() else {
                    return FoldersOutcome::Stay;
                };
                match &c.workspace {
                    Some(w) => {
                        self.refusal = Some(RemoteText::new(&format!(
                            "{}/{} is already the workspace {w}; x forgets it",
                            c.root, c.folder
                        )));
                    }
                    None => self.name_folder(&c.root, &c.folder),
                }
                return FoldersOutcome::Stay;
            }
            Action::RemoveWorkspace => {
                let Some(c) = self.selected() else {
                    return FoldersOutcome::Stay;
                };
                match c.workspace.clone() {
                    Some(w) => {
                        self.refusal = None;
                        self.mode = FoldersMode::ConfirmRemove(w);
                    }
                    None => {
                        self.refusal = Some(RemoteText::new(&format!(
                            "{}/{} is no workspace: Enter adds it",
                            c.root, c.folder
                        )));
                    }
                }
                return FoldersOutcome::Stay;
            }
            _ => return FoldersOutcome::Stay,
        }
        if confirming && !matches!(action, Action::Back) {
            self.mode = FoldersMode::Browse;
        }
        FoldersOutcome::Stay
    }
}

impl App {
    /// The folders panel, while open.
    pub fn folders_panel(&self) -> Option<&FoldersPanel> {
        self.folders.as_ref()
    }

    /// Whether the folders panel is the overlay on screen.
    pub fn folders_visible(&self) -> bool {
        self.overlay == Some(Overlay::Folders) && self.folders.is_some()
    }

    /// `f` on the workspaces screen: the host's folders panel.
    pub(super) fn open_folders(&mut self, fx: &mut Vec<Effect>) {
        let Some(host) = self.stack.workspaces.as_ref().map(|v| v.host.clone()) else {
            return;
        };
        self.read_candidates(&host, fx);
        if let Some(p) = self.folders.as_mut() {
            if !matches!(p.mode, FoldersMode::Busy(_)) {
                p.mode = FoldersMode::Browse;
            }
            p.refusal = None;
        }
        self.overlay = Some(Overlay::Folders);
    }

    /// Reads `host`'s candidates (the panel's state kept for it, not shown).
    pub(super) fn read_candidates(&mut self, host: &HostId, fx: &mut Vec<Effect>) {
        if self.folders.as_ref().is_none_or(|p| &p.host != host) {
            self.folders = Some(FoldersPanel::new(host));
        }
        self.ask_candidates(fx);
    }

    /// The clone just finished can become a workspace: the panel opens on its name.
    pub(super) fn add_cloned(&mut self, root: &str, folder: &str, fx: &mut Vec<Effect>) {
        self.open_folders(fx);
        if let Some(p) = self.folders.as_mut() {
            p.name_folder(root, folder);
        }
    }

    /// Whether a folder cloned beneath `root` on `host` may become a workspace: unknown (no
    /// candidates read) counts as yes, and the host refuses with its reason.
    pub fn subworkspaces_allowed(&self, host: &HostId, root: &str) -> bool {
        match self.folders.as_ref().filter(|p| &p.host == host) {
            Some(p) => p
                .ready()
                .is_none_or(|list| list.iter().any(|c| c.root == root)),
            None => true,
        }
    }

    /// Asks the host for its candidates (once at a time).
    pub(super) fn ask_candidates(&mut self, fx: &mut Vec<Effect>) {
        let Some(host) = self.folders.as_ref().map(|p| p.host.clone()) else {
            return;
        };
        if self.folders.as_ref().is_some_and(|p| p.request.is_some()) {
            return;
        }
        let id = self.request(Scope::host(&host), Call::WorkspaceCandidates, fx);
        if let Some(p) = self.folders.as_mut() {
            p.request = id;
            if id.is_some() && p.list.is_none() {
                p.list = Some(Loadable::Loading);
            }
        }
    }

    /// `workspace_candidates` answered (or failed).
    pub(super) fn candidates_loaded(
        &mut self,
        request: u64,
        result: Result<WorkspaceCandidates, &CallError>,
    ) {
        let Some(p) = self.folders.as_mut().filter(|p| p.request == Some(request)) else {
            return;
        };
        p.request = None;
        p.list = Some(match result {
            Ok(list) => Loadable::Ready(list),
            Err(e) => Loadable::Failed(RemoteText::new(&e.message)),
        });
        let last = p.ready().map_or(0, |l| l.len().saturating_sub(1));
        p.cursor = p.cursor.min(last);
    }

    /// A key while the panel is on screen.
    pub(super) fn folders_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        if action == Some(Action::Quit) {
            fx.push(Effect::Quit);
            return;
        }
        let Some(panel) = self.folders.as_mut() else {
            self.overlay = None;
            return;
        };
        let host = panel.host.clone();
        match panel.update(action, typed) {
            FoldersOutcome::Stay => {}
            FoldersOutcome::Close => self.overlay = None,
            FoldersOutcome::Refresh => self.ask_candidates(fx),
            FoldersOutcome::Add { root, body } => {
                let call = Call::WorkspaceAdd(body);
                self.folders_call(Scope::workspace(&host, &root), call, fx);
            }
            FoldersOutcome::Remove(name) => {
                self.folders_call(Scope::workspace(&host, &name), Call::WorkspaceRemove, fx);
            }
        }
    }

    fn folders_call(&mut self, scope: Scope, call: Call, fx: &mut Vec<Effect>) {
        if self.host(&scope.host).is_some_and(|h| !h.online) {
            let text = format!("host {} is offline: try once it is back", scope.host);
            if let Some(p) = self.folders.as_mut() {
                p.refusal = Some(RemoteText::new(&text));
            }
            return;
        }
        let id = self.act(scope, call, fx);
        if let (Some(p), Some(id)) = (self.folders.as_mut(), id) {
            p.mode = FoldersMode::Busy(id);
        }
    }

    /// `workspace_add` answered: the workspaces are read again and the new one selected.
    pub(super) fn workspace_added(
        &mut self,
        request: u64,
        scope: &Scope,
        info: &WorkspaceInfo,
        fx: &mut Vec<Effect>,
    ) {
        let name = crate::view::text::sanitize(&info.name);
        self.notify(format!("{name} is now a workspace"), false);
        if let Some(p) = self
            .folders
            .as_mut()
            .filter(|p| p.mode == FoldersMode::Busy(request))
        {
            // Done here: the workspaces screen shows the new one selected.
            p.mode = FoldersMode::Browse;
            if self.overlay == Some(Overlay::Folders) {
                self.overlay = None;
            }
        }
        self.ask_candidates(fx);
        self.reload_workspaces(&scope.host, Some(info.name.clone()), fx);
    }

    /// `workspace_remove` answered: the list of workspaces and candidates is read again.
    pub(super) fn workspace_removed(
        &mut self,
        request: u64,
        scope: &Scope,
        done: &proto::workspace::WorkspaceRemoved,
        fx: &mut Vec<Effect>,
    ) {
        use crate::view::text::sanitize;
        self.notify(
            format!(
                "workspace {} forgotten; its files stay in {}/{}",
                sanitize(&done.name),
                sanitize(&done.root),
                sanitize(&done.folder)
            ),
            false,
        );
        if let Some(p) = self
            .folders
            .as_mut()
            .filter(|p| p.mode == FoldersMode::Busy(request))
        {
            p.mode = FoldersMode::Browse;
        }
        self.ask_candidates(fx);
        self.reload_workspaces(&scope.host, None, fx);
    }

    /// `workspace_add` or `workspace_remove` refused: the panel (or a notice) says why.
    pub(super) fn folders_call_failed(&mut self, request: u64, what: &str, e: &CallError) {
        let text = format!("{what}: {e}");
        match self
            .folders
            .as_mut()
            .filter(|p| p.mode == FoldersMode::Busy(request))
        {
            Some(p) => {
                p.mode = FoldersMode::Browse;
                p.refusal = Some(RemoteText::new(&text));
                if !self.folders_visible() {
                    self.notify(text, true);
                }
            }
            None => self.notify(text, true),
        }
    }

    fn reload_workspaces(&mut self, host: &HostId, select: Option<String>, fx: &mut Vec<Effect>) {
        if let Some(view) = self.stack.workspaces.as_mut().filter(|v| &v.host == host) {
            if select.is_some() {
                view.select_after_load = select;
            }
            self.request(Scope::host(host), Call::WorkspaceList, fx);
        }
    }
}
