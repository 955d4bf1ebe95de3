//! The ports panel (issue 18): `p` on the workspaces screen lists the host's `port_list`
//! (port, address, process, workspace, whether the host lets it be forwarded), read again
//! every few seconds while the panel is on screen, so servers appear and vanish as they start
//! and stop. Enter on a port starts a forward (`Effect::Forward`: a local listener on
//! 127.0.0.1 whose connections are carried to the port on the host); Enter or `x` on a
//! forwarded port stops it. Forwards outlive the panel; they stop when the app quits or the
//! relay connection is lost (a notice says so). A refusal shows the host's reason.

use super::App;
use super::overlay::Overlay;
use super::workspace_detail::Loadable;
use crate::action::Action;
use crate::call::{Call, CallError, ForwardNews, ForwardRequest, Scope};
use crate::effect::Effect;
use crate::view::text::sanitize;
use proto::forward::ListeningPort;
use proto::ids::HostId;
use proto::text::RemoteText;
use std::net::SocketAddr;

/// How often the open panel reads the ports again.
pub const REFRESH_MS: u64 = 3_000;

/// The ports panel of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsPanel {
    /// The host.
    pub host: HostId,
    /// The ports, as far as read.
    pub list: Option<Loadable<Vec<ListeningPort>>>,
    /// The `port_list` request awaited.
    request: Option<u64>,
    /// When to read the list again (local clock).
    next_read_ms: u64,
    /// The highlighted row.
    pub cursor: usize,
    /// The last refusal of a forward (the host's words).
    pub refusal: Option<RemoteText>,
}

/// How far a forward has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardState {
    /// Asking the host; nothing listens yet.
    Starting,
    /// Listening on `local`, carrying `connections` connections.
    Listening {
        /// The local address.
        local: SocketAddr,
        /// Connections carried now.
        connections: usize,
    },
}

/// A forward the app started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Its id (the effect's).
    pub id: u64,
    /// The host.
    pub host: HostId,
    /// The port on the host.
    pub port: u16,
    /// How far it has come.
    pub state: ForwardState,
}

impl Forward {
    /// `http://127.0.0.1:LOCAL → HOST:PORT`, once listening.
    pub fn describe(&self) -> String {
        let target = format!("{}:{}", sanitize(self.host.as_str()), self.port);
        match self.state {
            ForwardState::Starting => format!("starting a forward to {target}…"),
            ForwardState::Listening { local, .. } => format!("http://{local} → {target}"),
        }
    }
}

impl PortsPanel {
    /// The panel of `host`, nothing read yet.
    pub fn new(host: &HostId) -> Self {
        Self {
            host: host.clone(),
            list: None,
            request: None,
            next_read_ms: 0,
            cursor: 0,
            refusal: None,
        }
    }

    /// The ports, once read.
    pub fn ready(&self) -> Option<&[ListeningPort]> {
        match &self.list {
            Some(Loadable::Ready(list)) => Some(list),
            _ => None,
        }
    }

    /// The highlighted port.
    pub fn selected(&self) -> Option<&ListeningPort> {
        self.ready()?.get(self.cursor)
    }
}

impl App {
    /// The ports panel, once opened.
    pub fn ports_panel(&self) -> Option<&PortsPanel> {
        self.ports.as_ref()
    }

    /// Whether the ports panel is the overlay on screen.
    pub fn ports_visible(&self) -> bool {
        self.overlay == Some(Overlay::Ports) && self.ports.is_some()
    }

    /// The forwards running or starting.
    pub fn forwards(&self) -> &[Forward] {
        &self.forwards
    }

    /// The forward of `port` on `host`, if one runs.
    pub fn forward_of(&self, host: &HostId, port: u16) -> Option<&Forward> {
        self.forwards
            .iter()
            .find(|f| &f.host == host && f.port == port)
    }

    /// `p` on the workspaces screen: the host's ports panel.
    pub(super) fn open_ports(&mut self, fx: &mut Vec<Effect>) {
        let Some(host) = self.stack.workspaces.as_ref().map(|v| v.host.clone()) else {
            return;
        };
        if self.ports.as_ref().is_none_or(|p| p.host != host) {
            self.ports = Some(PortsPanel::new(&host));
        }
        if let Some(p) = self.ports.as_mut() {
            p.refusal = None;
        }
        self.overlay = Some(Overlay::Ports);
        self.ask_ports(fx);
    }

    /// Asks the host for its ports (once at a time).
    fn ask_ports(&mut self, fx: &mut Vec<Effect>) {
        let Some(p) = self.ports.as_ref().filter(|p| p.request.is_none()) else {
            return;
        };
        let host = p.host.clone();
        let id = self.request(Scope::host(&host), Call::PortList, fx);
        let now = self.now_ms;
        if let Some(p) = self.ports.as_mut() {
            p.request = id;
            p.next_read_ms = now.saturating_add(REFRESH_MS);
            if id.is_some() && p.list.is_none() {
                p.list = Some(Loadable::Loading);
            }
        }
    }

    /// The clock moved: the open panel reads the ports again when due.
    pub(super) fn ports_tick(&mut self, fx: &mut Vec<Effect>) {
        let due = self.ports_visible()
            && self
                .ports
                .as_ref()
                .is_some_and(|p| p.request.is_none() && p.next_read_ms <= self.now_ms);
        if due {
            self.ask_ports(fx);
        }
    }

    /// `port_list` answered (or failed).
    pub(super) fn ports_loaded(
        &mut self,
        request: u64,
        result: Result<Vec<ListeningPort>, &CallError>,
    ) {
        let Some(p) = self.ports.as_mut().filter(|p| p.request == Some(request)) else {
            return;
        };
        p.request = None;
        p.list = Some(match result {
            Ok(list) => Loadable::Ready(list),
            Err(e) => Loadable::Failed(RemoteText::new(&e.message)),
        });
        let last = p.ready().map_or(0, |l| l.len().saturating_sub(1));
        p.cursor = p.cursor.min(last);
    }

    /// A key while the panel is on screen.
    pub(super) fn ports_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let Some(p) = self.ports.as_mut() else {
            self.overlay = None;
            return;
        };
        let last = p.ready().map_or(0, |l| l.len().saturating_sub(1));
        match action {
            Action::Quit => fx.push(Effect::Quit),
            Action::SelectPrev => p.cursor = p.cursor.saturating_sub(1),
            Action::SelectNext => p.cursor = (p.cursor + 1).min(last),
            Action::SelectFirst => p.cursor = 0,
            Action::SelectLast => p.cursor = last,
            Action::Refresh => self.ask_ports(fx),
            Action::Back => self.overlay = None,
            Action::Open => self.toggle_forward(fx),
            Action::StopForward => {
                let Some((host, port)) = p.selected().map(|s| (p.host.clone(), s.port)) else {
                    return;
                };
                if let Some(id) = self.forward_of(&host, port).map(|f| f.id) {
                    self.stop_forward(id, fx);
                }
            }
            _ => {}
        }
    }

    /// Enter: starts a forward of the highlighted port, or stops the one running.
    fn toggle_forward(&mut self, fx: &mut Vec<Effect>) {
        let Some(p) = self.ports.as_mut() else {
            return;
        };
        let Some(port) = p.selected().map(|s| s.port) else {
            return;
        };
        let host = p.host.clone();
        p.refusal = None;
        if let Some(id) = self.forward_of(&host, port).map(|f| f.id) {
            self.stop_forward(id, fx);
            return;
        }
        if !self.is_connected() {
            self.notify("not connected to the relay; try again once connected", true);
            return;
        }
        // The host decides what may be forwarded: a port it does not allow is refused with
        // its reason, shown in the panel.
        self.next_id += 1;
        let id = self.next_id;
        fx.push(Effect::Forward(ForwardRequest {
            id,
            host: host.clone(),
            port,
        }));
        self.forwards.push(Forward {
            id,
            host,
            port,
            state: ForwardState::Starting,
        });
    }

    /// Stops forward `id` (its listener and connections close).
    fn stop_forward(&mut self, id: u64, fx: &mut Vec<Effect>) {
        let Some(i) = self.forwards.iter().position(|f| f.id == id) else {
            return;
        };
        let f = self.forwards.remove(i);
        fx.push(Effect::CloseStream(id));
        self.notify(format!("forward stopped: {}", f.describe()), false);
    }

    /// News of forward `id`.
    pub(super) fn forward_news(&mut self, id: u64, news: ForwardNews) {
        let Some(i) = self.forwards.iter().position(|f| f.id == id) else {
            return;
        };
        match news {
            ForwardNews::Listening { local } => {
                let f = &mut self.forwards[i];
                f.state = ForwardState::Listening {
                    local,
                    connections: 0,
                };
                let text = format!("forwarding {}", f.describe());
                self.notify(text, false);
            }
            ForwardNews::Connections(n) => {
                if let ForwardState::Listening { connections, .. } = &mut self.forwards[i].state {
                    *connections = n;
                }
            }
            ForwardNews::NotForwarded(why) => {
                self.notify(format!("a connection was not forwarded: {why}"), true);
            }
            ForwardNews::Ended(e) => {
                let f = self.forwards.remove(i);
                let text = match f.state {
                    ForwardState::Starting => {
                        format!("cannot forward port {}: {e}", f.port)
                    }
                    ForwardState::Listening { .. } => {
                        format!("forward {} ended: {e}", f.describe())
                    }
                };
                match self
                    .ports
                    .as_mut()
                    .filter(|p| p.host == f.host && self.overlay == Some(Overlay::Ports))
                {
                    Some(p) => p.refusal = Some(RemoteText::new(&text)),
                    None => self.notify(text, true),
                }
            }
        }
    }

    /// The relay connection ended: every forward ended with it.
    pub(super) fn forwards_lost(&mut self) {
        if self.forwards.is_empty() {
            return;
        }
        let n = self.forwards.len();
        self.forwards.clear();
        let what = crate::view::text::count(n, "port forward");
        self.notify(
            format!("{what} stopped: the relay connection was lost (start again with p)"),
            true,
        );
    }
}
