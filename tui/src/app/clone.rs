//! Cloning a repository from the workspaces screen: `c` opens a small form (URL, folder; the
//! folder follows the URL's last path segment until edited), Enter starts `git_clone` beneath
//! the selected workspace's root as a stream, whose progress (phase, percent, bytes) the form
//! then shows; Esc aborts a running clone (the stream is closed: the host removes the partial
//! folder) and says so. The form's state lives in the app, so a clone keeps its progress when
//! another overlay covers it; `c` shows it again.

use super::overlay::Overlay;
use super::{App, Screen};
use crate::action::Action;
use crate::call::{CallError, Scope, StreamCall};
use crate::effect::Effect;
use proto::git::{GitClone, GitCloneEvent, GitCloned, GitProgress};
use proto::ids::HostId;
use proto::text::RemoteText;

/// The form's field being typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The remote's URL.
    Url,
    /// The new folder beneath the root.
    Folder,
}

/// Where a clone is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneStage {
    /// The form is being filled in.
    Editing,
    /// Asked for (stream `id`): `dir` once the host accepted, the last progress reported.
    Running {
        /// The stream's id.
        id: u64,
        /// The folder the host created, once accepted.
        dir: Option<String>,
        /// The last progress report.
        progress: Option<GitProgress>,
    },
    /// Finished.
    Done(GitCloned),
    /// Refused or failed (the host removed the folder).
    Failed(RemoteText),
}

/// The clone form and the clone it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneForm {
    /// The host.
    pub host: HostId,
    /// The workspace beneath whose root the clone goes.
    pub workspace: String,
    /// The URL typed.
    pub url: String,
    /// The folder typed (or derived from the URL until edited).
    pub folder: String,
    /// Whether the folder was typed (it no longer follows the URL).
    folder_typed: bool,
    /// The field with the cursor.
    pub field: Field,
    /// What is wrong with the form, when Enter found something.
    pub problem: Option<String>,
    /// Where the clone is.
    pub stage: CloneStage,
}

/// The folder a clone of `url` gets by default: the last path segment without `.git`
/// (`https://h/org/lib.git` → `lib`, `git@h:org/lib` → `lib`).
pub fn default_folder(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    let last = trimmed
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .trim_end_matches(".git");
    last.chars().filter(|c| !c.is_control()).collect()
}

/// What a key on the form asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOutcome {
    /// Handled here.
    Stay,
    /// Close the form (nothing runs).
    Close,
    /// Start this clone.
    Start(GitClone),
    /// Abort the running clone with this stream id.
    Abort(u64),
}

impl CloneForm {
    /// An empty form for a clone beneath `workspace`'s root on `host`.
    pub fn new(host: &HostId, workspace: &str) -> Self {
        Self {
            host: host.clone(),
            workspace: workspace.to_owned(),
            url: String::new(),
            folder: String::new(),
            folder_typed: false,
            field: Field::Url,
            problem: None,
            stage: CloneStage::Editing,
        }
    }

    /// Whether the form is being filled in (its keys type text).
    pub fn editing(&self) -> bool {
        self.stage == CloneStage::Editing
    }

    /// The running clone's stream id.
    pub fn running(&self) -> Option<u64> {
        match self.stage {
            CloneStage::Running { id, .. } => Some(id),
            _ => None,
        }
    }

    /// A key (`action`) or a typed character. No IO.
    pub fn update(&mut self, action: Option<Action>, typed: Option<char>) -> FormOutcome {
        if !self.editing() {
            return self.finished_key(action);
        }
        match action {
            Some(Action::LeaveInput | Action::Back) => return FormOutcome::Close,
            Some(Action::CursorDown | Action::CursorUp) => {
                self.field = match self.field {
                    Field::Url => Field::Folder,
                    Field::Folder => Field::Url,
                };
            }
            Some(Action::DeleteBack) => {
                self.text_mut().pop();
                self.edited();
            }
            Some(Action::ClearLine) => {
                self.text_mut().clear();
                self.edited();
            }
            Some(Action::Send) => return self.submit(),
            _ => {
                if let Some(c) = typed {
                    self.text_mut().push(c);
                    self.edited();
                }
            }
        }
        FormOutcome::Stay
    }

    /// Pasted text: its first line into the field.
    pub fn paste(&mut self, text: &str) {
        if !self.editing() {
            return;
        }
        let line: String = text
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        self.text_mut().push_str(line.trim());
        self.edited();
    }

    fn finished_key(&mut self, action: Option<Action>) -> FormOutcome {
        match (&self.stage, action) {
            (CloneStage::Running { id, .. }, Some(Action::Back)) => FormOutcome::Abort(*id),
            (CloneStage::Failed(_), Some(Action::Open)) => {
                // Back to the form to correct it.
                self.stage = CloneStage::Editing;
                FormOutcome::Stay
            }
            (CloneStage::Done(_) | CloneStage::Failed(_), Some(Action::Back | Action::Open)) => {
                FormOutcome::Close
            }
            _ => FormOutcome::Stay,
        }
    }

    fn text_mut(&mut self) -> &mut String {
        match self.field {
            Field::Url => &mut self.url,
            Field::Folder => &mut self.folder,
        }
    }

    fn edited(&mut self) {
        self.problem = None;
        match self.field {
            Field::Url if !self.folder_typed => self.folder = default_folder(&self.url),
            Field::Url => {}
            // An emptied folder follows the URL again.
            Field::Folder => self.folder_typed = !self.folder.is_empty(),
        }
    }

    fn submit(&mut self) -> FormOutcome {
        let url = self.url.trim().to_owned();
        let folder = self.folder.trim().to_owned();
        if url.is_empty() {
            self.problem = Some("type the repository's URL (https://… or ssh://…)".into());
            self.field = Field::Url;
        } else if folder.is_empty() {
            self.problem = Some("type the new folder's name (beneath the workspace root)".into());
            self.field = Field::Folder;
        } else {
            return FormOutcome::Start(GitClone { url, dir: folder });
        }
        FormOutcome::Stay
    }

    /// A frame of the clone's stream `id`; false when it is not this form's clone.
    pub fn on_item(&mut self, id: u64, item: CloneItem) -> bool {
        let CloneStage::Running {
            id: running,
            dir,
            progress,
        } = &mut self.stage
        else {
            return false;
        };
        if *running != id {
            return false;
        }
        match item {
            CloneItem::Started(d) => *dir = Some(d),
            CloneItem::Event(GitCloneEvent::Progress(p)) => *progress = Some(p),
            CloneItem::Event(GitCloneEvent::Done(done)) => self.stage = CloneStage::Done(done),
            CloneItem::Event(GitCloneEvent::Failed(e)) => {
                self.stage = CloneStage::Failed(RemoteText::new(&e.message));
            }
            CloneItem::Ended(e) => {
                let why = e.map_or_else(
                    || "the host ended the clone without a result".to_owned(),
                    |e| e.message,
                );
                self.stage = CloneStage::Failed(RemoteText::new(&why));
            }
        }
        true
    }
}

/// What arrived for a clone's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneItem {
    /// The host accepted: the folder it created.
    Started(String),
    /// Progress or the end.
    Event(GitCloneEvent),
    /// The stream ended before the clone's last frame (why, when known).
    Ended(Option<CallError>),
}

impl App {
    /// The clone form, while it is open or a clone it started runs.
    pub fn clone_form(&self) -> Option<&CloneForm> {
        self.clone.as_ref()
    }

    /// Whether the clone form is the overlay on screen.
    pub fn clone_visible(&self) -> bool {
        self.overlay == Some(Overlay::Clone) && self.clone.is_some()
    }

    /// `c` on the workspaces screen: opens the form for a clone beneath the selected
    /// workspace's root (or shows the clone already running).
    pub(super) fn open_clone(&mut self) {
        if self.clone.is_none() {
            let Some(view) = self.stack.workspaces.as_ref() else {
                return;
            };
            let Some(w) = view.selected() else {
                self.notify(
                    "select a workspace first: the clone goes beneath its root",
                    true,
                );
                return;
            };
            self.clone = Some(CloneForm::new(&view.host, &w.name));
        }
        self.overlay = Some(Overlay::Clone);
    }

    /// A key while the form is on screen.
    pub(super) fn clone_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        if action == Some(Action::Quit) {
            fx.push(Effect::Quit);
            return;
        }
        let Some(form) = self.clone.as_mut() else {
            self.overlay = None;
            return;
        };
        if let (CloneStage::Done(done), Some(Action::AddWorkspace)) = (&form.stage, action) {
            // The folder cloned becomes a workspace: the folders panel asks its name.
            let (root, folder) = (form.workspace.clone(), done.dir.clone());
            self.clone = None;
            self.add_cloned(&root, &folder, fx);
            return;
        }
        match form.update(action, typed) {
            FormOutcome::Stay => {}
            FormOutcome::Close => {
                self.clone = None;
                self.overlay = None;
            }
            FormOutcome::Start(body) => self.start_clone(body, fx),
            FormOutcome::Abort(id) => {
                fx.push(Effect::CloseStream(id));
                let dir = self.clone.take().map(|f| f.folder).unwrap_or_default();
                self.overlay = None;
                self.notify(
                    format!("clone aborted: the host removes the partial folder {dir}"),
                    false,
                );
            }
        }
    }

    fn start_clone(&mut self, body: GitClone, fx: &mut Vec<Effect>) {
        let Some(form) = self.clone.as_ref() else {
            return;
        };
        if self.host(&form.host).is_some_and(|h| !h.online) {
            let text = format!("host {} is offline: clone once it is back", form.host);
            if let Some(form) = self.clone.as_mut() {
                form.problem = Some(text);
            }
            return;
        }
        let scope = Scope::workspace(&form.host, &form.workspace);
        let Some(id) = self.stream(scope, StreamCall::GitClone(body), fx) else {
            if let Some(form) = self.clone.as_mut() {
                form.problem = Some("not connected to the relay; try again once connected".into());
            }
            return;
        };
        if let Some(form) = self.clone.as_mut() {
            form.stage = CloneStage::Running {
                id,
                dir: None,
                progress: None,
            };
        }
    }

    /// A frame (or the end) of stream `id`, if it is the clone's; true when it was.
    pub(super) fn clone_item(&mut self, id: u64, item: CloneItem, fx: &mut Vec<Effect>) -> bool {
        let Some(form) = self.clone.as_mut() else {
            return false;
        };
        if !form.on_item(id, item) {
            return false;
        }
        if let CloneStage::Done(done) = &form.stage {
            let text = format!("cloned into {}", crate::view::text::sanitize(&done.dir));
            let scope = Scope::workspace(&form.host, &form.workspace);
            self.notify(text, false);
            self.workspace_changed(&scope, fx);
            // Whether the folder may become a workspace: the host's candidates say.
            self.read_candidates(&scope.host, fx);
        }
        true
    }

    /// The folders of the workspace of `scope` changed: read its details again.
    fn workspace_changed(&mut self, scope: &Scope, fx: &mut Vec<Effect>) {
        let Some(ws) = scope.workspace.as_deref() else {
            return;
        };
        if let Some(view) = self
            .stack
            .workspaces
            .as_mut()
            .filter(|v| v.host == scope.host)
        {
            view.details.remove(ws);
        }
        if self.screen == Screen::Workspaces {
            self.fetch_workspace_detail(fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_follows_the_urls_last_segment_without_git() {
        assert_eq!(default_folder("https://github.com/org/lib.git"), "lib");
        assert_eq!(default_folder("https://github.com/org/lib/"), "lib");
        assert_eq!(default_folder("git@github.com:org/tool.git"), "tool");
        assert_eq!(default_folder("git://127.0.0.1:9418/repo.git"), "repo");
        assert_eq!(default_folder("git@host:plain"), "plain");
        assert_eq!(default_folder(""), "");
    }

    #[test]
    fn typing_the_folder_stops_it_following_the_url() {
        let mut f = CloneForm::new(&HostId::from("box"), "demo");
        for c in "https://h/o/lib.git".chars() {
            f.update(None, Some(c));
        }
        assert_eq!(f.folder, "lib");
        f.update(Some(Action::CursorDown), None);
        f.update(Some(Action::ClearLine), None);
        assert_eq!(f.folder, "", "cleared: follows the URL again");
        for c in "vendor".chars() {
            f.update(None, Some(c));
        }
        f.update(Some(Action::CursorUp), None);
        f.update(Some(Action::DeleteBack), None);
        assert_eq!(f.folder, "vendor", "typed: kept");
        assert_eq!(
            f.update(Some(Action::Send), None),
            FormOutcome::Start(GitClone {
                url: "https://h/o/lib.gi".into(),
                dir: "vendor".into()
            })
        );
    }

    #[test]
    fn an_empty_url_or_folder_is_named_before_anything_is_sent() {
        let mut f = CloneForm::new(&HostId::from("box"), "demo");
        assert_eq!(f.update(Some(Action::Send), None), FormOutcome::Stay);
        assert!(f.problem.as_deref().is_some_and(|p| p.contains("URL")));
        f.paste("https://h/o/lib.git\nsecond line");
        assert_eq!(
            (f.url.as_str(), f.folder.as_str()),
            ("https://h/o/lib.git", "lib")
        );
        f.update(Some(Action::CursorDown), None);
        f.update(Some(Action::ClearLine), None);
        assert_eq!(f.update(Some(Action::Send), None), FormOutcome::Stay);
        assert!(f.problem.as_deref().is_some_and(|p| p.contains("folder")));
        assert_eq!(f.field, Field::Folder);
    }
}
