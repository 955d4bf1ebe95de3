//! `update()` tests without a terminal: fixtures and a small driver that remembers the
//! requests the app asked for and answers them like the connection task would.

pub(crate) mod admin;
pub(crate) mod admin_certs;
mod attention;
pub(crate) mod clone;
mod detail;
mod focus_signal;
pub(crate) mod folders;
mod hosts;
pub(crate) mod model;
mod navigation;
pub(crate) mod notify;
mod offline;
mod palette;
pub(crate) mod ports;
mod prompt;
pub(crate) mod question;
mod reconnect;
mod session_manage;
pub(crate) mod templates;
mod transcript;

use super::*;
pub(crate) use crate::action::Action;
use crate::call::{Request, Response, WatchKey};
use crate::event::{KeyCode, KeyPress};
pub(crate) use crate::keymap::Context;
use proto::event::{Event as WsEvent, EventFrame};
use proto::header::Op;
use proto::ids::{CredId, HostId, UserId};
use proto::message::{HostInfo, HostList, HostStatus};
use proto::ops::{
    Message, OpencodeInfo, OpencodeState, Part, Pending, PermissionRequest, SessionInfo,
    SessionStatus, WorkspaceInfo,
};

pub(crate) const T0: u64 = 1_700_000_000_000;

pub(crate) fn profile() -> Profile {
    Profile {
        relay: "relay.example.com:7443".into(),
        pin: "blake3:00".into(),
        user: UserId::from("alice"),
        cred_id: CredId::from("c1"),
        expires_at_ms: T0 + 8 * 3_600_000 - 60_000,
        home: Default::default(),
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
        roles: Default::default(),
        global_role: None,
    }
}

pub(crate) fn key(c: char) -> Event {
    Event::Key(KeyPress::char(c))
}

pub(crate) fn special(code: KeyCode) -> Event {
    Event::Key(KeyPress::plain(code))
}

pub(crate) fn app_with(names: &[&str]) -> App {
    let mut app = App::new(&profile(), T0).with_key_seed(0xfeed);
    app.update(Event::Net(NetEvent::Connected {
        conn_id: ConnId::from("k1"),
    }));
    app.update(Event::Net(NetEvent::Hosts(list(names))));
    app
}

pub(crate) fn opencode(workspace: &str, state: OpencodeState) -> OpencodeInfo {
    OpencodeInfo {
        workspace: workspace.into(),
        state,
        version: Some("1.2.3".into()),
        restarts: 0,
        last_error: None,
    }
}

pub(crate) fn workspace(name: &str, state: OpencodeState) -> WorkspaceInfo {
    WorkspaceInfo {
        sandbox: None,
        template: None,
        name: name.into(),
        available: true,
        opencode: opencode(name, state),
    }
}

pub(crate) fn session_info(
    id: &str,
    title: &str,
    updated_ms: u64,
    status: SessionStatus,
) -> SessionInfo {
    SessionInfo {
        id: id.into(),
        title: title.into(),
        created_ms: updated_ms - 60_000,
        updated_ms,
        status,
        parent: None,
    }
}

pub(crate) fn text_message(id: &str, role: &str, part: &str, text: &str) -> Message {
    Message {
        id: id.into(),
        role: role.into(),
        created_ms: T0,
        finish: None,
        error: None,
        parts: vec![Part::Text {
            id: part.into(),
            text: text.into(),
        }],
    }
}

pub(crate) fn permission(id: &str, session: &str, command: &str) -> PermissionRequest {
    PermissionRequest {
        id: id.into(),
        session: session.into(),
        permission: "bash".into(),
        patterns: vec![command.into()],
        metadata: serde_json::json!({ "command": command }),
        always: vec![format!("{command} *")],
    }
}

/// The workspace the driver's fixtures live in.
pub(crate) fn demo() -> WatchKey {
    WatchKey::new(&HostId::from("box"), "demo")
}

/// Drives an app and remembers the requests it asked for, to answer them later.
pub(crate) struct Drive {
    pub(crate) app: App,
    /// Requests asked for and not yet answered, oldest first.
    pub(crate) pending: Vec<Request>,
    /// Every effect of the last update.
    pub(crate) fx: Vec<Effect>,
}

impl Drive {
    /// Connected, with hosts `box` and `spare`.
    pub(crate) fn new() -> Self {
        Self {
            app: app_with(&["box", "spare"]),
            pending: Vec::new(),
            fx: Vec::new(),
        }
    }

    pub(crate) fn send(&mut self, event: Event) -> &mut Self {
        self.fx = self.app.update(event);
        for e in &self.fx {
            if let Effect::Request(r) = e {
                self.pending.push(r.clone());
            }
        }
        self
    }

    pub(crate) fn key(&mut self, c: char) -> &mut Self {
        self.send(key(c))
    }

    pub(crate) fn press(&mut self, k: KeyPress) -> &mut Self {
        self.send(Event::Key(k))
    }

    pub(crate) fn code(&mut self, code: KeyCode) -> &mut Self {
        self.send(special(code))
    }

    pub(crate) fn typed(&mut self, text: &str) -> &mut Self {
        for c in text.chars() {
            self.key(c);
        }
        self
    }

    pub(crate) fn net(&mut self, event: NetEvent) -> &mut Self {
        self.send(Event::Net(event))
    }

    /// Takes the oldest pending request for `op`.
    pub(crate) fn take(&mut self, op: Op) -> Request {
        let i = self
            .pending
            .iter()
            .position(|r| r.call.op() == op)
            .unwrap_or_else(|| panic!("no pending {op:?} request in {:?}", self.pending));
        self.pending.remove(i)
    }

    /// Whether a request for `op` is pending.
    pub(crate) fn asked(&self, op: Op) -> bool {
        self.pending.iter().any(|r| r.call.op() == op)
    }

    /// Answers the oldest pending `op` request with `response`.
    pub(crate) fn answer(&mut self, op: Op, response: Response) -> &mut Self {
        let request = self.take(op);
        self.net(NetEvent::Reply {
            request,
            result: Ok(response),
        })
    }

    /// An event on the `box/demo` watch.
    pub(crate) fn event(&mut self, seq: u64, event: WsEvent) -> &mut Self {
        self.net(NetEvent::WatchFrame {
            watch: demo(),
            frame: EventFrame { seq, event },
        })
    }

    /// On the workspaces screen of `box`, with `demo` (ready) and `docs` (stopped).
    pub(crate) fn at_workspaces() -> Self {
        let mut d = Self::new();
        d.code(KeyCode::Enter);
        d.answer(
            Op::WorkspaceList,
            Response::Workspaces(vec![
                workspace("demo", OpencodeState::Ready),
                workspace("docs", OpencodeState::Stopped),
            ]),
        );
        d.net(NetEvent::WatchStarted {
            watch: demo(),
            next_seq: 1,
        });
        d.pending.clear();
        d
    }

    /// On the sessions screen of `box/demo`, with two sessions (`ses_new` most recent).
    pub(crate) fn at_sessions() -> Self {
        let mut d = Self::at_workspaces();
        d.code(KeyCode::Enter);
        d.answer(
            Op::SessionList,
            Response::Sessions(vec![
                session_info("ses_old", "Old chat", T0 - 3_600_000, SessionStatus::Idle),
                session_info("ses_new", "Fix the tests", T0 - 60_000, SessionStatus::Idle),
            ]),
        );
        d.answer(Op::PermissionList, Response::Pending(Pending::default()));
        d.pending.clear();
        d
    }

    /// On the session screen of `ses_new`, its history loaded (one exchange).
    pub(crate) fn at_session() -> Self {
        let mut d = Self::at_sessions();
        d.code(KeyCode::Enter);
        d.answer(
            Op::Messages,
            Response::Messages(vec![
                text_message("msg_1", "user", "prt_1", "Why do the tests fail?"),
                text_message(
                    "msg_2",
                    "assistant",
                    "prt_2",
                    "Because **one** assertion is off.",
                ),
            ]),
        );
        d.pending.clear();
        d
    }

    /// The open session's view.
    pub(crate) fn session(&self) -> &SessionView {
        self.app.session().expect("a session is open")
    }
}
