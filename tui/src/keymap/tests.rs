//! The key tables' invariants and the `[keys]` overrides.

use super::*;
use std::collections::HashSet;

const ALL: [Context; 21] = CONTEXTS;

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
    let map = Keymap::with_overrides(&[]).unwrap();
    let typed_char = |c, k| map.typed_char(c, k);
    assert_eq!(typed_char(Context::Prompt, ch('q')), Some('q'));
    assert_eq!(typed_char(Context::Prompt, ch('?')), Some('?'));
    assert_eq!(typed_char(Context::Prompt, KeyPress::ctrl('c')), None);
    assert_eq!(typed_char(Context::Filter, ch('x')), Some('x'));
    assert_eq!(typed_char(Context::Hosts, ch('x')), None);
}

#[test]
fn help_lists_every_binding_of_the_context() {
    let map = Keymap::with_overrides(&[]).unwrap();
    let help_rows = |c| map.help_rows(c);
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

#[test]
fn keys_parse_as_written_in_the_config() {
    assert_eq!(parse_key("x"), Some(ch('x')));
    assert_eq!(parse_key("X"), Some(ch('X')));
    assert_eq!(parse_key("-"), Some(ch('-')));
    assert_eq!(parse_key("ctrl-a"), Some(KeyPress::ctrl('a')));
    assert_eq!(parse_key("Ctrl-A"), Some(KeyPress::ctrl('a')));
    assert_eq!(parse_key("alt-enter"), Some(KeyPress::alt(KeyCode::Enter)));
    assert_eq!(
        parse_key("shift-enter"),
        Some(KeyPress::shift(KeyCode::Enter))
    );
    assert_eq!(parse_key("pgdn"), Some(key(KeyCode::PageDown)));
    assert_eq!(parse_key("space"), Some(ch(' ')));
    for bad in ["", "ctrl-", "shift-a", "hyper-x", "f13", "ab"] {
        assert_eq!(parse_key(bad), None, "{bad:?}");
    }
}

fn over(pairs: &[(&str, &[&str])]) -> Result<Keymap, KeymapError> {
    let pairs: Vec<(String, Vec<String>)> = pairs
        .iter()
        .map(|(a, keys)| {
            (
                (*a).to_owned(),
                keys.iter().map(|k| (*k).to_owned()).collect(),
            )
        })
        .collect();
    Keymap::with_overrides(&pairs)
}

#[test]
fn overrides_replace_an_actions_keys_and_show_in_the_help() {
    let map = over(&[("abort", &["ctrl-a"])]).expect("valid");
    assert_eq!(
        map.action_for(Context::Session, KeyPress::ctrl('a')),
        Some(Action::Abort)
    );
    assert_eq!(
        map.action_for(Context::Session, ch('a')),
        None,
        "old key freed"
    );
    // Ctrl-A still moves to the line start while typing (abort is not bound there).
    assert_eq!(
        map.action_for(Context::Prompt, KeyPress::ctrl('a')),
        Some(Action::LineStart)
    );
    let help = map.help_rows(Context::Session);
    assert!(
        help.contains(&("Ctrl-A".to_owned(), "abort the running turn")),
        "{help:?}"
    );
    assert_eq!(map.keys_of(Context::Session, Action::Abort), "Ctrl-A");
    // A character key never stops typing it: q still types q in the prompt.
    let map = over(&[("quit", &["q", "ctrl-q"])]).expect("valid");
    assert_eq!(map.typed_char(Context::Prompt, ch('q')), Some('q'));
    assert_eq!(
        map.action_for(Context::Prompt, KeyPress::ctrl('q')),
        Some(Action::Quit)
    );
    assert_eq!(map.action_for(Context::Prompt, KeyPress::ctrl('c')), None);
    let map = over(&[("quit", &["Q"])]).expect("valid");
    assert_eq!(
        map.action_for(Context::Prompt, KeyPress::ctrl('c')),
        Some(Action::Quit),
        "no usable key left: the default stays"
    );
}

#[test]
fn bad_overrides_are_errors_naming_the_key() {
    let e = over(&[("abortt", &["x"])]).expect_err("unknown action");
    assert_eq!(e, KeymapError::UnknownAction("abortt".into()));
    assert!(e.to_string().starts_with("keys.abortt:"), "{e}");
    let e = over(&[("abort", &["hyper-q"])]).expect_err("bad key");
    assert!(e.to_string().starts_with("keys.abort = \"hyper-q\""), "{e}");
    let e = over(&[("abort", &["q"])]).expect_err("q quits");
    assert_eq!(
        e,
        KeymapError::Duplicate {
            action: "abort".into(),
            key: "q".into(),
            other: "quit".into(),
            context: "session",
        }
    );
    // Moving quit away first makes q free.
    over(&[("quit", &["ctrl-q"]), ("abort", &["q"])]).expect("q is free now");
}

/// A phone's on-screen keyboard has letters, symbols, Enter and Backspace; Ctrl, Alt, Esc,
/// Tab and the page keys are extras some terminals lack. Every action of the screens a phone
/// user walks (and of the help) has a key from the keyboard itself.
#[test]
fn a_phone_keyboard_reaches_every_action_without_a_chord() {
    use Context as C;
    let phone = |k: &KeyPress| {
        !k.ctrl
            && !k.alt
            && matches!(
                k.code,
                KeyCode::Char(_) | KeyCode::Enter | KeyCode::Backspace
            )
    };
    let map = Keymap::default();
    for context in [
        C::Hosts,
        C::Workspaces,
        C::Sessions,
        C::Session,
        C::Diff,
        C::Attention,
        C::Help,
        C::Admin,
    ] {
        let bindings = map.bindings(context);
        for (_, action) in &bindings {
            // Back on the hosts screen quits: `q` does that.
            if context == C::Hosts && *action == Action::Back {
                continue;
            }
            let keys: Vec<KeyPress> = bindings
                .iter()
                .filter(|(_, a)| a == action)
                .flat_map(|(k, _)| k.iter().copied())
                .collect();
            assert!(
                keys.iter().any(phone),
                "{action:?} in {context:?} needs a key a phone keyboard lacks: {keys:?}"
            );
        }
    }
}

#[test]
fn n_opens_the_notification_settings_from_every_screen_and_types_in_text_boxes() {
    use Context as C;
    for context in [
        C::Hosts,
        C::Workspaces,
        C::Sessions,
        C::Session,
        C::Diff,
        C::Attention,
        C::Admin,
    ] {
        assert_eq!(
            action_for(context, ch('N')),
            Some(Action::OpenNotifications),
            "{context:?}"
        );
    }
    let map = Keymap::default();
    assert_eq!(map.typed_char(C::Prompt, ch('N')), Some('N'));
    assert_eq!(action_for(C::Notify, ch('t')), Some(Action::TestChannel));
    assert_eq!(action_for(C::Notify, ch('x')), Some(Action::Remove));
    assert_eq!(action_for(C::Notify, key(KeyCode::Esc)), Some(Action::Back));
}
