//! The presence signal for the relay's notifications (issue #22): while a session is on
//! screen and someone is at the terminal, the TUI tells the relay every [`FOCUS_EVERY_MS`] (and
//! at once when the session changes), so the relay sends no push about it meanwhile. The relay
//! forgets a signal after 30 s, so a TUI that went away stops suppressing by itself.
//!
//! "Someone is at the terminal" ([`Presence`]): the terminal has not reported losing focus
//! (one that never reports focus counts as focused; a key press means it has it), and a key
//! was pressed (or text pasted, the wheel turned, the focus regained) within the idle timeout
//! ([`IDLE_AFTER_MS`] unless `tui.toml` says `presence_idle_secs`). A TUI left open in a
//! background window or on an unattended desk thus lets the notifications through. Sans-IO:
//! time is passed in.

use proto::notify::Focus;

/// How often the signal is repeated while the same session stays on screen.
pub const FOCUS_EVERY_MS: u64 = 10_000;

/// How long without input before nobody counts as watching (default).
pub const IDLE_AFTER_MS: u64 = 5 * 60_000;

/// Whether someone is at the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// What the terminal last reported: `None` until it reports (many never do).
    focused: Option<bool>,
    /// The last input, local clock.
    last_input_ms: u64,
    /// Idle after this long without input.
    idle_after_ms: u64,
}

impl Presence {
    /// Someone just started the app at `now_ms`; idle after `idle_after_ms` without input.
    pub fn new(now_ms: u64, idle_after_ms: u64) -> Self {
        Self {
            focused: None,
            last_input_ms: now_ms,
            idle_after_ms,
        }
    }

    /// Someone did something at `now_ms` (turned the wheel over the window): not idle.
    pub fn activity(&mut self, now_ms: u64) {
        self.last_input_ms = self.last_input_ms.max(now_ms);
    }

    /// A key press or a paste at `now_ms`: not idle, and the terminal has the focus (whatever
    /// it reported last: a terminal may miss telling a focus change).
    pub fn key(&mut self, now_ms: u64) {
        self.activity(now_ms);
        self.focused = Some(true);
    }

    /// The terminal gained (someone switched to it: counts as activity) or lost the focus.
    pub fn focus(&mut self, gained: bool, now_ms: u64) {
        self.focused = Some(gained);
        if gained {
            self.activity(now_ms);
        }
    }

    /// Whether someone counts as watching at `now_ms`.
    pub fn present(&self, now_ms: u64) -> bool {
        self.focused != Some(false)
            && now_ms.saturating_sub(self.last_input_ms) < self.idle_after_ms
    }
}

/// When to send the next focus signal.
#[derive(Debug, Clone)]
pub struct FocusSignal {
    last: Option<(Focus, u64)>,
    /// Whether anyone is at the terminal.
    pub presence: Presence,
}

impl FocusSignal {
    /// Nothing sent yet; the app started at `now_ms`, idle after `idle_after_ms`.
    pub fn new(now_ms: u64, idle_after_ms: u64) -> Self {
        Self {
            last: None,
            presence: Presence::new(now_ms, idle_after_ms),
        }
    }

    /// What to send at `now_ms` with `on_screen` shown (`None`: no session on screen).
    /// Nothing while nobody is at the terminal; at once when someone is back.
    pub fn tick(&mut self, on_screen: Option<Focus>, now_ms: u64) -> Option<Focus> {
        let Some(focus) = on_screen.filter(|_| self.presence.present(now_ms)) else {
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
        let mut s = FocusSignal::new(0, u64::MAX);
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

    #[test]
    fn a_terminal_that_lost_focus_sends_nothing_and_regaining_it_sends_at_once() {
        let mut s = FocusSignal::new(0, IDLE_AFTER_MS);
        assert_eq!(s.tick(Some(focus("ses_1")), 0), Some(focus("ses_1")));
        s.presence.focus(false, 1_000);
        for t in [FOCUS_EVERY_MS, 3 * FOCUS_EVERY_MS] {
            assert_eq!(s.tick(Some(focus("ses_1")), t), None, "in the background");
        }
        // The wheel turned over the background window: still in the background.
        s.presence.activity(3 * FOCUS_EVERY_MS + 1);
        assert_eq!(s.tick(Some(focus("ses_1")), 3 * FOCUS_EVERY_MS + 2), None);
        s.presence.focus(true, 3 * FOCUS_EVERY_MS + 3);
        assert_eq!(
            s.tick(Some(focus("ses_1")), 3 * FOCUS_EVERY_MS + 4),
            Some(focus("ses_1")),
            "at once, not a period later"
        );
    }

    #[test]
    fn nobody_typing_for_the_idle_timeout_stops_the_signal_until_a_key() {
        let idle = 60_000;
        let mut s = FocusSignal::new(0, idle);
        assert!(s.tick(Some(focus("ses_1")), 0).is_some());
        assert!(
            s.tick(Some(focus("ses_1")), idle - FOCUS_EVERY_MS)
                .is_some()
        );
        assert_eq!(s.tick(Some(focus("ses_1")), idle), None, "idle from here");
        assert_eq!(s.tick(Some(focus("ses_1")), 10 * idle), None);
        s.presence.key(10 * idle + 5);
        assert_eq!(
            s.tick(Some(focus("ses_1")), 10 * idle + 6),
            Some(focus("ses_1"))
        );
    }

    #[test]
    fn a_terminal_that_never_reports_focus_counts_as_focused_and_still_goes_idle() {
        let p = Presence::new(1_000, IDLE_AFTER_MS);
        assert!(p.present(1_000));
        assert!(p.present(1_000 + IDLE_AFTER_MS - 1));
        assert!(!p.present(1_000 + IDLE_AFTER_MS));
        // Gaining focus counts as someone arriving; an older input never moves time back.
        let mut p = Presence::new(0, IDLE_AFTER_MS);
        p.focus(true, 2 * IDLE_AFTER_MS);
        assert!(p.present(2 * IDLE_AFTER_MS + 1));
        p.activity(5);
        assert!(p.present(2 * IDLE_AFTER_MS + 1));
        // A key reaches only a focused terminal, whatever it reported last.
        p.focus(false, 2 * IDLE_AFTER_MS + 2);
        assert!(!p.present(2 * IDLE_AFTER_MS + 3));
        p.key(2 * IDLE_AFTER_MS + 4);
        assert!(p.present(2 * IDLE_AFTER_MS + 5));
    }
}
