//! All UI state of the full-screen app and the one pure function that changes it:
//! [`App::update`] takes an [`Event`] and returns [`Effect`]s for the runtime to execute.
//! No IO, no clock reads (time arrives in `Event::Tick`), no terminal or rendering types.

use crate::action::Action;
use crate::effect::Effect;
use crate::event::{Event, NetEvent};
use crate::keymap;
use crate::profile::Profile;
use proto::ids::ConnId;
use proto::message::{HostInfo, HostList};
use std::time::Duration;

/// Rows of the screen that are not host rows (table border and header, banner, status bar);
/// a page is the terminal height minus these.
pub const CHROME_ROWS: u16 = 5;

/// Terminal height assumed until the first resize event.
const DEFAULT_HEIGHT: u16 = 24;

/// The relay connection as the user should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// An attempt is under way (at start, or after `r`).
    Connecting,
    /// Authenticated and watching hosts.
    Connected {
        /// The relay's id for the connection.
        conn_id: ConnId,
    },
    /// Lost; the next attempt starts at `retry_at_ms`.
    Reconnecting {
        /// Why the last attempt failed or the connection dropped.
        reason: String,
        /// Local wall clock of the next attempt, unix ms.
        retry_at_ms: u64,
    },
    /// Given up: retrying cannot help (credential refused). Terminal until the app restarts.
    Offline {
        /// What happened and what to run.
        reason: String,
    },
}

/// The last host list and when it arrived.
#[derive(Debug, Clone, PartialEq)]
struct Hosts {
    list: HostList,
    /// Local clock at arrival: heartbeat ages keep counting from the relay's clock plus the
    /// local time elapsed since, so a skewed local clock cannot make them wrong.
    received_at_ms: u64,
}

/// The full-screen app's state.
#[derive(Debug, Clone)]
pub struct App {
    account: String,
    expires_at_ms: u64,
    now_ms: u64,
    conn: ConnState,
    rtt: Option<Duration>,
    /// `None` until the first list arrives ("loading" differs from "no hosts").
    hosts: Option<Hosts>,
    /// Index into the host list; kept on the same host id across list updates and reconnects.
    selected: usize,
    help: bool,
    height: u16,
}

impl App {
    /// A fresh app for `profile`'s login, at local time `now_ms`.
    pub fn new(profile: &Profile, now_ms: u64) -> Self {
        Self {
            account: profile.account(),
            expires_at_ms: profile.expires_at_ms,
            now_ms,
            conn: ConnState::Connecting,
            rtt: None,
            hosts: None,
            selected: 0,
            help: false,
            height: DEFAULT_HEIGHT,
        }
    }

    /// Applies one event; returns what the runtime must do.
    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Key(key) => match keymap::action_for(key) {
                Some(action) => self.handle_action(action),
                None => Vec::new(),
            },
            Event::Tick { now_ms } => {
                self.now_ms = now_ms;
                Vec::new()
            }
            Event::Resize { height, .. } => {
                self.height = height;
                Vec::new()
            }
            Event::Net(net) => {
                self.handle_net(net);
                Vec::new()
            }
        }
    }

    fn handle_action(&mut self, action: Action) -> Vec<Effect> {
        if self.help {
            // The overlay takes the keys: only closing it or quitting does something.
            return match action {
                Action::ToggleHelp | Action::Back => {
                    self.help = false;
                    Vec::new()
                }
                Action::Quit => vec![Effect::Quit],
                _ => Vec::new(),
            };
        }
        let last = self.hosts().len().saturating_sub(1);
        let page = usize::from(self.height.saturating_sub(CHROME_ROWS).max(1));
        match action {
            Action::SelectPrev => self.selected = self.selected.saturating_sub(1),
            Action::SelectNext => self.selected = (self.selected + 1).min(last),
            Action::PageUp => self.selected = self.selected.saturating_sub(page),
            Action::PageDown => self.selected = self.selected.saturating_add(page).min(last),
            Action::SelectFirst => self.selected = 0,
            Action::SelectLast => self.selected = last,
            Action::ToggleHelp => self.help = true,
            Action::Reconnect => {
                // After a fatal refusal the same credential would be refused again.
                if matches!(self.conn, ConnState::Offline { .. }) {
                    return Vec::new();
                }
                self.conn = ConnState::Connecting;
                self.rtt = None;
                return vec![Effect::Reconnect];
            }
            Action::Back | Action::Quit => return vec![Effect::Quit],
        }
        Vec::new()
    }

    fn handle_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Connected { conn_id } => {
                self.conn = ConnState::Connected { conn_id };
                self.rtt = None;
            }
            NetEvent::Hosts(list) => self.replace_hosts(list),
            NetEvent::Disconnected { reason, retry_in } => {
                if matches!(self.conn, ConnState::Offline { .. }) {
                    return;
                }
                let wait = u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX);
                self.conn = ConnState::Reconnecting {
                    reason,
                    retry_at_ms: self.now_ms.saturating_add(wait),
                };
                self.rtt = None;
            }
            NetEvent::Pong { rtt } => {
                if matches!(self.conn, ConnState::Connected { .. }) {
                    self.rtt = Some(rtt);
                }
            }
            NetEvent::Fatal { message } => {
                self.conn = ConnState::Offline { reason: message };
                self.rtt = None;
            }
        }
    }

    /// Takes a new list, keeping the selection on the same host if it is still there, else
    /// at the same position (clamped).
    fn replace_hosts(&mut self, list: HostList) {
        let kept = self
            .selected_host()
            .map(|h| h.host.clone())
            .and_then(|id| list.hosts.iter().position(|h| h.host == id));
        self.selected =
            kept.unwrap_or_else(|| self.selected.min(list.hosts.len().saturating_sub(1)));
        self.hosts = Some(Hosts {
            list,
            received_at_ms: self.now_ms,
        });
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

    /// Whether a host list has arrived yet.
    pub fn hosts_loaded(&self) -> bool {
        self.hosts.is_some()
    }

    /// The hosts, in the relay's order (empty until loaded).
    pub fn hosts(&self) -> &[HostInfo] {
        self.hosts.as_ref().map_or(&[], |h| h.list.hosts.as_slice())
    }

    /// How many hosts are online.
    pub fn online_count(&self) -> usize {
        self.hosts().iter().filter(|h| h.online).count()
    }

    /// The selected row, if there are hosts.
    pub fn selected(&self) -> Option<usize> {
        (!self.hosts().is_empty()).then_some(self.selected)
    }

    /// The selected host.
    pub fn selected_host(&self) -> Option<&HostInfo> {
        self.hosts().get(self.selected)
    }

    /// The relay's clock now, estimated from the last list's clock plus local time since; use
    /// it with heartbeat times, which are relay-clock values.
    pub fn relay_now_ms(&self) -> u64 {
        match &self.hosts {
            Some(h) => h
                .list
                .now_ms
                .saturating_add(self.now_ms.saturating_sub(h.received_at_ms)),
            None => self.now_ms,
        }
    }

    /// Whether the help overlay is shown.
    pub fn help_visible(&self) -> bool {
        self.help
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
            ConnState::Offline { .. } => "offline".into(),
        }
    }

    /// Why the connection is not up, when there is a reason to show.
    pub fn problem(&self) -> Option<&str> {
        match &self.conn {
            ConnState::Reconnecting { reason, .. } | ConnState::Offline { reason } => Some(reason),
            ConnState::Connecting | ConnState::Connected { .. } => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{KeyCode, KeyPress};
    use proto::ids::{CredId, HostId, UserId};
    use proto::message::HostStatus;

    pub(crate) const T0: u64 = 1_700_000_000_000;

    pub(crate) fn profile() -> Profile {
        Profile {
            relay: "relay.example.com:7443".into(),
            pin: "blake3:00".into(),
            user: UserId::from("alice"),
            cred_id: CredId::from("c1"),
            expires_at_ms: T0 + 8 * 3_600_000 - 60_000,
        }
    }

    pub(crate) fn host(name: &str, online: bool) -> HostInfo {
        HostInfo {
            host: HostId::from(name),
            online,
            last_heartbeat_ms: Some(T0 - 3_000),
            status: Some(HostStatus {
                hostname: name.into(),
                os: "linux 6.1.0".into(),
                load: [0.42, 0.3, 0.1],
                mem_total_kib: 16 * 1_048_576,
                mem_available_kib: 10 * 1_048_576,
                workspaces: vec!["api".into(), "web".into()],
                ..HostStatus::default()
            }),
        }
    }

    pub(crate) fn list(names: &[&str]) -> HostList {
        HostList {
            now_ms: T0,
            hosts: names.iter().map(|n| host(n, true)).collect(),
        }
    }

    fn key(c: char) -> Event {
        Event::Key(KeyPress::char(c))
    }

    fn special(code: KeyCode) -> Event {
        Event::Key(KeyPress::plain(code))
    }

    fn app_with(names: &[&str]) -> App {
        let mut app = App::new(&profile(), T0);
        app.update(Event::Net(NetEvent::Connected {
            conn_id: ConnId::from("k1"),
        }));
        app.update(Event::Net(NetEvent::Hosts(list(names))));
        app
    }

    fn selected_name(app: &App) -> Option<&str> {
        app.selected_host().map(|h| h.host.as_str())
    }

    #[test]
    fn navigation_stays_in_bounds() {
        let mut app = app_with(&["a", "b", "c"]);
        assert_eq!(app.selected(), Some(0));
        app.update(special(KeyCode::Up));
        assert_eq!(app.selected(), Some(0), "up at the top stays");
        app.update(key('j'));
        app.update(special(KeyCode::Down));
        app.update(key('j'));
        assert_eq!(app.selected(), Some(2), "down at the bottom stays");
        app.update(key('k'));
        assert_eq!(app.selected(), Some(1));
        app.update(special(KeyCode::Home));
        assert_eq!(app.selected(), Some(0));
        app.update(special(KeyCode::End));
        assert_eq!(app.selected(), Some(2));
        app.update(special(KeyCode::PageUp));
        assert_eq!(app.selected(), Some(0));
        app.update(special(KeyCode::PageDown));
        assert_eq!(app.selected(), Some(2));
    }

    #[test]
    fn paging_moves_by_the_visible_rows() {
        let names: Vec<String> = (0..50).map(|i| format!("h{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut app = app_with(&refs);
        app.update(Event::Resize {
            width: 80,
            height: 15,
        });
        app.update(special(KeyCode::PageDown));
        assert_eq!(app.selected(), Some(usize::from(15 - CHROME_ROWS)));
    }

    #[test]
    fn navigation_on_an_empty_list_is_harmless() {
        let mut app = app_with(&[]);
        for e in [
            key('j'),
            key('k'),
            special(KeyCode::End),
            special(KeyCode::PageDown),
        ] {
            assert!(app.update(e).is_empty());
        }
        assert_eq!(app.selected(), None);
        assert!(app.hosts_loaded());
    }

    #[test]
    fn help_toggles_and_captures_keys() {
        let mut app = app_with(&["a", "b"]);
        app.update(key('?'));
        assert!(app.help_visible());
        app.update(key('j'));
        assert_eq!(app.selected(), Some(0), "navigation is ignored under help");
        assert!(
            app.update(special(KeyCode::Esc)).is_empty(),
            "Esc closes help"
        );
        assert!(!app.help_visible());
        app.update(key('?'));
        app.update(key('?'));
        assert!(!app.help_visible());
    }

    #[test]
    fn quit_keys_return_the_quit_effect() {
        let mut app = app_with(&["a"]);
        assert_eq!(app.update(key('q')), vec![Effect::Quit]);
        assert_eq!(
            app.update(Event::Key(KeyPress::ctrl('c'))),
            vec![Effect::Quit]
        );
        assert_eq!(app.update(special(KeyCode::Esc)), vec![Effect::Quit]);
        app.update(key('?'));
        assert_eq!(
            app.update(key('q')),
            vec![Effect::Quit],
            "q quits under help too"
        );
        assert!(app.update(key('x')).is_empty());
    }

    #[test]
    fn reconnect_state_text_counts_down() {
        let mut app = app_with(&["a"]);
        assert_eq!(app.connection_text(), "connected");
        app.update(Event::Net(NetEvent::Pong {
            rtt: Duration::from_millis(12),
        }));
        assert_eq!(app.rtt(), Some(Duration::from_millis(12)));
        app.update(Event::Net(NetEvent::Disconnected {
            reason: "relay connection lost: timed out".into(),
            retry_in: Duration::from_millis(4_500),
        }));
        assert_eq!(app.connection_text(), "reconnecting in 5s");
        assert_eq!(app.problem(), Some("relay connection lost: timed out"));
        assert_eq!(app.rtt(), None, "no stale RTT while disconnected");
        app.update(Event::Tick { now_ms: T0 + 2_000 });
        assert_eq!(app.connection_text(), "reconnecting in 3s");
        app.update(Event::Tick { now_ms: T0 + 5_000 });
        assert_eq!(app.connection_text(), "reconnecting…");
        app.update(Event::Net(NetEvent::Connected {
            conn_id: ConnId::from("k2"),
        }));
        assert_eq!(app.connection_text(), "connected");
        assert_eq!(app.problem(), None);
    }

    #[test]
    fn r_asks_for_a_reconnect() {
        let mut app = app_with(&["a"]);
        assert_eq!(app.update(key('r')), vec![Effect::Reconnect]);
        assert_eq!(app.conn(), &ConnState::Connecting);
        assert_eq!(app.connection_text(), "connecting…");
    }

    #[test]
    fn selection_follows_the_host_across_lists_and_reconnects() {
        let mut app = app_with(&["a", "b", "c"]);
        app.update(key('j'));
        assert_eq!(selected_name(&app), Some("b"));
        app.update(Event::Net(NetEvent::Disconnected {
            reason: "lost".into(),
            retry_in: Duration::from_secs(1),
        }));
        app.update(Event::Net(NetEvent::Connected {
            conn_id: ConnId::from("k2"),
        }));
        // A host was added before "b": the selection stays on "b", not on index 1.
        app.update(Event::Net(NetEvent::Hosts(list(&["0", "a", "b", "c"]))));
        assert_eq!(selected_name(&app), Some("b"));
        assert_eq!(app.selected(), Some(2));
        // "b" is gone: stay at the same position.
        app.update(Event::Net(NetEvent::Hosts(list(&["0", "a", "c"]))));
        assert_eq!(selected_name(&app), Some("c"));
        // The list shrank under the selection: clamp.
        app.update(key('j'));
        app.update(Event::Net(NetEvent::Hosts(list(&["0"]))));
        assert_eq!(selected_name(&app), Some("0"));
    }

    #[test]
    fn fatal_stops_retrying() {
        let mut app = app_with(&["a"]);
        app.update(Event::Net(NetEvent::Fatal {
            message: "the relay refused this login; run `cm-tui login` again".into(),
        }));
        assert_eq!(app.connection_text(), "offline");
        assert!(app.problem().is_some_and(|p| p.contains("cm-tui login")));
        assert!(
            app.update(key('r')).is_empty(),
            "r cannot help after a refusal"
        );
        app.update(Event::Net(NetEvent::Disconnected {
            reason: "late".into(),
            retry_in: Duration::from_secs(1),
        }));
        assert!(matches!(app.conn(), ConnState::Offline { .. }));
        assert_eq!(app.hosts().len(), 1, "the last list stays visible");
    }

    #[test]
    fn heartbeat_age_uses_the_relay_clock_plus_local_elapsed() {
        let mut app = App::new(&profile(), 5_000);
        let mut l = list(&["a"]);
        l.now_ms = 1_000_000;
        app.update(Event::Net(NetEvent::Hosts(l)));
        app.update(Event::Tick { now_ms: 8_000 });
        assert_eq!(app.relay_now_ms(), 1_003_000);
    }

    #[test]
    fn login_countdown_comes_from_ticks() {
        let mut app = App::new(&profile(), T0);
        assert_eq!(app.login_left_ms(), 8 * 3_600_000 - 60_000);
        app.update(Event::Tick {
            now_ms: T0 + 9 * 3_600_000,
        });
        assert_eq!(app.login_left_ms(), 0);
    }
}
