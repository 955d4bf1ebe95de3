//! What a key means to the app. The keymap turns keys into these; `App` acts on them.

use crate::key_context::Context;

/// A user intent, independent of the key that triggered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Move the selection (or the view) up one row.
    SelectPrev,
    /// Move the selection (or the view) down one row.
    SelectNext,
    /// Move up one page.
    PageUp,
    /// Move down one page.
    PageDown,
    /// Go to the first row (or the top).
    SelectFirst,
    /// Go to the last row (or the bottom, following new output).
    SelectLast,
    /// Open the selected row.
    Open,
    /// Go back a level (or close what is open).
    Back,
    /// Start typing a filter for the list.
    Filter,
    /// Show or hide the key help.
    ToggleHelp,
    /// Show or hide the attention panel.
    ToggleAttention,
    /// Turn the terminal bell on or off.
    ToggleBell,
    /// Drop the relay connection and connect again now.
    Reconnect,
    /// Leave the app.
    Quit,
    /// Open the command palette.
    OpenPalette,
    /// Open the administration screen (admins and owners).
    OpenAdmin,
    /// Add a user, or enroll a host.
    AddItem,
    /// Grant the selected user a role on a host.
    Grant,
    /// Remove one of the selected user's grants.
    RevokeGrant,
    /// Issue the selected host a new enrolment token.
    RotateToken,
    /// Remove the selected user, revoke the host or credential.
    Remove,
    /// Kill switch for the selected user, host or credential.
    Kill,
    /// Kill switch for every operator credential and host.
    KillAll,
    /// Read the list again.
    Refresh,
    /// Start OpenCode in the selected workspace.
    StartOpencode,
    /// Stop OpenCode in the selected workspace.
    StopOpencode,
    /// Create a session in this workspace.
    NewSession,
    /// Rename the selected session (opens the palette with `rename TITLE`).
    RenameSession,
    /// Delete the selected session (pressed twice: it cannot be undone).
    DeleteSession,
    /// Focus the prompt box.
    FocusPrompt,
    /// Abort the session's running turn.
    Abort,
    /// Show the diff.
    ShowDiff,
    /// Pick the model or agent of the session's following prompts.
    PickModel,
    /// Allow the permission request once.
    AllowOnce,
    /// Allow it and matching calls from now on (shows what that allows; press again to
    /// confirm).
    AllowAlways,
    /// Allow it and calls of the same file or exact command from now on (confirmed likewise).
    AllowAlwaysThis,
    /// Revoke the selected workspace's standing "always" grants.
    RevokeAlways,
    /// Clone a repository beneath the selected workspace's root (opens a form).
    CloneRepo,
    /// The selected workspace's OpenCode configuration templates (list, apply).
    OpenTemplates,
    /// The folders beneath the host's workspace roots (make one a workspace, forget one).
    OpenFolders,
    /// The host's listening ports (forward one to this machine).
    OpenPorts,
    /// Stop the forward of the highlighted port.
    StopForward,
    /// Make the folder just cloned a workspace of its own.
    AddWorkspace,
    /// Forget the highlighted workspace (added from a folder; its files stay).
    RemoveWorkspace,
    /// Scroll what the waiting request asks (a long diff) up.
    ScrollRequestUp,
    /// Scroll what the waiting request asks down.
    ScrollRequestDown,
    /// Reject it.
    Reject,
    /// Select the previous block (tool call, reasoning) or hunk.
    PrevBlock,
    /// Select the next block (tool call, reasoning) or hunk.
    NextBlock,
    /// Expand or collapse the selected block.
    ToggleBlock,
    /// Previous file of the diff.
    PrevFile,
    /// Next file of the diff.
    NextFile,
    /// Switch the diff between this session's changes and the whole working tree.
    ToggleDiffScope,
    /// Remove the selected item from the attention panel.
    Dismiss,
    /// Send the prompt.
    Send,
    /// Insert a line break in the prompt.
    Newline,
    /// Cursor left.
    CursorLeft,
    /// Cursor right.
    CursorRight,
    /// Cursor up a line, or the previous prompt from history on the first line.
    CursorUp,
    /// Cursor down a line, or the next prompt from history on the last line.
    CursorDown,
    /// Cursor to the start of the line.
    LineStart,
    /// Cursor to the end of the line.
    LineEnd,
    /// Delete the character before the cursor.
    DeleteBack,
    /// Delete the character under the cursor.
    DeleteForward,
    /// Delete the word before the cursor.
    DeleteWord,
    /// Delete the text before the cursor on its line.
    ClearLine,
    /// Stop typing (the text stays).
    LeaveInput,
    /// Keep the filter and stop typing it.
    AcceptFilter,
    /// Drop the filter and stop typing it.
    ClearFilter,
    /// Copy the invite or token the admin screen shows (OSC 52, to the local clipboard).
    CopySecret,
    /// Open the notification settings: your channels at the relay.
    OpenNotifications,
    /// Send a test notification to the selected channel.
    TestChannel,
}

impl Action {
    /// Every action, in the order the command palette lists them.
    pub const ALL: &'static [Self] = &[
        Self::SelectPrev,
        Self::SelectNext,
        Self::PageUp,
        Self::PageDown,
        Self::SelectFirst,
        Self::SelectLast,
        Self::Open,
        Self::Back,
        Self::Filter,
        Self::ToggleHelp,
        Self::ToggleAttention,
        Self::ToggleBell,
        Self::Reconnect,
        Self::Quit,
        Self::OpenPalette,
        Self::OpenAdmin,
        Self::AddItem,
        Self::Grant,
        Self::RevokeGrant,
        Self::RotateToken,
        Self::Remove,
        Self::Kill,
        Self::KillAll,
        Self::Refresh,
        Self::StartOpencode,
        Self::StopOpencode,
        Self::NewSession,
        Self::RenameSession,
        Self::DeleteSession,
        Self::FocusPrompt,
        Self::Abort,
        Self::ShowDiff,
        Self::PickModel,
        Self::AllowOnce,
        Self::AllowAlways,
        Self::AllowAlwaysThis,
        Self::ScrollRequestUp,
        Self::ScrollRequestDown,
        Self::RevokeAlways,
        Self::CloneRepo,
        Self::OpenTemplates,
        Self::OpenFolders,
        Self::OpenPorts,
        Self::StopForward,
        Self::AddWorkspace,
        Self::RemoveWorkspace,
        Self::Reject,
        Self::PrevBlock,
        Self::NextBlock,
        Self::ToggleBlock,
        Self::PrevFile,
        Self::NextFile,
        Self::ToggleDiffScope,
        Self::Dismiss,
        Self::Send,
        Self::Newline,
        Self::CursorLeft,
        Self::CursorRight,
        Self::CursorUp,
        Self::CursorDown,
        Self::LineStart,
        Self::LineEnd,
        Self::DeleteBack,
        Self::DeleteForward,
        Self::DeleteWord,
        Self::ClearLine,
        Self::LeaveInput,
        Self::AcceptFilter,
        Self::ClearFilter,
        Self::CopySecret,
        Self::OpenNotifications,
        Self::TestChannel,
    ];

    /// The action's name in `tui.toml` (`[keys]`) and the command palette.
    pub fn name(self) -> &'static str {
        match self {
            Self::SelectPrev => "select_prev",
            Self::SelectNext => "select_next",
            Self::PageUp => "page_up",
            Self::PageDown => "page_down",
            Self::SelectFirst => "select_first",
            Self::SelectLast => "select_last",
            Self::Open => "open",
            Self::Back => "back",
            Self::Filter => "filter",
            Self::ToggleHelp => "toggle_help",
            Self::ToggleAttention => "toggle_attention",
            Self::ToggleBell => "toggle_bell",
            Self::Reconnect => "reconnect",
            Self::Quit => "quit",
            Self::OpenPalette => "open_palette",
            Self::OpenAdmin => "open_admin",
            Self::AddItem => "add",
            Self::Grant => "grant",
            Self::RevokeGrant => "revoke_grant",
            Self::RotateToken => "rotate_token",
            Self::Remove => "remove",
            Self::Kill => "kill",
            Self::KillAll => "kill_all",
            Self::Refresh => "refresh",
            Self::StartOpencode => "start_opencode",
            Self::StopOpencode => "stop_opencode",
            Self::NewSession => "new_session",
            Self::RenameSession => "rename_session",
            Self::DeleteSession => "delete_session",
            Self::FocusPrompt => "focus_prompt",
            Self::Abort => "abort",
            Self::ShowDiff => "show_diff",
            Self::PickModel => "pick_model",
            Self::AllowOnce => "allow_once",
            Self::AllowAlways => "allow_always",
            Self::AllowAlwaysThis => "allow_always_this",
            Self::RevokeAlways => "revoke_always",
            Self::CloneRepo => "clone",
            Self::OpenTemplates => "templates",
            Self::OpenFolders => "folders",
            Self::OpenPorts => "ports",
            Self::StopForward => "stop_forward",
            Self::AddWorkspace => "add_workspace",
            Self::RemoveWorkspace => "remove_workspace",
            Self::ScrollRequestUp => "scroll_request_up",
            Self::ScrollRequestDown => "scroll_request_down",
            Self::Reject => "reject",
            Self::PrevBlock => "prev_block",
            Self::NextBlock => "next_block",
            Self::ToggleBlock => "toggle_block",
            Self::PrevFile => "prev_file",
            Self::NextFile => "next_file",
            Self::ToggleDiffScope => "toggle_diff_scope",
            Self::Dismiss => "dismiss",
            Self::Send => "send",
            Self::Newline => "newline",
            Self::CursorLeft => "cursor_left",
            Self::CursorRight => "cursor_right",
            Self::CursorUp => "cursor_up",
            Self::CursorDown => "cursor_down",
            Self::LineStart => "line_start",
            Self::LineEnd => "line_end",
            Self::DeleteBack => "delete_back",
            Self::DeleteForward => "delete_forward",
            Self::DeleteWord => "delete_word",
            Self::ClearLine => "clear_line",
            Self::LeaveInput => "leave_input",
            Self::AcceptFilter => "accept_filter",
            Self::ClearFilter => "clear_filter",
            Self::CopySecret => "copy_secret",
            Self::OpenNotifications => "notifications",
            Self::TestChannel => "test_channel",
        }
    }

    /// The action called `name` (as in [`Action::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// One line for the help overlay, worded for where it is used.
    pub fn description(self, context: Context) -> &'static str {
        if context == Context::Admin {
            match self {
                Self::PrevFile => return "previous tab",
                Self::NextFile => return "next tab",
                Self::Filter => return "filter the audit trail (user=NAME host=NAME)",
                _ => {}
            }
        }
        if matches!(context, Context::AdminInput) {
            match self {
                Self::Send => return "confirm",
                Self::LeaveInput => return "cancel",
                _ => {}
            }
        }
        if context == Context::Question {
            match self {
                Self::Send => return "pick and go on (submit after the last)",
                Self::ToggleBlock => return "pick / unpick the option",
                Self::Reject => return "reject the question",
                Self::Back => return "close (answer later)",
                Self::SelectPrev => return "previous option",
                Self::SelectNext => return "next option",
                _ => {}
            }
        }
        if context == Context::ModelPicker {
            match self {
                Self::Open => return "use it for the next prompts",
                Self::Back => return "close (keep the choice)",
                Self::SelectPrev => return "previous row",
                Self::SelectNext => return "next row",
                _ => {}
            }
        }
        if context == Context::CloneForm {
            match self {
                Self::Send => return "start the clone",
                Self::CursorDown => return "next field",
                Self::CursorUp => return "previous field",
                Self::LeaveInput => return "cancel",
                _ => {}
            }
        }
        if context == Context::CloneProgress {
            match self {
                Self::Back => return "abort (the host removes the folder) / close",
                Self::Open => return "close; after a failure, edit and retry",
                _ => {}
            }
        }
        if context == Context::Folders {
            match self {
                Self::Open => return "make the folder a workspace (asks its name)",
                Self::Back => return "close (or cancel the question)",
                Self::Refresh => return "read the folders again",
                _ => {}
            }
        }
        if context == Context::Ports {
            match self {
                Self::Open => return "forward the port here (or stop its forward)",
                Self::Back => return "close (forwards keep running)",
                Self::Refresh => return "read the ports again",
                _ => {}
            }
        }
        if context == Context::FolderName {
            match self {
                Self::Send => return "add the workspace",
                Self::LeaveInput => return "cancel",
                _ => {}
            }
        }
        if context == Context::Notify {
            match self {
                Self::Open => return "confirm the removal asked for",
                Self::Remove => return "remove the channel (asks; Enter confirms)",
                Self::Back => return "close (or cancel the question)",
                Self::Refresh => return "read the channels again",
                Self::ToggleHelp => return "these keys / the channels",
                _ => {}
            }
        }
        if context == Context::Templates {
            match self {
                Self::Open => return "apply to the workspace (Enter again to confirm)",
                Self::Back => return "close (or cancel the question)",
                Self::Refresh => return "read the list again",
                _ => {}
            }
        }
        let scrolls = matches!(context, Context::Session | Context::Diff);
        match self {
            Self::SelectPrev if scrolls => "scroll up",
            Self::SelectNext if scrolls => "scroll down",
            Self::SelectFirst if scrolls => "top",
            Self::SelectLast if scrolls => "bottom (follow new output)",
            Self::SelectPrev => "previous row",
            Self::SelectNext => "next row",
            Self::PageUp => "page up",
            Self::PageDown => "page down",
            Self::SelectFirst => "first row",
            Self::SelectLast => "last row",
            Self::Open if context == Context::Attention => "go to its session",
            Self::Open => "open",
            Self::Back if context == Context::Hosts => "quit",
            Self::Back if context == Context::Attention => "close the panel",
            Self::Back => "back",
            Self::Filter => "filter the list",
            Self::ToggleHelp => "show / hide this help",
            Self::ToggleAttention => "attention panel (what waits for you)",
            Self::ToggleBell => "bell on / off",
            Self::Reconnect => "reconnect to the relay now",
            Self::Quit => "quit",
            Self::OpenPalette => "command palette (every action by name)",
            Self::OpenAdmin => "administration (users, hosts, credentials, audit)",
            Self::Grant => "grant a role on a host",
            Self::RevokeGrant => "revoke a grant",
            Self::RotateToken => "new enrolment token for the host",
            Self::Kill => "kill switch for it (typed confirmation)",
            Self::KillAll => "kill switch for everything (typed confirmation)",
            Self::Refresh => "read again",
            Self::AddItem => "add a user / enroll a host",
            Self::Remove => "remove the user / revoke the host or credential",
            Self::StartOpencode => "start OpenCode",
            Self::StopOpencode => "stop OpenCode",
            Self::NewSession => "new session",
            Self::RenameSession => "rename the session (rename NEW TITLE)",
            Self::DeleteSession => "delete the session (press twice; cannot be undone)",
            Self::FocusPrompt => "write a prompt",
            Self::Abort => "abort the running turn",
            Self::ShowDiff => "show the diff",
            Self::PickModel => "pick the model / agent of the next prompts",
            Self::AllowOnce => "allow the permission request once",
            Self::AllowAlways => "allow always (says what; again to confirm)",
            Self::AllowAlwaysThis => "always, only this file / command (confirmed)",
            Self::RevokeAlways => "revoke the workspace's standing \"always\" grants",
            Self::CloneRepo => "clone a repository beneath the workspace's root",
            Self::OpenTemplates => "the workspace's OpenCode templates (apply one)",
            Self::OpenFolders => "folders beneath the roots: make one a workspace",
            Self::OpenPorts => "the host's listening ports: forward one here",
            Self::StopForward => "stop the port's forward",
            Self::AddWorkspace => "add the cloned folder as a workspace",
            Self::RemoveWorkspace => "forget the workspace (asks; its files stay)",
            Self::ScrollRequestUp => "scroll the request up",
            Self::ScrollRequestDown => "scroll the request down",
            Self::Reject => "reject the permission request",
            Self::PrevBlock if context == Context::Diff => "previous hunk",
            Self::NextBlock if context == Context::Diff => "next hunk",
            Self::PrevBlock => "previous tool call / reasoning",
            Self::NextBlock => "next tool call / reasoning",
            Self::ToggleBlock => "expand / collapse it",
            Self::PrevFile => "previous file",
            Self::NextFile => "next file",
            Self::ToggleDiffScope => "session changes / whole working tree",
            Self::Dismiss => "dismiss",
            Self::Send if context == Context::Palette => "run the selected command",
            Self::Send => "send",
            Self::Newline => "new line (or end the line with \\ and press Enter)",
            Self::CursorLeft => "cursor left",
            Self::CursorRight => "cursor right",
            Self::CursorUp if context == Context::Filter => "previous row",
            Self::CursorDown if context == Context::Filter => "next row",
            Self::CursorUp if context == Context::Palette => "previous match",
            Self::CursorDown if context == Context::Palette => "next match",
            Self::CursorUp => "line up / older prompt",
            Self::CursorDown => "line down / newer prompt",
            Self::LineStart => "start of line",
            Self::LineEnd => "end of line",
            Self::DeleteBack => "delete before the cursor",
            Self::DeleteForward => "delete under the cursor",
            Self::DeleteWord => "delete the word before",
            Self::ClearLine => "delete to the start of the line",
            Self::LeaveInput if context == Context::Palette => "close the palette",
            Self::LeaveInput => "stop typing (keeps the text)",
            Self::AcceptFilter => "keep the filter",
            Self::ClearFilter => "clear the filter",
            Self::CopySecret => "copy the invite or token shown (to your clipboard, OSC 52)",
            Self::OpenNotifications => "notification settings (your channels at the relay)",
            Self::TestChannel => "send a test notification to the channel now",
        }
    }
}
