//! The key tables: which keys trigger which [`Action`], per [`Context`]. They are data, so the
//! help overlay is generated from the same tables that dispatch keys and cannot drift from them.
//! In the text contexts (prompt, filter) printable keys without a binding are typed.

use crate::action::Action;
use crate::event::{KeyCode, KeyPress};

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
}

impl Context {
    /// Whether printable keys are typed rather than looked up.
    pub fn is_text(self) -> bool {
        matches!(self, Self::Prompt | Self::Filter)
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
        }
    }
}

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
    bind(&[key(KeyCode::PageUp)], Action::PageUp),
    bind(&[key(KeyCode::PageDown)], Action::PageDown),
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
];

const SESSIONS: &[Binding] = &[bind(&[ch('n')], Action::NewSession)];

/// Answering a permission request (session screen and attention panel).
const ANSWER: &[Binding] = &[
    bind(&[ch('y')], Action::AllowOnce),
    bind(&[ch('A')], Action::AllowAlways),
    bind(&[ch('r')], Action::Reject),
];

const SESSION: &[Binding] = &[
    bind(&[ch('i')], Action::FocusPrompt),
    bind(&[ch('a')], Action::Abort),
    bind(&[ch('d')], Action::ShowDiff),
    bind(&[ch('[')], Action::PrevBlock),
    bind(&[ch(']')], Action::NextBlock),
    bind(&[key(KeyCode::Enter), ch(' ')], Action::ToggleBlock),
    bind(&[key(KeyCode::Esc)], Action::Back),
];

const DIFF: &[Binding] = &[
    bind(&[key(KeyCode::Left), ch('h')], Action::PrevFile),
    bind(&[key(KeyCode::Right), ch('l')], Action::NextFile),
    bind(&[ch('[')], Action::PrevBlock),
    bind(&[ch(']')], Action::NextBlock),
    bind(&[ch('w')], Action::ToggleDiffScope),
    bind(&[key(KeyCode::Esc)], Action::Back),
];

const ATTENTION: &[Binding] = &[
    bind(&[key(KeyCode::Up), ch('k')], Action::SelectPrev),
    bind(&[key(KeyCode::Down), ch('j')], Action::SelectNext),
    bind(&[key(KeyCode::Enter)], Action::Open),
    bind(&[ch('x')], Action::Dismiss),
    bind(&[key(KeyCode::Esc)], Action::Back),
];

/// Keys that work on every screen that is not a text input.
const GLOBAL: &[Binding] = &[
    bind(&[key(KeyCode::Tab), ch('!')], Action::ToggleAttention),
    bind(&[ch('b')], Action::ToggleBell),
    bind(&[ch('?')], Action::ToggleHelp),
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

const HELP: &[Binding] = &[
    bind(&[ch('?'), key(KeyCode::Esc)], Action::ToggleHelp),
    bind(&[ch('q'), KeyPress::ctrl('c')], Action::Quit),
];

/// The tables for `context`, looked up in order (the first match wins).
pub fn tables(context: Context) -> &'static [&'static [Binding]] {
    match context {
        Context::Hosts => &[MOVE, LIST, GLOBAL],
        Context::Workspaces => &[MOVE, LIST, WORKSPACES, GLOBAL],
        Context::Sessions => &[MOVE, LIST, SESSIONS, GLOBAL],
        Context::Session => &[MOVE, SESSION, ANSWER, GLOBAL],
        Context::Diff => &[MOVE, DIFF, GLOBAL],
        Context::Attention => &[ATTENTION, ANSWER, GLOBAL],
        Context::Prompt => &[PROMPT],
        Context::Filter => &[FILTER],
        Context::Help => &[HELP],
    }
}

/// The action bound to `key` in `context`, if any.
pub fn action_for(context: Context, key: KeyPress) -> Option<Action> {
    tables(context)
        .iter()
        .flat_map(|t| t.iter())
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

/// The character `key` types in a text context, if it is printable and unbound.
pub fn typed_char(context: Context, key: KeyPress) -> Option<char> {
    match key.code {
        KeyCode::Char(c)
            if context.is_text()
                && !key.ctrl
                && !key.alt
                && !c.is_control()
                && action_for(context, key).is_none() =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// Help rows for `context`: the keys joined with `/`, and what they do.
pub fn help_rows(context: Context) -> Vec<(String, &'static str)> {
    let mut rows: Vec<(String, &'static str)> = tables(context)
        .iter()
        .flat_map(|t| t.iter())
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(ToString::to_string).collect();
            (keys.join("/"), b.action.description(context))
        })
        .collect();
    if context.is_text() {
        rows.push(("text".into(), "typed into the box"));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const ALL: [Context; 9] = [
        Context::Hosts,
        Context::Workspaces,
        Context::Sessions,
        Context::Session,
        Context::Diff,
        Context::Attention,
        Context::Prompt,
        Context::Filter,
        Context::Help,
    ];

    #[test]
    fn no_key_is_bound_twice_in_a_context() {
        for context in ALL {
            let mut seen = HashSet::new();
            for b in tables(context).iter().flat_map(|t| t.iter()) {
                for k in b.keys {
                    assert!(seen.insert(*k), "{k} is bound twice in {context:?}");
                }
            }
        }
    }

    #[test]
    fn brief_keys_are_bound() {
        use Context as C;
        let cases = [
            (C::Hosts, ch('q'), Some(Action::Quit)),
            (C::Hosts, KeyPress::ctrl('c'), Some(Action::Quit)),
            (C::Hosts, ch('c'), None),
            (C::Hosts, ch('j'), Some(Action::SelectNext)),
            (C::Hosts, key(KeyCode::Home), Some(Action::SelectFirst)),
            (C::Hosts, ch('r'), Some(Action::Reconnect)),
            (C::Hosts, key(KeyCode::Enter), Some(Action::Open)),
            (C::Hosts, ch('/'), Some(Action::Filter)),
            (C::Hosts, key(KeyCode::Tab), Some(Action::ToggleAttention)),
            (C::Hosts, ch('!'), Some(Action::ToggleAttention)),
            (C::Workspaces, ch('s'), Some(Action::StartOpencode)),
            (C::Workspaces, ch('S'), Some(Action::StopOpencode)),
            (C::Sessions, ch('n'), Some(Action::NewSession)),
            (C::Session, ch('i'), Some(Action::FocusPrompt)),
            (C::Session, ch('a'), Some(Action::Abort)),
            (C::Session, ch('d'), Some(Action::ShowDiff)),
            (C::Session, ch('y'), Some(Action::AllowOnce)),
            (C::Session, ch('A'), Some(Action::AllowAlways)),
            (C::Session, ch('r'), Some(Action::Reject)),
            (C::Attention, ch('r'), Some(Action::Reject)),
            (
                C::Attention,
                key(KeyCode::Tab),
                Some(Action::ToggleAttention),
            ),
            (C::Prompt, key(KeyCode::Enter), Some(Action::Send)),
            (
                C::Prompt,
                KeyPress::alt(KeyCode::Enter),
                Some(Action::Newline),
            ),
            (
                C::Prompt,
                KeyPress::shift(KeyCode::Enter),
                Some(Action::Newline),
            ),
            (C::Prompt, ch('q'), None),
            (C::Filter, key(KeyCode::Esc), Some(Action::ClearFilter)),
        ];
        for (context, k, want) in cases {
            assert_eq!(action_for(context, k), want, "{k} in {context:?}");
        }
    }

    #[test]
    fn only_text_contexts_type_characters() {
        assert_eq!(typed_char(Context::Prompt, ch('q')), Some('q'));
        assert_eq!(typed_char(Context::Prompt, ch('?')), Some('?'));
        assert_eq!(typed_char(Context::Prompt, KeyPress::ctrl('c')), None);
        assert_eq!(typed_char(Context::Filter, ch('x')), Some('x'));
        assert_eq!(typed_char(Context::Hosts, ch('x')), None);
    }

    #[test]
    fn help_lists_every_binding_of_the_context() {
        for context in ALL {
            let rows = help_rows(context);
            let bindings: usize = tables(context).iter().map(|t| t.len()).sum();
            let extra = usize::from(context.is_text());
            assert_eq!(rows.len(), bindings + extra, "{context:?}");
        }
        let rows = help_rows(Context::Hosts);
        assert!(rows.contains(&("q/Ctrl-C".to_owned(), "quit")), "{rows:?}");
        let rows = help_rows(Context::Session);
        assert!(
            rows.contains(&("r".to_owned(), "reject the permission request")),
            "{rows:?}"
        );
    }
}
