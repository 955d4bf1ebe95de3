//! The presence signal for the relay's notifications: a session on screen is told to the
//! relay (`notify_focus`), repeated while it stays; nothing on other screens.

use super::{Drive, T0};
use crate::call::Call;
use crate::event::Event;
use crate::event::KeyCode;
use crate::notify_focus::FOCUS_EVERY_MS;
use proto::header::Op;
use proto::notify::Focus;

#[test]
fn a_session_on_screen_tells_the_relay_it_is_watched_and_other_screens_do_not() {
    let mut d = Drive::at_sessions();
    d.send(Event::Tick { now_ms: T0 });
    assert!(
        !d.asked(Op::NotifyFocus),
        "the sessions list focuses no session"
    );
    let mut d = Drive::at_session();
    d.send(Event::Tick { now_ms: T0 });
    let sent = d.take(Op::NotifyFocus);
    assert_eq!(
        sent.call,
        Call::NotifyFocus(Focus {
            host: "box".into(),
            workspace: "demo".into(),
            session: "ses_new".into(),
        })
    );
    d.send(Event::Tick { now_ms: T0 + 1_000 });
    assert!(!d.asked(Op::NotifyFocus), "not on every tick");
    d.send(Event::Tick {
        now_ms: T0 + FOCUS_EVERY_MS,
    });
    d.take(Op::NotifyFocus);
    d.code(KeyCode::Esc);
    d.send(Event::Tick {
        now_ms: T0 + 3 * FOCUS_EVERY_MS,
    });
    assert!(!d.asked(Op::NotifyFocus), "left the session");
}

#[test]
fn a_terminal_in_the_background_or_left_idle_stops_telling_the_relay() {
    use crate::notify_focus::IDLE_AFTER_MS;
    let mut d = Drive::at_session();
    d.send(Event::Tick { now_ms: T0 });
    d.take(Op::NotifyFocus);
    d.send(Event::FocusLost);
    for t in [T0 + FOCUS_EVERY_MS, T0 + 5 * FOCUS_EVERY_MS] {
        d.send(Event::Tick { now_ms: t });
        assert!(!d.asked(Op::NotifyFocus), "the window is in the background");
    }
    d.send(Event::FocusGained);
    d.take(Op::NotifyFocus);

    // Nobody touches it: silent after the idle timeout, back with the next key.
    let later = T0 + 5 * FOCUS_EVERY_MS + IDLE_AFTER_MS;
    d.send(Event::Tick {
        now_ms: later - FOCUS_EVERY_MS,
    });
    d.take(Op::NotifyFocus);
    d.send(Event::Tick { now_ms: later });
    assert!(!d.asked(Op::NotifyFocus), "idle");
    d.key('k');
    d.send(Event::Tick {
        now_ms: later + 1_000,
    });
    d.take(Op::NotifyFocus);
}

#[test]
fn the_idle_timeout_comes_from_the_configuration() {
    let mut d = Drive::at_session();
    d.app = d
        .app
        .clone()
        .with_presence_idle(std::time::Duration::from_secs(30));
    d.send(Event::Tick {
        now_ms: T0 + 29_000,
    });
    d.take(Op::NotifyFocus);
    d.send(Event::Tick {
        now_ms: T0 + 30_000,
    });
    assert!(!d.asked(Op::NotifyFocus), "idle after 30 s");
}
