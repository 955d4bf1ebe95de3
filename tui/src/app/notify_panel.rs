//! The notification settings panel (issue #22): `N` on any screen lists your channels at the
//! relay (`notify_list`, as `cm-tui notify list`): kind, target, events, quiet hours,
//! deliveries and the last failure. `t` sends a test notification to the selected channel
//! (`notify_test`), `x` asks to remove it and Enter confirms (`notify_remove`), `r` reads the
//! list again, `?` shows these keys, Esc closes. Adding a channel takes its secret from an environment variable,
//! so the panel says which `cm-tui notify add …` to run in a shell. What the relay refuses is
//! shown in the panel.

use super::App;
use super::overlay::Overlay;
use super::workspace_detail::Loadable;
use crate::action::Action;
use crate::call::{Call, CallError, NotifyCall, Response, Scope};
use crate::effect::Effect;
use proto::ids::HostId;
use proto::notify::ChannelInfo;
use proto::text::RemoteText;

/// What the panel is doing besides listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyMode {
    /// Moving through the channels.
    Browse,
    /// Asking whether to remove the channel with this name (Enter confirms).
    ConfirmRemove(String),
    /// A test or a removal (request id) awaits its answer.
    Busy(u64, NotifyCall),
}

/// What the last test or removal came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyNews {
    /// In words (may hold the relay's or the receiver's words: sanitized).
    pub text: RemoteText,
    /// Whether it failed.
    pub error: bool,
}

/// The panel's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyPanel {
    /// The channels, as far as read.
    pub channels: Loadable<Vec<ChannelInfo>>,
    /// The `notify_list` request awaited.
    request: Option<u64>,
    /// The selected channel.
    pub cursor: usize,
    /// What the panel is doing.
    pub mode: NotifyMode,
    /// The last test's or removal's outcome.
    pub news: Option<NotifyNews>,
    /// The panel shows its keys instead of the channels (`?`).
    pub keys_shown: bool,
}

/// What a key on the panel asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Handled here.
    Stay,
    /// Close the panel.
    Close,
    /// Read the channels again.
    Refresh,
    /// Send this call.
    Call(NotifyCall),
}

impl Default for NotifyPanel {
    fn default() -> Self {
        Self {
            channels: Loadable::Loading,
            request: None,
            cursor: 0,
            mode: NotifyMode::Browse,
            news: None,
            keys_shown: false,
        }
    }
}

impl NotifyPanel {
    /// The channels, once read.
    pub fn ready(&self) -> Option<&[ChannelInfo]> {
        match &self.channels {
            Loadable::Ready(list) => Some(list),
            _ => None,
        }
    }

    /// The selected channel.
    pub fn selected(&self) -> Option<&ChannelInfo> {
        self.ready()?.get(self.cursor)
    }

    /// A key. No IO.
    pub fn update(&mut self, action: Action) -> NotifyOutcome {
        let last = self.ready().map_or(0, |l| l.len().saturating_sub(1));
        let confirming = matches!(self.mode, NotifyMode::ConfirmRemove(_));
        let busy = matches!(self.mode, NotifyMode::Busy(..));
        if self.keys_shown && matches!(action, Action::ToggleHelp | Action::Back) {
            self.keys_shown = false;
            return NotifyOutcome::Stay;
        }
        match action {
            Action::ToggleHelp => self.keys_shown = true,
            Action::SelectPrev => self.cursor = self.cursor.saturating_sub(1),
            Action::SelectNext => self.cursor = (self.cursor + 1).min(last),
            Action::SelectFirst => self.cursor = 0,
            Action::SelectLast => self.cursor = last,
            Action::Back if confirming => {
                self.mode = NotifyMode::Browse;
                return NotifyOutcome::Stay;
            }
            Action::Back => return NotifyOutcome::Close,
            Action::Refresh => return NotifyOutcome::Refresh,
            _ if busy => return NotifyOutcome::Stay,
            Action::Open => {
                if let NotifyMode::ConfirmRemove(name) = &self.mode {
                    let call = NotifyCall::Remove(name.clone());
                    self.mode = NotifyMode::Browse;
                    return NotifyOutcome::Call(call);
                }
                return NotifyOutcome::Stay;
            }
            Action::TestChannel => {
                self.mode = NotifyMode::Browse;
                return match self.selected() {
                    Some(c) => NotifyOutcome::Call(NotifyCall::Test(c.name.clone())),
                    None => NotifyOutcome::Stay,
                };
            }
            Action::Remove => {
                if let Some(name) = self.selected().map(|c| c.name.clone()) {
                    self.news = None;
                    self.mode = NotifyMode::ConfirmRemove(name);
                }
                return NotifyOutcome::Stay;
            }
            _ => return NotifyOutcome::Stay,
        }
        // Moving away from the channel asked about drops the question.
        if confirming {
            self.mode = NotifyMode::Browse;
        }
        NotifyOutcome::Stay
    }

    /// `call` (request `id`) was sent: wait for it.
    fn sent(&mut self, id: u64, call: NotifyCall) {
        self.news = None;
        self.mode = NotifyMode::Busy(id, call);
    }

    /// Whether request `id` is the test or removal awaited; ends the wait when it is.
    fn settle(&mut self, id: u64) -> bool {
        if matches!(&self.mode, NotifyMode::Busy(busy, _) if *busy == id) {
            self.mode = NotifyMode::Browse;
            return true;
        }
        false
    }

    /// The channels arrived (or could not be read).
    fn listed(&mut self, id: u64, result: Result<Vec<ChannelInfo>, &CallError>) {
        if self.request != Some(id) {
            return;
        }
        self.request = None;
        self.channels = match result {
            Ok(list) => Loadable::Ready(list),
            Err(e) => Loadable::Failed(RemoteText::new(&e.message)),
        };
        let last = self.ready().map_or(0, |l| l.len().saturating_sub(1));
        self.cursor = self.cursor.min(last);
    }
}

/// What a test came to, in words (the receiver's words sanitized).
fn tested_news(name: &str, tested: &proto::notify::NotifyTested) -> NotifyNews {
    match crate::notify_cli::tested_text(name, tested) {
        Ok(text) => NotifyNews {
            text: RemoteText::new(&text),
            error: false,
        },
        Err(text) => NotifyNews {
            text: RemoteText::new(&text),
            error: true,
        },
    }
}

impl App {
    /// The notification settings panel, while on screen.
    pub fn notify_panel(&self) -> Option<&NotifyPanel> {
        match &self.overlay {
            Some(Overlay::Notify(p)) => Some(p),
            _ => None,
        }
    }

    fn notify_panel_mut(&mut self) -> Option<&mut NotifyPanel> {
        match &mut self.overlay {
            Some(Overlay::Notify(p)) => Some(p),
            _ => None,
        }
    }

    /// `N`: the panel, reading the channels.
    pub(super) fn open_notifications(&mut self, fx: &mut Vec<Effect>) {
        self.overlay = Some(Overlay::Notify(NotifyPanel::default()));
        self.list_channels(fx);
    }

    /// Asks the relay for the channels (once at a time).
    fn list_channels(&mut self, fx: &mut Vec<Effect>) {
        if self.notify_panel().is_none_or(|p| p.request.is_some()) {
            return;
        }
        let id = self.request(relay_scope(), Call::Notify(NotifyCall::List), fx);
        if let Some(p) = self.notify_panel_mut() {
            match id {
                Some(id) => {
                    p.request = Some(id);
                    if !matches!(p.channels, Loadable::Ready(_)) {
                        p.channels = Loadable::Loading;
                    }
                }
                None => {
                    p.channels = Loadable::Failed(RemoteText::new(
                        "not connected to the relay; r reads the channels once connected",
                    ));
                }
            }
        }
    }

    /// After a reconnect: an open panel reads its channels again (an answer in flight was
    /// lost with the connection, and so was a test or removal awaited).
    pub(super) fn notify_reconnected(&mut self, fx: &mut Vec<Effect>) {
        if let Some(p) = self.notify_panel_mut() {
            p.request = None;
            if matches!(p.mode, NotifyMode::Busy(..)) {
                p.mode = NotifyMode::Browse;
                p.news = Some(NotifyNews {
                    text: RemoteText::new(
                        "the relay connection was lost before the answer; the list shows \
                         what was done",
                    ),
                    error: true,
                });
            }
        }
        self.list_channels(fx);
    }

    /// A key while the panel is on screen.
    pub(super) fn notify_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        if action == Action::Quit {
            fx.push(Effect::Quit);
            return;
        }
        let Some(panel) = self.notify_panel_mut() else {
            return;
        };
        match panel.update(action) {
            NotifyOutcome::Stay => {}
            NotifyOutcome::Close => self.overlay = None,
            NotifyOutcome::Refresh => self.list_channels(fx),
            NotifyOutcome::Call(call) => {
                let id = self.act(relay_scope(), Call::Notify(call.clone()), fx);
                if let (Some(id), Some(p)) = (id, self.notify_panel_mut()) {
                    p.sent(id, call);
                }
            }
        }
    }

    /// A notification settings call answered.
    pub(super) fn notify_replied(
        &mut self,
        id: u64,
        call: &NotifyCall,
        response: Response,
        fx: &mut Vec<Effect>,
    ) {
        let Some(p) = self.notify_panel_mut() else {
            return;
        };
        if let NotifyCall::List = call {
            if let Response::Channels(list) = response {
                p.listed(id, Ok(list));
            }
            return;
        }
        if !p.settle(id) {
            return;
        }
        let news = match (call, response) {
            (NotifyCall::Test(name), Response::ChannelTested(tested)) => tested_news(name, &tested),
            (NotifyCall::Remove(name), Response::ChannelRemoved(existed)) => {
                let name = crate::view::text::sanitize(name);
                let text = if existed {
                    format!("removed {name}")
                } else {
                    format!("{name} was already gone")
                };
                NotifyNews {
                    text: RemoteText::new(&text),
                    error: false,
                }
            }
            _ => return,
        };
        p.news = Some(news);
        // The list shows what the test or the removal did.
        self.list_channels(fx);
    }

    /// A notification settings call failed: shown in the panel (never a crash, never lost).
    pub(super) fn notify_call_failed(&mut self, id: u64, call: &NotifyCall, e: &CallError) {
        let Some(p) = self.notify_panel_mut() else {
            return;
        };
        let what = match call {
            NotifyCall::List => return p.listed(id, Err(e)),
            NotifyCall::Test(name) => format!("the test notification to {name} was not sent"),
            NotifyCall::Remove(name) => format!("{name} was not removed"),
        };
        if p.settle(id) {
            p.news = Some(NotifyNews {
                text: RemoteText::new(&format!("{what}: {e}")),
                error: true,
            });
        }
    }
}

/// The scope of a call the relay answers itself (not sent).
fn relay_scope() -> Scope {
    Scope::host(&HostId::from(""))
}
