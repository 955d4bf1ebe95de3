//! The key tables: which keys trigger which [`Action`], per [`Context`]. They are data, so the
//! help overlay and the command palette are generated from the same tables that dispatch keys
//! and cannot drift from them. In the text contexts (prompt, filter, palette) printable keys
//! without a binding are typed. A [`Keymap`] applies the overrides of `tui.toml`'s `[keys]`
//! (an overridden action's keys replace its default keys everywhere it is bound).

use crate::action::Action;
use crate::event::{KeyCode, KeyPress};

pub use crate::key_context::Context;

/// One row of a key table: the keys and the action they trigger.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Keys that trigger the action; the first is shown first in the help.
    pub keys: &'static [KeyPress],
    /// The action.
    pub action: Action,
}

const fn bind(keys: &'static [KeyPress], action: Action) -> Binding {
    Binding { keys, action }
}

const fn key(code: KeyCode) -> KeyPress {
    KeyPress::plain(code)
}

const fn ch(c: char) -> KeyPress {
    KeyPress::char(c)
}

/// Moving through a list or a scrolled view.
const MOVE: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    // `<` `>`: the same without the keys a phone's keyboard lacks.
    bind(&[key(KeyCode::PageUp), ch('<')], Action::PageUp),
    bind(&[key(KeyCode::PageDown), ch('>')], Action::PageDown),
    bind(&[key(KeyCode::Home), ch('g')], Action::SelectFirst),
    bind(&[key(KeyCode::End), ch('G')], Action::SelectLast),
];

/// Every list screen (hosts, workspaces, sessions).
const LIST: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('/')], Action::Filter),
    bind(&[ch('r')], Action::Reconnect),
    bind(&[key(KeyCode::Esc)], Action::Back),
];

const WORKSPACES: &[Binding] = &[
    bind(&[ch('s')], Action::StartOpencode),
    bind(&[ch('S')], Action::StopOpencode),
    bind(&[ch('X')], Action::RevokeAlways),
    bind(&[ch('c')], Action::CloneRepo),
    bind(&[ch('t')], Action::OpenTemplates),
    bind(&[ch('f')], Action::OpenFolders),
    bind(&[ch('p')], Action::OpenPorts),
    // A back key every phone keyboard has (not on the hosts screen, where back quits).
    bind(&[key(KeyCode::Backspace)], Action::Back),
];

const SESSIONS: &[Binding] = &[
    bind(&[ch('n')], Action::NewSession),
    bind(&[ch('R')], Action::RenameSession),
    bind(&[ch('D')], Action::DeleteSession),
    bind(&[key(KeyCode::Backspace)], Action::Back),
];

const HOSTS: &[Binding] = &[bind(&[ch('m')], Action::OpenAdmin)];

/// Answering a permission request (session screen and attention panel).
const ANSWER: &[Binding] = &[
    bind(&[ch('y')], Action::AllowOnce),
    bind(&[ch('A')], Action::AllowAlways),
    bind(&[ch('f')], Action::AllowAlwaysThis),
    bind(&[ch('r')], Action::Reject),
    bind(&[ch('K')], Action::ScrollRequestUp),
    bind(&[ch('J')], Action::ScrollRequestDown),
];

const SESSION: &[Binding] = &[
    bind(&[ch('i')], Action::FocusPrompt),
    bind(&[ch('a')], Action::Abort),
    bind(&[ch('d')], Action::ShowDiff),
    bind(&[ch('M')], Action::PickModel),
    bind(&[ch('[')], Action::PrevBlock),
    bind(&[ch(']')], Action::NextBlock),
    bind(&[key(KeyCode::Enter), ch(' ')], Action::ToggleBlock),
    // Backspace: a back key every phone keyboard has.
    bind(&[key(KeyCode::Esc), key(KeyCode::Backspace)], Action::Back),
];

const DIFF: &[Binding] = &[
    bind(&[key(KeyCode::Left), ch('h')], Action::PrevFile),
    bind(&[key(KeyCode::Right), ch('l')], Action::NextFile),
    bind(&[ch('[')], Action::PrevBlock),
    bind(&[ch(']')], Action::NextBlock),
    bind(&[ch('w')], Action::ToggleDiffScope),
    bind(&[ch('r')], Action::Refresh),
    // Backspace: a back key every phone keyboard has.
    bind(&[key(KeyCode::Esc), key(KeyCode::Backspace)], Action::Back),
];

const ATTENTION: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('x')], Action::Dismiss),
    // Backspace: a back key every phone keyboard has.
    bind(&[key(KeyCode::Esc), key(KeyCode::Backspace)], Action::Back),
];

/// Keys that work on every screen that is not a text input.
const GLOBAL: &[Binding] = &[
    bind(&[key(KeyCode::Tab), ch('!')], Action::ToggleAttention),
    bind(&[ch('b')], Action::ToggleBell),
    bind(&[ch('?')], Action::ToggleHelp),
    bind(&[ch(':')], Action::OpenPalette),
    // `N`: no screen uses it, and a phone keyboard types it without a chord.
    bind(&[ch('N')], Action::OpenNotifications),
    bind(&[ch('q'), KeyPress::ctrl('c')], Action::Quit),
];

const PROMPT: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(
        &[
            KeyPress::alt(KeyCode::Enter),
            KeyPress::shift(KeyCode::Enter),
            KeyPress::ctrl('j'),
        ],
        Action::Newline,
    ),
    bind(&[key(KeyCode::Esc)], Action::LeaveInput),
    bind(&[key(KeyCode::Up)], Action::CursorUp),
    bind(&[key(KeyCode::Down)], Action::CursorDown),
    bind(&[key(KeyCode::Left)], Action::CursorLeft),
    bind(&[key(KeyCode::Right)], Action::CursorRight),
    bind(
        &[key(KeyCode::Home), KeyPress::ctrl('a')],
        Action::LineStart,
    ),
    bind(&[key(KeyCode::End), KeyPress::ctrl('e')], Action::LineEnd),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[key(KeyCode::Delete)], Action::DeleteForward),
    bind(&[KeyPress::ctrl('w')], Action::DeleteWord),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[key(KeyCode::Tab)], Action::ToggleAttention),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const FILTER: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::AcceptFilter),
    bind(&[key(KeyCode::Esc)], Action::ClearFilter),
    bind(&[key(KeyCode::Up)], Action::CursorUp),
    bind(&[key(KeyCode::Down)], Action::CursorDown),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const PALETTE: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(&[key(KeyCode::Esc)], Action::LeaveInput),
    bind(&[key(KeyCode::Up), KeyPress::ctrl('p')], Action::CursorUp),
    bind(
        &[key(KeyCode::Down), KeyPress::ctrl('n')],
        Action::CursorDown,
    ),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const QUESTION: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[ch(' ')], Action::ToggleBlock),
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(&[ch('r')], Action::Reject),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const MODEL_PICKER: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const CLONE_FORM: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(&[key(KeyCode::Tab), key(KeyCode::Down)], Action::CursorDown),
    bind(&[key(KeyCode::BackTab), key(KeyCode::Up)], Action::CursorUp),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[key(KeyCode::Esc)], Action::LeaveInput),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const CLONE_PROGRESS: &[Binding] = &[
    bind(&[ch('a')], Action::AddWorkspace),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const TEMPLATES: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Home), ch('g')], Action::SelectFirst),
    bind(&[key(KeyCode::End), ch('G')], Action::SelectLast),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('r')], Action::Refresh),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const FOLDERS: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Home), ch('g')], Action::SelectFirst),
    bind(&[key(KeyCode::End), ch('G')], Action::SelectLast),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('x')], Action::RemoveWorkspace),
    bind(&[ch('r')], Action::Refresh),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const PORTS: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Home), ch('g')], Action::SelectFirst),
    bind(&[key(KeyCode::End), ch('G')], Action::SelectLast),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('x')], Action::StopForward),
    bind(&[ch('r')], Action::Refresh),
    bind(&[key(KeyCode::Esc)], Action::Back),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const FOLDER_NAME: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[key(KeyCode::Esc)], Action::LeaveInput),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const ADMIN: &[Binding] = &[
    bind(&[key(KeyCode::Left), ch('h')], Action::PrevFile),
    bind(&[key(KeyCode::Right), ch('l')], Action::NextFile),
    bind(&[ch('a')], Action::AddItem),
    bind(&[ch('+')], Action::Grant),
    bind(&[ch('x')], Action::RevokeGrant),
    bind(&[ch('R')], Action::RotateToken),
    bind(&[ch('D')], Action::Remove),
    bind(&[ch('K')], Action::Kill),
    bind(&[ch('X')], Action::KillAll),
    bind(&[ch('/')], Action::Filter),
    bind(&[ch('r')], Action::Refresh),
    bind(&[ch('c')], Action::CopySecret),
    // Backspace: a back key every phone keyboard has.
    bind(&[key(KeyCode::Esc), key(KeyCode::Backspace)], Action::Back),
];

const NOTIFY: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Home), ch('g')], Action::SelectFirst),
    bind(&[key(KeyCode::End), ch('G')], Action::SelectLast),
    bind(&[ch('t')], Action::TestChannel),
    bind(&[ch('x')], Action::Remove),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('r')], Action::Refresh),
    bind(&[ch('?')], Action::ToggleHelp),
    // Backspace: a back key every phone keyboard has.
    bind(&[key(KeyCode::Esc), key(KeyCode::Backspace)], Action::Back),
    bind(&[ch('q'), KeyPress::ctrl('c')], Action::Quit),
];

const ADMIN_INPUT: &[Binding] = &[
    bind(&[key(KeyCode::Enter)], Action::Send),
    bind(&[key(KeyCode::Esc)], Action::LeaveInput),
    bind(&[key(KeyCode::Backspace)], Action::DeleteBack),
    bind(&[KeyPress::ctrl('u')], Action::ClearLine),
    bind(&[KeyPress::ctrl('c')], Action::Quit),
];

const HELP: &[Binding] = &[
    bind(&[ch('?'), key(KeyCode::Esc)], Action::ToggleHelp),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[ch('q'), KeyPress::ctrl('c')], Action::Quit),
];

/// The tables for `context`, looked up in order (the first match wins).
pub fn tables(context: Context) -> &'static [&'static [Binding]] {
    match context {
        Context::Hosts => &[MOVE, LIST, HOSTS, GLOBAL],
        Context::Workspaces => &[MOVE, LIST, WORKSPACES, GLOBAL],
        Context::Sessions => &[MOVE, LIST, SESSIONS, GLOBAL],
        Context::Session => &[MOVE, SESSION, ANSWER, GLOBAL],
        Context::Diff => &[MOVE, DIFF, GLOBAL],
        Context::Attention => &[ATTENTION, ANSWER, GLOBAL],
        Context::Prompt => &[PROMPT],
        Context::Filter => &[FILTER],
        Context::Help => &[HELP],
        Context::Palette => &[PALETTE],
        Context::Question => &[QUESTION],
        Context::ModelPicker => &[MODEL_PICKER],
        Context::CloneForm => &[CLONE_FORM],
        Context::CloneProgress => &[CLONE_PROGRESS],
        Context::Templates => &[TEMPLATES],
        Context::Folders => &[FOLDERS],
        Context::Ports => &[PORTS],
        Context::FolderName => &[FOLDER_NAME],
        Context::Admin => &[MOVE, ADMIN, GLOBAL],
        Context::AdminInput => &[ADMIN_INPUT],
        Context::Notify => &[NOTIFY],
    }
}

/// The contexts that have key tables.
pub const CONTEXTS: [Context; 21] = [
    Context::Hosts,
    Context::Workspaces,
    Context::Sessions,
    Context::Session,
    Context::Diff,
    Context::Attention,
    Context::Prompt,
    Context::Filter,
    Context::Help,
    Context::Palette,
    Context::Question,
    Context::ModelPicker,
    Context::CloneForm,
    Context::CloneProgress,
    Context::Templates,
    Context::Folders,
    Context::Ports,
    Context::FolderName,
    Context::Admin,
    Context::AdminInput,
    Context::Notify,
];

/// A `[keys]` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    /// No action has this name.
    #[error("keys.{0}: no such action; the actions are listed in docs/tui.example.toml")]
    UnknownAction(String),
    /// The key is not understood.
    #[error(
        "keys.{action} = {key:?}: not a key; write e.g. \"x\", \"ctrl-a\", \"alt-enter\", \"pgdn\""
    )]
    BadKey {
        /// The action.
        action: String,
        /// The key as written.
        key: String,
    },
    /// Two actions would share a key where both work.
    #[error(
        "keys.{action} = {key:?}: {key} is already bound to {other} on the {context} screen; \
         pick another key or rebind {other} too"
    )]
    Duplicate {
        /// The action being bound.
        action: String,
        /// The key as written.
        key: String,
        /// The action the key already triggers.
        other: String,
        /// Where the two meet.
        context: &'static str,
    },
}

/// The keys in effect: the default tables with the configured overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keymap {
    overrides: Vec<(Action, Vec<KeyPress>)>,
}

impl Keymap {
    /// The default tables with `overrides` (action name → keys as written in `tui.toml`).
    ///
    /// # Errors
    /// An unknown action, an unreadable key, or a key two actions would share in a context.
    pub fn with_overrides(overrides: &[(String, Vec<String>)]) -> Result<Self, KeymapError> {
        let mut map = Self::default();
        let mut written = Vec::new();
        for (name, keys) in overrides {
            let action =
                Action::from_name(name).ok_or_else(|| KeymapError::UnknownAction(name.clone()))?;
            let mut parsed = Vec::new();
            for k in keys {
                let key = parse_key(k).ok_or_else(|| KeymapError::BadKey {
                    action: name.clone(),
                    key: k.clone(),
                })?;
                parsed.push(key);
                written.push((action, key, k.clone()));
            }
            map.overrides.push((action, parsed));
        }
        for context in CONTEXTS {
            let bindings = map.bindings(context);
            for (action, key, text) in &written {
                let Some(other) = bindings
                    .iter()
                    .find(|(keys, a)| a != action && keys.contains(key))
                    .map(|(_, a)| *a)
                else {
                    continue;
                };
                if bindings.iter().any(|(_, a)| a == action) {
                    return Err(KeymapError::Duplicate {
                        action: action.name().to_owned(),
                        key: text.clone(),
                        other: other.name().to_owned(),
                        context: context.title(),
                    });
                }
            }
        }
        Ok(map)
    }

    /// The bindings of `context` with the overrides applied, in lookup order.
    pub fn bindings(&self, context: Context) -> Vec<(Vec<KeyPress>, Action)> {
        tables(context)
            .iter()
            .flat_map(|t| t.iter())
            .map(|b| {
                let mut keys = self
                    .overrides
                    .iter()
                    .find(|(a, _)| *a == b.action)
                    .map_or_else(|| b.keys.to_vec(), |(_, keys)| keys.clone());
                if context.is_text() {
                    // Where text is typed, a plain character must type itself: such override
                    // keys do not apply there (and with none left, the defaults stay).
                    keys.retain(|k| !types(*k));
                    if keys.is_empty() {
                        keys = b.keys.to_vec();
                    }
                }
                (keys, b.action)
            })
            .collect()
    }

    /// The action bound to `key` in `context`, if any.
    pub fn action_for(&self, context: Context, key: KeyPress) -> Option<Action> {
        if self.overrides.is_empty() {
            return action_for(context, key);
        }
        self.bindings(context)
            .into_iter()
            .find(|(keys, _)| keys.contains(&key))
            .map(|(_, a)| a)
    }

    /// The character `key` types in a text context, if it is printable and unbound.
    pub fn typed_char(&self, context: Context, key: KeyPress) -> Option<char> {
        match key.code {
            KeyCode::Char(c)
                if context.is_text()
                    && !key.ctrl
                    && !key.alt
                    && !c.is_control()
                    && self.action_for(context, key).is_none() =>
            {
                Some(c)
            }
            _ => None,
        }
    }

    /// Help rows for `context`: the keys joined with `/`, and what they do.
    pub fn help_rows(&self, context: Context) -> Vec<(String, &'static str)> {
        self.help_rows_without(context, &[])
    }

    /// Help rows for `context` without the actions in `hidden` (what the role cannot use).
    pub fn help_rows_without(
        &self,
        context: Context,
        hidden: &[Action],
    ) -> Vec<(String, &'static str)> {
        let mut rows: Vec<(String, &'static str)> = self
            .bindings(context)
            .into_iter()
            .filter(|(_, action)| !hidden.contains(action))
            .map(|(keys, action)| (keys_text(&keys), action.description(context)))
            .collect();
        if context.is_text() {
            rows.push(("text".into(), "typed into the box"));
        }
        rows
    }

    /// The keys of `action` in `context`, joined with `/` (empty when unbound there).
    pub fn keys_of(&self, context: Context, action: Action) -> String {
        self.bindings(context)
            .into_iter()
            .find(|(_, a)| *a == action)
            .map(|(keys, _)| keys_text(&keys))
            .unwrap_or_default()
    }
}

/// Whether `key` would type a character.
fn types(key: KeyPress) -> bool {
    matches!(key.code, KeyCode::Char(c) if !key.ctrl && !key.alt && !c.is_control())
}

fn keys_text(keys: &[KeyPress]) -> String {
    let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
    keys.join("/")
}

/// A key as written in `tui.toml`: a character (`"x"`, `"X"`, `":"`), a named key (`"enter"`,
/// `"esc"`, `"tab"`, `"backspace"`, `"delete"`, `"up"`, `"down"`, `"left"`, `"right"`,
/// `"home"`, `"end"`, `"pgup"`, `"pgdn"`, `"space"`), with `ctrl-`, `alt-` or `shift-`
/// prefixes (shift only on named keys). Case-insensitive except for the character itself.
pub fn parse_key(text: &str) -> Option<KeyPress> {
    let mut rest = text;
    let mut press = KeyPress::plain(KeyCode::Other);
    loop {
        let lower = rest.to_ascii_lowercase();
        if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
            press.ctrl = true;
            rest = &rest[5..];
        } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
            press.alt = true;
            rest = &rest[4..];
        } else if rest.chars().count() > 1 && lower.starts_with("shift-") {
            press.shift = true;
            rest = &rest[6..];
        } else {
            break;
        }
    }
    let mut chars = rest.chars();
    press.code = match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() && !press.shift => KeyCode::Char(if press.ctrl {
            c.to_ascii_lowercase()
        } else {
            c
        }),
        _ => match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "space" if !press.shift => KeyCode::Char(' '),
            _ => return None,
        },
    };
    Some(press)
}

/// The action bound to `key` in `context`, if any.
pub fn action_for(context: Context, key: KeyPress) -> Option<Action> {
    tables(context)
        .iter()
        .flat_map(|t| t.iter())
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

#[cfg(test)]
mod tests;
