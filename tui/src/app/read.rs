//! What the screens and the status bar read from the app: plain accessors, no changes.

use super::{
    App, Attention, ConnState, DiffView, Notice, Screen, SessionView, SessionsView, WorkspacesView,
};
use proto::ids::HostId;
use proto::rbac::Role;
use std::time::Duration;

impl App {
    /// Whether the relay connection is up.
    pub fn is_connected(&self) -> bool {
        matches!(self.conn, ConnState::Connected { .. })
    }

    /// `user@relay`.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The local clock as of the last tick, unix ms.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Milliseconds until the credential expires (0 once it has).
    pub fn login_left_ms(&self) -> u64 {
        self.expires_at_ms.saturating_sub(self.now_ms)
    }

    /// The connection state.
    pub fn conn(&self) -> &ConnState {
        &self.conn
    }

    /// The last ping round trip on the current connection.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The transport of the connection, while connected.
    pub fn transport(&self) -> Option<cm_client::transport::Transport> {
        self.transport.filter(|_| self.is_connected())
    }

    /// Which screen is shown.
    pub fn screen(&self) -> Screen {
        self.screen
    }

    /// Whether the help overlay is shown.
    pub fn help_visible(&self) -> bool {
        self.overlay == Some(super::overlay::Overlay::Help)
    }

    /// First row of the help shown.
    pub fn help_top(&self) -> usize {
        self.help_top
    }

    /// Whether the attention panel is open.
    pub fn attention_open(&self) -> bool {
        self.attention_open
    }

    /// The attention items.
    pub fn attention(&self) -> &Attention {
        &self.attention
    }

    /// Whether the bell rings on new attention.
    pub fn bell(&self) -> bool {
        self.bell
    }

    /// The current notice, if one is showing.
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref().filter(|n| n.until_ms > self.now_ms)
    }

    /// The workspaces screen's state.
    pub fn workspaces(&self) -> Option<&WorkspacesView> {
        self.stack.workspaces.as_ref()
    }

    /// The sessions screen's state.
    pub fn sessions(&self) -> Option<&SessionsView> {
        self.stack.sessions.as_ref()
    }

    /// The session screen's state.
    pub fn session(&self) -> Option<&SessionView> {
        self.stack.session.as_ref()
    }

    /// The diff view's state.
    pub fn diff(&self) -> Option<&DiffView> {
        self.stack.diff.as_ref()
    }

    /// Terminal width.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// The host the screens are about (the open one, else the selected one).
    pub fn current_host(&self) -> Option<&HostId> {
        match self.screen {
            Screen::Hosts => self.selected_host().map(|h| &h.host),
            _ => self.stack.workspaces.as_ref().map(|w| &w.host),
        }
    }

    /// The principal's role on the current host, if the relay said.
    pub fn role(&self) -> Option<Role> {
        self.current_host().and_then(|h| self.roles.get(h)).copied()
    }

    /// How `host` is reached (verified end to end or relay-trusted), once known.
    pub fn mode_of(&self, host: &HostId) -> Option<crate::e2e_channels::HostMode> {
        self.modes.get(host).copied()
    }

    /// How the current host is reached, once known.
    pub fn host_mode(&self) -> Option<crate::e2e_channels::HostMode> {
        self.current_host().and_then(|h| self.mode_of(h))
    }

    /// The connection state in a few words: "connected", "reconnecting in 4s", "offline".
    pub fn connection_text(&self) -> String {
        match &self.conn {
            ConnState::Connecting => "connecting…".into(),
            ConnState::Connected { .. } => "connected".into(),
            ConnState::Reconnecting { retry_at_ms, .. } => {
                let left = retry_at_ms.saturating_sub(self.now_ms);
                if left == 0 {
                    "reconnecting…".into()
                } else {
                    format!("reconnecting in {}s", left.div_ceil(1000))
                }
            }
            // Retrying cannot help: say why, not just "offline".
            ConnState::Offline { revoked: true, .. } => "login revoked".into(),
            ConnState::Offline { .. } => "login refused".into(),
        }
    }

    /// Why the connection is not up, when there is a reason to show.
    pub fn problem(&self) -> Option<&str> {
        match &self.conn {
            ConnState::Reconnecting { reason, .. } | ConnState::Offline { reason, .. } => {
                Some(reason)
            }
            ConnState::Connecting | ConnState::Connected { .. } => None,
        }
    }
}
