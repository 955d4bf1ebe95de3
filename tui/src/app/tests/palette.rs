//! The `:` palette, keymap overrides, the mouse wheel and the notification hook, through
//! `update()`.

use super::*;
use crate::app::palette::Command;

fn open(d: &mut Drive) {
    d.key(':');
    assert_eq!(d.app.context(), Context::Palette);
}

#[test]
fn the_palette_runs_the_best_match_as_the_screen_would() {
    let mut d = Drive::at_session();
    open(&mut d);
    d.typed("abrt");
    let entries = d.app.palette_entries();
    let found = crate::app::palette::matches(&entries, "abrt");
    assert_eq!(
        found.first().map(|e| &e.command),
        Some(&Command::Action(Action::Abort))
    );
    d.code(KeyCode::Enter);
    assert!(d.app.palette().is_none(), "closed after running");
    assert_eq!(d.app.context(), Context::Session);
    d.take(Op::Abort);
}

#[test]
fn the_palette_types_letters_that_are_keys_elsewhere_and_esc_closes_it() {
    let mut d = Drive::at_session();
    open(&mut d);
    d.typed("quit");
    assert!(!d.fx.contains(&Effect::Quit), "q is typed, not run");
    assert_eq!(d.app.palette().map(|p| p.input.as_str()), Some("quit"));
    d.code(KeyCode::Backspace).code(KeyCode::Backspace);
    assert_eq!(d.app.palette().map(|p| p.input.as_str()), Some("qu"));
    d.code(KeyCode::Esc);
    assert!(d.app.palette().is_none());
    assert!(d.pending.is_empty(), "nothing ran");
    open(&mut d);
    d.typed("quit").code(KeyCode::Enter);
    assert!(d.fx.contains(&Effect::Quit));
}

#[test]
fn arrows_choose_among_matches_and_help_opens_the_overlay() {
    let mut d = Drive::new();
    open(&mut d);
    d.code(KeyCode::Down).code(KeyCode::Down).code(KeyCode::Up);
    assert_eq!(d.app.palette().map(|p| p.selected), Some(1));
    d.typed("help");
    assert_eq!(
        d.app.palette().map(|p| p.selected),
        Some(0),
        "typing resets"
    );
    d.code(KeyCode::Enter);
    assert!(d.app.help_visible());
}

#[test]
fn relay_switches_only_to_configured_profiles() {
    let mut d = Drive::new();
    d.app = d
        .app
        .clone()
        .with_relays(vec!["home".into(), "work".into()], Some("home".into()));
    open(&mut d);
    d.typed("relay wo").code(KeyCode::Enter);
    assert!(
        d.fx.contains(&Effect::SwitchRelay("work".into())),
        "{:?}",
        d.fx
    );
    open(&mut d);
    d.typed("relay nowhere").code(KeyCode::Enter);
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::SwitchRelay(_))));
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(
        notice.contains("no relay profile \"nowhere\"") && notice.contains("known: home, work"),
        "{notice}"
    );
    open(&mut d);
    d.typed("relay home").code(KeyCode::Enter);
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::SwitchRelay(_))));
}

#[test]
fn an_unmatched_command_says_so() {
    let mut d = Drive::new();
    open(&mut d);
    d.typed("zzzz").code(KeyCode::Enter);
    let notice = d.app.notice().cloned().expect("a notice");
    assert!(
        notice.error && notice.text.contains("no command matches"),
        "{notice:?}"
    );
}

#[test]
fn keymap_overrides_change_what_keys_do() {
    let keymap =
        Keymap::with_overrides(&[("abort".into(), vec!["ctrl-a".into()])]).expect("valid override");
    let mut d = Drive::at_session();
    d.app = d.app.clone().with_keymap(keymap);
    d.key('a');
    assert!(!d.asked(Op::Abort), "a no longer aborts");
    d.press(KeyPress::ctrl('a'));
    d.take(Op::Abort);
}

fn long_history(d: &mut Drive) {
    d.app.update(Event::Resize {
        width: 80,
        height: 24,
    });
    for i in 0..40 {
        d.event(
            10 + i,
            WsEvent::PartUpdated {
                session: "ses_new".into(),
                message_id: format!("msg_x{i}"),
                part: Part::Text {
                    id: format!("prt_x{i}"),
                    text: format!("line {i}"),
                },
            },
        );
    }
}

#[test]
fn the_wheel_scrolls_the_transcript_even_while_typing() {
    let mut d = Drive::at_session();
    long_history(&mut d);
    assert_eq!(d.session().top(), None, "following the bottom");
    d.send(Event::Scroll { up: true });
    let top = d.session().top().expect("scrolled up");
    d.key('i');
    d.send(Event::Scroll { up: true });
    assert_eq!(d.session().top(), Some(top - 3), "three rows a notch");
    assert!(d.session().focus, "the prompt keeps the keys");
    d.send(Event::Scroll { up: false })
        .send(Event::Scroll { up: false });
    assert_eq!(d.session().top(), None, "back at the bottom, following");
}

#[test]
fn the_wheel_moves_list_selections() {
    let mut d = Drive::new();
    assert_eq!(d.app.host_nav().selected(), 0);
    d.send(Event::Scroll { up: false });
    assert_eq!(d.app.host_nav().selected(), 1);
    d.send(Event::Scroll { up: true });
    assert_eq!(d.app.host_nav().selected(), 0);
}

#[test]
fn new_attention_asks_for_the_hook_with_its_details() {
    let mut d = Drive::at_sessions();
    d.key('b'); // the bell off does not silence the hook
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_old", "rm -rf build\u{1b}[2J"),
        },
    );
    let n =
        d.fx.iter()
            .find_map(|e| match e {
                Effect::Notify(n) => Some(n.clone()),
                _ => None,
            })
            .expect("a notification");
    assert_eq!(n.kind, "permission");
    assert_eq!((n.host.as_str(), n.workspace.as_str()), ("box", "demo"));
    assert_eq!(n.session.as_deref(), Some("ses_old"));
    assert!(n.text.contains("rm -rf build"), "{}", n.text);
    assert!(!n.text.contains('\u{1b}'), "control characters removed");
    let env = n.env();
    assert_eq!(env[0], ("CM_ATTENTION_KIND", "permission".to_owned()));
    d.event(
        3,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_old", "rm -rf build"),
        },
    );
    assert!(
        !d.fx.iter().any(|e| matches!(e, Effect::Notify(_))),
        "not again for the same request"
    );
}

#[test]
fn a_resize_lays_the_transcript_out_for_the_new_width() {
    let mut d = Drive::at_session();
    long_history(&mut d);
    let wide = d.session().layout().len();
    assert_eq!(d.session().layout().width(), crate::view::inner_width(80));
    d.send(Event::Resize {
        width: 30,
        height: 24,
    });
    assert_eq!(d.session().layout().width(), crate::view::inner_width(30));
    assert!(
        d.session().layout().len() > wide,
        "narrower wraps into more rows"
    );
}

#[test]
fn a_paste_goes_into_the_palette_as_one_line() {
    let mut d = Drive::new();
    open(&mut d);
    d.send(Event::Paste("help\nquit".into()));
    assert_eq!(d.app.palette().map(|p| p.input.as_str()), Some("help"));
    assert!(!d.fx.contains(&Effect::Quit));
}
