//! Where the keys go: the [`Context`] both the key tables (`keymap`) and the actions' help
//! texts (`action`) are written against.

/// Where the keys go: the screen, panel or input that has the focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The hosts list.
    Hosts,
    /// A host's workspaces.
    Workspaces,
    /// A workspace's sessions.
    Sessions,
    /// One session's transcript.
    Session,
    /// The diff view.
    Diff,
    /// The attention panel.
    Attention,
    /// Typing a prompt.
    Prompt,
    /// Typing a list filter.
    Filter,
    /// The help overlay.
    Help,
    /// Typing in the command palette.
    Palette,
    /// Answering a question.
    Question,
    /// Picking the model or agent of a session's prompts.
    ModelPicker,
    /// Typing the clone form's URL and folder.
    CloneForm,
    /// A clone running or finished.
    CloneProgress,
    /// A workspace's templates.
    Templates,
    /// The folders beneath a host's roots (candidate workspaces).
    Folders,
    /// A host's listening ports and the forwards of them.
    Ports,
    /// Typing the name of a folder's new workspace.
    FolderName,
    /// The administration screen.
    Admin,
    /// Typing into the administration screen's input line.
    AdminInput,
    /// The notification settings panel.
    Notify,
}

impl Context {
    /// Whether printable keys are typed rather than looked up.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::Prompt
                | Self::Filter
                | Self::Palette
                | Self::AdminInput
                | Self::CloneForm
                | Self::FolderName
        )
    }

    /// The name shown in the help overlay's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Hosts => "hosts",
            Self::Workspaces => "workspaces",
            Self::Sessions => "sessions",
            Self::Session => "session",
            Self::Diff => "diff",
            Self::Attention => "attention",
            Self::Prompt => "prompt",
            Self::Filter => "filter",
            Self::Help => "help",
            Self::Palette => "command palette",
            Self::Question => "question",
            Self::ModelPicker => "model picker",
            Self::CloneForm => "clone a repository",
            Self::CloneProgress => "clone",
            Self::Templates => "templates",
            Self::Folders => "folders",
            Self::Ports => "ports",
            Self::FolderName => "new workspace name",
            Self::Admin => "admin",
            Self::AdminInput => "admin input",
            Self::Notify => "notifications",
        }
    }
}
