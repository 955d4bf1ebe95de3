//! The model picker over the session screen: `M` asks the workspace's host which models and
//! agents its OpenCode offers (`model_list`), the overlay lists them, Enter picks one for the
//! session's following prompts. The session view keeps the choice (`ModelPick`).

use super::App;
use super::overlay::Overlay;
use crate::action::Action;
use crate::call::{Call, CallError, Scope};
use crate::effect::Effect;
use proto::ops::ModelCatalog;

/// The model and agent a session's prompts name, and the `model_list` request awaited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelPick {
    /// `provider/model`, or `None` for OpenCode's default.
    pub model: Option<String>,
    /// The agent, or `None` for OpenCode's default.
    pub agent: Option<String>,
    /// The `model_list` request whose answer opens the picker.
    pub(super) request: Option<u64>,
}

/// One row of the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickRow {
    /// OpenCode's default model (clears the choice).
    DefaultModel,
    /// A model, as `provider/model`.
    Model(String),
    /// OpenCode's default agent (clears the choice).
    DefaultAgent,
    /// An agent by name.
    Agent(String),
}

/// The picker's state: the catalog and the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPicker {
    /// What the host offers.
    pub catalog: ModelCatalog,
    /// The highlighted row (index into [`ModelPicker::rows`]).
    pub cursor: usize,
}

impl ModelPicker {
    /// The rows: the default model, the models, then the default agent and the agents (when
    /// the host names any).
    pub fn rows(&self) -> Vec<PickRow> {
        let mut rows = vec![PickRow::DefaultModel];
        rows.extend(
            self.catalog
                .models
                .iter()
                .map(|m| PickRow::Model(m.reference())),
        );
        if !self.catalog.agents.is_empty() {
            rows.push(PickRow::DefaultAgent);
            rows.extend(
                self.catalog
                    .agents
                    .iter()
                    .map(|a| PickRow::Agent(a.name.clone())),
            );
        }
        rows
    }

    /// Moves the cursor; says which row Enter picked. No IO.
    pub fn update(&mut self, action: Action) -> Option<PickRow> {
        let last = self.rows().len().saturating_sub(1);
        match action {
            Action::SelectPrev => self.cursor = self.cursor.saturating_sub(1),
            Action::SelectNext => self.cursor = (self.cursor + 1).min(last),
            Action::Open => return self.rows().get(self.cursor).cloned(),
            _ => {}
        }
        None
    }
}

impl ModelPick {
    /// Takes the picked row.
    pub fn take(&mut self, row: PickRow) {
        match row {
            PickRow::DefaultModel => self.model = None,
            PickRow::Model(m) => self.model = Some(m),
            PickRow::DefaultAgent => self.agent = None,
            PickRow::Agent(a) => self.agent = Some(a),
        }
    }
}

impl App {
    /// The open model picker, if any.
    pub fn model_picker(&self) -> Option<&ModelPicker> {
        match self.overlay.as_ref() {
            Some(Overlay::ModelPicker(p)) => Some(p),
            _ => None,
        }
    }

    /// `M` on the session screen: asks the workspace's host what it offers.
    pub(super) fn ask_models(&mut self, fx: &mut Vec<Effect>) {
        let Some(scope) = self
            .stack
            .session
            .as_ref()
            .map(|v| Scope::workspace(&v.host, v.workspace.as_str()))
        else {
            return;
        };
        let id = self.act(scope, Call::ModelList, fx);
        if let Some(view) = self.stack.session.as_mut() {
            view.pick.request = id;
        }
    }

    /// The answer to `model_list` request `request`: opens the picker if still awaited.
    pub(super) fn models_loaded(&mut self, request: u64, catalog: ModelCatalog) {
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        if view.pick.request != Some(request) {
            return;
        }
        view.pick.request = None;
        self.overlay = Some(Overlay::ModelPicker(ModelPicker { catalog, cursor: 0 }));
    }

    /// `model_list` failed: says why.
    pub(super) fn models_failed(&mut self, request: u64, e: &CallError) {
        if let Some(view) = self.stack.session.as_mut()
            && view.pick.request == Some(request)
        {
            view.pick.request = None;
            self.notify(format!("cannot list the models: {e}"), true);
        }
    }

    /// A key while the picker is open.
    pub(super) fn model_picker_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Back => self.overlay = None,
            Action::Quit => fx.push(Effect::Quit),
            _ => {
                let Some(Overlay::ModelPicker(picker)) = self.overlay.as_mut() else {
                    return;
                };
                let Some(row) = picker.update(action) else {
                    return;
                };
                self.overlay = None;
                if let Some(view) = self.stack.session.as_mut() {
                    view.pick.take(row);
                }
            }
        }
    }
}
