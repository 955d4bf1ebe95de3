//! The app's side of the presence signal (`crate::notify_focus`): the session on screen, asked
//! for on every tick, sent to the relay as `notify_focus` while someone is at the terminal
//! (keys, paste and the wheel are noted in `App::update`, the terminal's focus here).

use super::{App, Screen};
use crate::call::{Call, Scope};
use crate::effect::Effect;
use proto::notify::Focus;

impl App {
    /// The session on screen, if a real (not draft) one is.
    fn focused_session(&self) -> Option<Focus> {
        if !matches!(self.screen, Screen::Session | Screen::Diff) {
            return None;
        }
        let view = self.stack.session.as_ref()?;
        if view.id.is_draft() {
            return None;
        }
        Some(Focus {
            host: view.host.to_string(),
            workspace: view.workspace.to_string(),
            session: view.id.as_str().to_owned(),
        })
    }

    pub(super) fn focus_tick(&mut self, fx: &mut Vec<Effect>) {
        let on_screen = self.focused_session();
        if let Some(focus) = self.focus_signal.tick(on_screen, self.now_ms) {
            let scope = Scope::host(&proto::ids::HostId::from(focus.host.as_str()));
            self.request(scope, Call::NotifyFocus(focus), fx);
        }
    }

    /// The terminal gained or lost the focus: back at once, or silent from now on.
    pub(super) fn on_terminal_focus(&mut self, gained: bool, fx: &mut Vec<Effect>) {
        self.focus_signal.presence.focus(gained, self.now_ms);
        self.focus_tick(fx);
    }
}
