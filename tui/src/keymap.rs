//! The key table: which keys trigger which [`Action`]. It is data, so the help overlay is
//! generated from the same table that dispatches keys and cannot drift from it.

use crate::action::Action;
use crate::event::{KeyCode, KeyPress};

/// One row of the key table: the keys and the action they trigger.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// Keys that trigger the action; the first is shown first in the help.
    pub keys: &'static [KeyPress],
    /// The action.
    pub action: Action,
}

/// The hosts screen's key table, in help order.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[KeyPress::plain(KeyCode::Up), KeyPress::char('k')],
        action: Action::SelectPrev,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::Down), KeyPress::char('j')],
        action: Action::SelectNext,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::PageUp)],
        action: Action::PageUp,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::PageDown)],
        action: Action::PageDown,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::Home), KeyPress::char('g')],
        action: Action::SelectFirst,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::End), KeyPress::char('G')],
        action: Action::SelectLast,
    },
    Binding {
        keys: &[KeyPress::char('r')],
        action: Action::Reconnect,
    },
    Binding {
        keys: &[KeyPress::char('?')],
        action: Action::ToggleHelp,
    },
    Binding {
        keys: &[KeyPress::plain(KeyCode::Esc)],
        action: Action::Back,
    },
    Binding {
        keys: &[KeyPress::char('q'), KeyPress::ctrl('c')],
        action: Action::Quit,
    },
];

/// The action bound to `key`, if any.
pub fn action_for(key: KeyPress) -> Option<Action> {
    BINDINGS
        .iter()
        .find(|b| b.keys.contains(&key))
        .map(|b| b.action)
}

/// Help rows: the keys joined with `/`, and what they do.
pub fn help_rows() -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(ToString::to_string).collect();
            (keys.join("/"), b.action.description())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = HashSet::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(seen.insert(*k), "{k} is bound twice");
            }
        }
    }

    #[test]
    fn brief_keys_are_bound() {
        assert_eq!(action_for(KeyPress::char('q')), Some(Action::Quit));
        assert_eq!(action_for(KeyPress::ctrl('c')), Some(Action::Quit));
        assert_eq!(action_for(KeyPress::char('c')), None);
        assert_eq!(action_for(KeyPress::char('j')), Some(Action::SelectNext));
        assert_eq!(
            action_for(KeyPress::plain(KeyCode::Home)),
            Some(Action::SelectFirst)
        );
        assert_eq!(action_for(KeyPress::char('r')), Some(Action::Reconnect));
    }

    #[test]
    fn help_lists_every_binding() {
        let rows = help_rows();
        assert_eq!(rows.len(), BINDINGS.len());
        assert!(rows.contains(&("q/Ctrl-C".to_owned(), "quit")), "{rows:?}");
    }
}
