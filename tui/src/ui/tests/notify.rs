//! Whole-screen snapshots of the notification settings panel (`N`) at 80×24 and on a phone's
//! terminal (50×30, 40×20): a list with a failing channel, an empty list, and the question
//! before a removal.

use super::{screen, steady};
use crate::app::tests::Drive;
use crate::app::tests::notify::{channels, with_channels};

/// 80×24, 50×30 and 40×20, one after the other.
fn sizes(d: &Drive) -> String {
    format!(
        "{}{}{}",
        screen(&d.app, 80, 24),
        screen(&d.app, 50, 30),
        screen(&d.app, 40, 20)
    )
}

#[test]
fn notification_settings_show_a_failing_channel_with_its_error() {
    let mut d = with_channels(channels());
    // The failing one selected: the panel keeps it in view at every size.
    d.key('j');
    let d = steady(d);
    for (w, h) in [(80, 24), (50, 30), (40, 20)] {
        let text = screen(&d.app, w, h);
        for needle in [
            "notifications",
            "team-hook",
            "FAILING · 3 failed",
            "4 delivered, last 2 h ago",
            "HTTP 500",
            "t test",
        ] {
            assert!(
                text.contains(needle),
                "{needle:?} missing at {w}x{h}:\n{text}"
            );
        }
    }
    let text = screen(&d.app, 80, 24);
    for needle in [
        "phone",
        "ok · 12 delivered, last 3 min ago",
        "quiet 22:00-07:00 UTC+01:00",
        "permission,question,failed",
        "cm-tui notify add ntfy --server URL --topic T",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(sizes(&d));
}

#[test]
fn notification_settings_empty_say_how_to_add_one() {
    let d = steady(with_channels(Vec::new()));
    for (w, h) in [(80, 24), (50, 30), (40, 20)] {
        let text = screen(&d.app, w, h);
        for needle in [
            "no channels yet",
            "cm-tui notify add ntfy",
            "--secret-env VAR",
        ] {
            assert!(
                text.contains(needle),
                "{needle:?} missing at {w}x{h}:\n{text}"
            );
        }
    }
    insta::assert_snapshot!(sizes(&d));
}

#[test]
fn notification_settings_ask_before_removing() {
    let mut d = with_channels(channels());
    d.key('x');
    let d = steady(d);
    let text = screen(&d.app, 40, 20);
    assert!(text.contains("remove phone? Enter removes"), "{text}");
    assert!(text.contains("Enter remove · Esc keep"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn question_mark_lists_the_panels_keys_on_a_phone() {
    let mut d = with_channels(channels());
    d.key('?');
    let text = screen(&d.app, 40, 20);
    for needle in ["send a test", "remove the channel", "read the channels"] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}
