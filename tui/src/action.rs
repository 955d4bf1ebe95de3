//! What a key means to the app. The keymap turns keys into these; `App` acts on them.

/// A user intent, independent of the key that triggered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Move the selection up one row.
    SelectPrev,
    /// Move the selection down one row.
    SelectNext,
    /// Move the selection up one page.
    PageUp,
    /// Move the selection down one page.
    PageDown,
    /// Select the first row.
    SelectFirst,
    /// Select the last row.
    SelectLast,
    /// Show or hide the key help.
    ToggleHelp,
    /// Drop the relay connection and connect again now.
    Reconnect,
    /// Close the overlay if one is open, otherwise quit.
    Back,
    /// Leave the app.
    Quit,
}

impl Action {
    /// One line for the help overlay.
    pub fn description(self) -> &'static str {
        match self {
            Self::SelectPrev => "previous host",
            Self::SelectNext => "next host",
            Self::PageUp => "page up",
            Self::PageDown => "page down",
            Self::SelectFirst => "first host",
            Self::SelectLast => "last host",
            Self::ToggleHelp => "show / hide this help",
            Self::Reconnect => "reconnect to the relay now",
            Self::Back => "close help, or quit",
            Self::Quit => "quit",
        }
    }
}
