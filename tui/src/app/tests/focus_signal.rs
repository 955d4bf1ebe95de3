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
