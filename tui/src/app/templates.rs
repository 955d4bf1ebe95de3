//! OpenCode configuration templates on a workspace: the workspaces screen shows which template
//! (and version) each workspace runs and whether the relay has a newer version
//! ([`template_status`]); `t` opens the templates panel of the selected workspace, which lists
//! the relay's templates (`template_list`), marks the applied one, and on Enter, confirmed by
//! a second Enter, runs `template_apply` as a stream whose progress (stopping, starting, done
//! or failed) it shows. The panel's state lives in the app, so an apply keeps reporting when
//! the panel is closed; its end is then a notice.

use super::App;
use super::overlay::Overlay;
use super::workspace_detail::Loadable;
use crate::action::Action;
use crate::call::{Call, CallError, Scope, StreamCall};
use crate::effect::Effect;
use proto::ids::HostId;
use proto::template::{
    TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateRef, TemplateSummary,
};
use proto::text::RemoteText;

/// The relay's template list, as far as it was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateCache {
    /// The list (each template at its latest version), once asked for.
    pub list: Option<Loadable<Vec<TemplateSummary>>>,
    /// The `template_list` request awaited.
    request: Option<u64>,
}

impl TemplateCache {
    /// The templates, once read.
    pub fn ready(&self) -> Option<&[TemplateSummary]> {
        match &self.list {
            Some(Loadable::Ready(list)) => Some(list),
            _ => None,
        }
    }
}

/// How a workspace's template compares with the relay's latest version of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateStatus {
    /// It runs no template.
    None,
    /// It runs the latest version (or the relay's list is not known).
    Current,
    /// The relay has a newer version.
    OutOfDate {
        /// The latest version.
        latest: u32,
    },
}

/// Whether `current` is the latest version the relay lists.
pub fn template_status(
    current: Option<&TemplateRef>,
    list: Option<&[TemplateSummary]>,
) -> TemplateStatus {
    let Some(current) = current else {
        return TemplateStatus::None;
    };
    match list
        .into_iter()
        .flatten()
        .find(|t| t.latest.name == current.name)
    {
        Some(t) if t.latest.version > current.version => TemplateStatus::OutOfDate {
            latest: t.latest.version,
        },
        _ => TemplateStatus::Current,
    }
}

/// Where an apply is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyPhase {
    /// Asked for; the host has not answered.
    Asking,
    /// The host took it (`restart`: OpenCode is restarted to take it).
    Accepted {
        /// Whether OpenCode restarts.
        restart: bool,
    },
    /// OpenCode is being stopped.
    Stopping,
    /// OpenCode is being started with the new config.
    Starting,
    /// The workspace runs the template.
    Done,
    /// Refused, or OpenCode did not come back.
    Failed(RemoteText),
}

impl ApplyPhase {
    /// Whether the apply is over.
    pub fn finished(&self) -> bool {
        matches!(self, Self::Done | Self::Failed(_))
    }
}

/// One `template_apply` and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyRun {
    /// The stream's id.
    pub id: u64,
    /// The template.
    pub name: String,
    /// The version asked for.
    pub version: u32,
    /// How far it got.
    pub phase: ApplyPhase,
}

/// The templates panel of one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatesPanel {
    /// The host.
    pub host: HostId,
    /// The workspace.
    pub workspace: String,
    /// The highlighted row.
    pub cursor: usize,
    /// Enter was pressed once on the highlighted row: the next Enter applies it.
    pub confirm: bool,
    /// The last apply started here.
    pub run: Option<ApplyRun>,
}

/// What a key on the panel asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanelOutcome {
    /// Handled here.
    Stay,
    /// Close the panel.
    Close,
    /// Read the list again.
    Refresh,
    /// Apply this template version.
    Apply {
        /// The template.
        name: String,
        /// Its version.
        version: u32,
    },
}

impl TemplatesPanel {
    /// The panel of `workspace` on `host`.
    pub fn new(host: &HostId, workspace: &str) -> Self {
        Self {
            host: host.clone(),
            workspace: workspace.to_owned(),
            cursor: 0,
            confirm: false,
            run: None,
        }
    }

    /// Whether an apply started here is still running.
    pub fn applying(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.phase.finished())
    }

    /// A key, over the templates `list` (as far as read). No IO.
    pub fn update(&mut self, action: Action, list: Option<&[TemplateSummary]>) -> PanelOutcome {
        let rows = list.unwrap_or_default();
        let last = rows.len().saturating_sub(1);
        match action {
            Action::SelectPrev => self.cursor = self.cursor.saturating_sub(1),
            Action::SelectNext => self.cursor = (self.cursor + 1).min(last),
            Action::SelectFirst => self.cursor = 0,
            Action::SelectLast => self.cursor = last,
            Action::Refresh => return PanelOutcome::Refresh,
            Action::Back if self.confirm => self.confirm = false,
            Action::Back => return PanelOutcome::Close,
            Action::Open if self.applying() => {}
            Action::Open => {
                let Some(t) = rows.get(self.cursor) else {
                    return PanelOutcome::Stay;
                };
                if !self.confirm {
                    self.confirm = true;
                    return PanelOutcome::Stay;
                }
                self.confirm = false;
                return PanelOutcome::Apply {
                    name: t.latest.name.clone(),
                    version: t.latest.version,
                };
            }
            _ => return PanelOutcome::Stay,
        }
        if !matches!(action, Action::Back) {
            self.confirm = false;
        }
        PanelOutcome::Stay
    }

    /// A frame (or the end) of stream `id`; false when it is not this panel's apply.
    pub fn on_item(&mut self, id: u64, item: ApplyItem) -> bool {
        let Some(run) = self.run.as_mut().filter(|r| r.id == id) else {
            return false;
        };
        if run.phase.finished() {
            return true;
        }
        run.phase = match item {
            ApplyItem::Applied(a) => ApplyPhase::Accepted { restart: a.restart },
            ApplyItem::Event(TemplateApplyEvent::Stopping) => ApplyPhase::Stopping,
            ApplyItem::Event(TemplateApplyEvent::Starting) => ApplyPhase::Starting,
            ApplyItem::Event(TemplateApplyEvent::Done) => ApplyPhase::Done,
            ApplyItem::Event(TemplateApplyEvent::Failed { message }) => {
                ApplyPhase::Failed(RemoteText::new(&message))
            }
            ApplyItem::Ended(e) => ApplyPhase::Failed(RemoteText::new(&e.map_or_else(
                || "the host ended the apply without a result".to_owned(),
                |e| e.message,
            ))),
        };
        true
    }
}

/// What arrived for an apply's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyItem {
    /// The host accepted the template.
    Applied(TemplateApplied),
    /// Progress or the end.
    Event(TemplateApplyEvent),
    /// The stream ended before the apply's last frame (why, when known).
    Ended(Option<CallError>),
}

impl App {
    /// The relay's templates, as far as read.
    pub fn template_cache(&self) -> &TemplateCache {
        &self.template_cache
    }

    /// The templates panel, while open or while an apply it started runs.
    pub fn templates_panel(&self) -> Option<&TemplatesPanel> {
        self.templates.as_ref()
    }

    /// Whether the templates panel is the overlay on screen.
    pub fn templates_visible(&self) -> bool {
        self.overlay == Some(Overlay::Templates) && self.templates.is_some()
    }

    /// The template the panel's workspace runs (from the workspaces list).
    pub fn panel_template(&self) -> Option<&TemplateRef> {
        let panel = self.templates.as_ref()?;
        self.stack
            .workspaces
            .as_ref()
            .filter(|v| v.host == panel.host)?
            .list()?
            .iter()
            .find(|w| w.name == panel.workspace)?
            .template
            .as_ref()
    }

    /// Asks the relay for its templates (once at a time).
    pub(super) fn ask_templates(&mut self, fx: &mut Vec<Effect>) {
        if self.template_cache.request.is_some() {
            return;
        }
        let Some(host) = self.stack.workspaces.as_ref().map(|v| v.host.clone()) else {
            return;
        };
        if let Some(id) = self.request(Scope::host(&host), Call::TemplateList, fx) {
            self.template_cache.request = Some(id);
            if self.template_cache.list.is_none() {
                self.template_cache.list = Some(Loadable::Loading);
            }
        }
    }

    /// `template_list` answered.
    pub(super) fn templates_loaded(&mut self, request: u64, list: Vec<TemplateSummary>) {
        if self.template_cache.request == Some(request) {
            self.template_cache.request = None;
        }
        self.template_cache.list = Some(Loadable::Ready(list));
    }

    /// `template_list` failed: the panel says why; the workspaces screen shows no staleness.
    pub(super) fn templates_failed(&mut self, request: u64, e: &CallError) {
        if self.template_cache.request == Some(request) {
            self.template_cache.request = None;
        }
        self.template_cache.list = Some(Loadable::Failed(RemoteText::new(&e.message)));
    }

    /// `t` on the workspaces screen: the selected workspace's templates panel.
    pub(super) fn open_templates(&mut self, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.workspaces.as_ref() else {
            return;
        };
        let host = view.host.clone();
        let Some(name) = view.selected().map(|w| w.name.clone()) else {
            self.notify("select a workspace first", true);
            return;
        };
        let same = self
            .templates
            .as_ref()
            .is_some_and(|p| p.host == host && p.workspace == name);
        if !same {
            if self
                .templates
                .as_ref()
                .is_some_and(TemplatesPanel::applying)
            {
                self.notify(
                    "a template is still being applied; its end shows as a notice",
                    false,
                );
            }
            self.templates = Some(TemplatesPanel::new(&host, &name));
        }
        self.overlay = Some(Overlay::Templates);
        self.ask_templates(fx);
    }

    /// A key while the panel is on screen.
    pub(super) fn templates_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        if action == Action::Quit {
            fx.push(Effect::Quit);
            return;
        }
        let list = self.template_cache.ready().map(<[_]>::to_vec);
        let Some(panel) = self.templates.as_mut() else {
            self.overlay = None;
            return;
        };
        match panel.update(action, list.as_deref()) {
            PanelOutcome::Stay => {}
            PanelOutcome::Close => {
                self.overlay = None;
                if !panel.applying() {
                    self.templates = None;
                }
            }
            PanelOutcome::Refresh => self.ask_templates(fx),
            PanelOutcome::Apply { name, version } => self.start_apply(name, version, fx),
        }
    }

    fn start_apply(&mut self, name: String, version: u32, fx: &mut Vec<Effect>) {
        let Some(panel) = self.templates.as_ref() else {
            return;
        };
        let scope = Scope::workspace(&panel.host, &panel.workspace);
        if self.host(&panel.host).is_some_and(|h| !h.online) {
            let text = format!("host {} is offline: apply once it is back", panel.host);
            self.notify(text, true);
            return;
        }
        let body = TemplateApply {
            name: name.clone(),
            version: Some(version),
            resolved: None,
        };
        let Some(id) = self.stream(scope, StreamCall::TemplateApply(body), fx) else {
            self.notify("not connected to the relay; try again once connected", true);
            return;
        };
        if let Some(panel) = self.templates.as_mut() {
            panel.run = Some(ApplyRun {
                id,
                name,
                version,
                phase: ApplyPhase::Asking,
            });
        }
    }

    /// A frame (or the end) of stream `id`, if it is the panel's apply; true when it was.
    pub(super) fn apply_item(&mut self, id: u64, item: ApplyItem, fx: &mut Vec<Effect>) -> bool {
        let Some(panel) = self.templates.as_mut() else {
            return false;
        };
        match panel.run.as_ref().filter(|r| r.id == id) {
            None => return false,
            Some(r) if r.phase.finished() => return true,
            Some(_) => {}
        }
        panel.on_item(id, item);
        let Some(run) = panel.run.clone().filter(|r| r.phase.finished()) else {
            return true;
        };
        let (host, workspace) = (panel.host.clone(), panel.workspace.clone());
        let shown = self.templates_visible();
        if !shown {
            self.templates = None;
        }
        let what = format!(
            "template {} v{} on {workspace}",
            crate::view::text::sanitize(&run.name),
            run.version
        );
        match &run.phase {
            ApplyPhase::Failed(e) => self.notify(format!("{what} failed: {e}"), true),
            _ => self.notify(format!("{what}: applied"), false),
        }
        // The workspace list says which template each workspace runs: read it again.
        if self
            .stack
            .workspaces
            .as_ref()
            .is_some_and(|v| v.host == host)
        {
            self.request(Scope::host(&host), Call::WorkspaceList, fx);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn summary(name: &str, version: u32) -> TemplateSummary {
        TemplateSummary {
            latest: TemplateRef {
                name: name.into(),
                version,
                hash: format!("blake3:{name}{version}"),
            },
            author: "alice".into(),
            published_ms: 0,
            description: String::new(),
            mcp: Vec::new(),
        }
    }

    fn applied(name: &str, version: u32) -> TemplateRef {
        summary(name, version).latest
    }

    #[test]
    fn a_workspace_is_out_of_date_only_when_the_relay_lists_a_newer_version_of_its_template() {
        let list = [summary("team", 3), summary("other", 9)];
        assert_eq!(template_status(None, Some(&list)), TemplateStatus::None);
        assert_eq!(
            template_status(Some(&applied("team", 2)), Some(&list)),
            TemplateStatus::OutOfDate { latest: 3 }
        );
        assert_eq!(
            template_status(Some(&applied("team", 3)), Some(&list)),
            TemplateStatus::Current
        );
        assert_eq!(
            template_status(Some(&applied("gone", 1)), Some(&list)),
            TemplateStatus::Current,
            "a template the relay no longer lists is not called stale"
        );
        assert_eq!(
            template_status(Some(&applied("team", 1)), None),
            TemplateStatus::Current,
            "unknown list: nothing claimed"
        );
    }

    #[test]
    fn enter_asks_first_and_a_second_enter_applies_the_highlighted_template() {
        let list = [summary("a", 1), summary("b", 4)];
        let mut p = TemplatesPanel::new(&HostId::from("box"), "demo");
        assert_eq!(
            p.update(Action::SelectNext, Some(&list)),
            PanelOutcome::Stay
        );
        assert_eq!(p.update(Action::Open, Some(&list)), PanelOutcome::Stay);
        assert!(p.confirm);
        assert_eq!(p.update(Action::Back, Some(&list)), PanelOutcome::Stay);
        assert!(!p.confirm, "Esc cancels the question, not the panel");
        p.update(Action::Open, Some(&list));
        p.update(Action::SelectPrev, Some(&list));
        assert!(!p.confirm, "moving drops the question");
        p.update(Action::SelectNext, Some(&list));
        p.update(Action::Open, Some(&list));
        assert_eq!(
            p.update(Action::Open, Some(&list)),
            PanelOutcome::Apply {
                name: "b".into(),
                version: 4
            }
        );
        assert_eq!(p.update(Action::Back, Some(&list)), PanelOutcome::Close);
        assert_eq!(p.update(Action::Open, None), PanelOutcome::Stay);
    }
}
