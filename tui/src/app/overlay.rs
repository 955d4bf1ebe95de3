//! What is drawn over the screens and takes the keys first: the help, the `:` palette or a
//! question form. At most one is open; opening one replaces another (each opens from a key
//! on a screen, where no overlay has the keys).

use super::model_picker::ModelPicker;
use super::notify_panel::NotifyPanel;
use super::palette::Palette;
use super::question::QuestionForm;
use crate::keymap::Context;

/// The overlay open over the screens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// The keys of the screen underneath.
    Help,
    /// The `:` command palette.
    Palette(Palette),
    /// The question being answered.
    Question(QuestionForm),
    /// The model picker of the session screen.
    ModelPicker(ModelPicker),
    /// The clone form or its progress (its state is the app's `clone`).
    Clone,
    /// The templates panel of a workspace (its state is the app's `templates`).
    Templates,
    /// The folders panel of a host (its state is the app's `folders`).
    Folders,
    /// The ports panel of a host (its state is the app's `ports`).
    Ports,
    /// The notification settings: the user's channels at the relay.
    Notify(NotifyPanel),
}

impl Overlay {
    /// Where keys go while it is open.
    pub fn context(&self) -> Context {
        match self {
            Self::Help => Context::Help,
            Self::Palette(_) => Context::Palette,
            Self::Question(_) => Context::Question,
            Self::ModelPicker(_) => Context::ModelPicker,
            // Typing while the form is edited, keys for abort and close afterwards.
            Self::Clone => Context::CloneForm,
            Self::Templates => Context::Templates,
            Self::Folders => Context::Folders,
            Self::Ports => Context::Ports,
            Self::Notify(_) => Context::Notify,
        }
    }
}
