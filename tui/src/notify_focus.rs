//! The presence signal for the relay's notifications (issue #22): while a session is on
//! screen, the TUI tells the relay every [`FOCUS_EVERY_MS`] (and at once when the session
//! changes), so the relay sends no push about it meanwhile. The relay forgets a signal after
//! 30 s, so a TUI that went away stops suppressing by itself. Sans-IO: time is passed in.

use proto::notify::Focus;

/// How often the signal is repeated while the same session stays on screen.
pub const FOCUS_EVERY_MS: u64 = 10_000;

/// When to send the next focus signal.
#[derive(Debug, Clone, Default)]
pub struct FocusSignal {
    last: Option<(Focus, u64)>,
}

impl FocusSignal {
    /// What to send at `now_ms` with `on_screen` shown (`None`: no session on screen).
    pub fn tick(&mut self, on_screen: Option<Focus>, now_ms: u64) -> Option<Focus> {
        let Some(focus) = on_screen else {
            self.last = None;
            return None;
        };
        let due = match &self.last {
            Some((last, at)) => *last != focus || now_ms.saturating_sub(*at) >= FOCUS_EVERY_MS,
            None => true,
        };
        if due {
            self.last = Some((focus.clone(), now_ms));
            return Some(focus);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn focus(session: &str) -> Focus {
        Focus {
            host: "box".into(),
            workspace: "api".into(),
            session: session.into(),
        }
    }

    #[test]
    fn a_session_on_screen_is_signalled_at_once_then_every_period_and_on_change() {
        let mut s = FocusSignal::default();
        assert_eq!(s.tick(Some(focus("ses_1")), 0), Some(focus("ses_1")));
        assert_eq!(s.tick(Some(focus("ses_1")), FOCUS_EVERY_MS - 1), None);
        assert_eq!(
            s.tick(Some(focus("ses_1")), FOCUS_EVERY_MS),
            Some(focus("ses_1"))
        );
        assert_eq!(
            s.tick(Some(focus("ses_2")), FOCUS_EVERY_MS + 1),
            Some(focus("ses_2"))
        );
        // Off screen: nothing; back: at once.
        assert_eq!(s.tick(None, FOCUS_EVERY_MS + 2), None);
        assert_eq!(
            s.tick(Some(focus("ses_2")), FOCUS_EVERY_MS + 3),
            Some(focus("ses_2"))
        );
    }
}
