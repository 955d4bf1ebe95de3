//! The ports panel: `p` lists the host's `port_list` and reads it again every few seconds
//! while open; Enter starts a forward (an effect the runtime carries out), its news shows the
//! local URL and the open connections; Enter or `x` stops it; a refusal shows the host's
//! reason; a lost connection stops every forward with a notice.

use super::*;
use crate::app::ports::{ForwardState, REFRESH_MS};
use crate::call::{CallError, ForwardNews, ForwardRequest, Scope};
use proto::forward::ListeningPort;
use proto::wire_error::ErrorCode;
use std::net::SocketAddr;

pub(crate) const REFUSAL: &str = "port 5432 is not forwarded: the host's [forward] allow is [\"detected\"] and 5432 was not started by a workspace's OpenCode";

fn port(port: u16, process: &str, ws: Option<&str>, forwardable: bool) -> ListeningPort {
    ListeningPort {
        port,
        addr: "127.0.0.1".into(),
        pid: Some(4242),
        process: Some(process.into()),
        workspace: ws.map(Into::into),
        forwardable,
    }
}

/// `box`'s ports: 8000 (python3 in demo, forwardable), 5432 (postgres, not).
pub(crate) fn ports() -> Vec<ListeningPort> {
    vec![
        port(8000, "python3", Some("demo"), true),
        port(5432, "postgres", None, false),
    ]
}

/// The ports panel of `box` open, the ports read.
pub(crate) fn at_ports() -> Drive {
    let mut d = Drive::at_workspaces();
    d.key('p');
    d.answer(Op::PortList, Response::Ports(ports()));
    d
}

fn forward_asked(d: &Drive) -> ForwardRequest {
    d.fx.iter()
        .find_map(|e| match e {
            Effect::Forward(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no forward in {:?}", d.fx))
}

pub(crate) fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

/// A forward of 8000 listening on 127.0.0.1:8000 with two connections open.
pub(crate) fn forwarding() -> (Drive, u64) {
    let mut d = at_ports();
    d.code(KeyCode::Enter);
    let id = forward_asked(&d).id;
    d.net(NetEvent::Forward {
        id,
        news: ForwardNews::Listening { local: local() },
    });
    d.net(NetEvent::Forward {
        id,
        news: ForwardNews::Connections(2),
    });
    (d, id)
}

/// The host refused to forward 5432.
pub(crate) fn refused() -> Drive {
    let mut d = at_ports();
    d.key('j').code(KeyCode::Enter);
    let id = forward_asked(&d).id;
    d.net(NetEvent::Forward {
        id,
        news: ForwardNews::Ended(CallError::refused(ErrorCode::Forbidden, REFUSAL)),
    });
    d
}

#[test]
fn p_lists_the_hosts_ports_and_reads_them_again_while_open() {
    let mut d = Drive::at_workspaces();
    d.key('p');
    assert_eq!(d.app.context(), Context::Ports);
    let asked = d.take(Op::PortList);
    assert_eq!(asked.scope, Scope::host(&HostId::from("box")));
    d.net(NetEvent::Reply {
        request: asked,
        result: Ok(Response::Ports(ports())),
    });
    let panel = d.app.ports_panel().expect("open");
    assert_eq!(panel.ready().map(<[_]>::len), Some(2));
    // Not yet due: nothing asked.
    d.send(Event::Tick {
        now_ms: T0 + REFRESH_MS - 1,
    });
    assert!(!d.asked(Op::PortList));
    d.send(Event::Tick {
        now_ms: T0 + REFRESH_MS,
    });
    assert!(d.asked(Op::PortList), "read again when due");
    // A server stopped: the next answer drops it.
    d.answer(Op::PortList, Response::Ports(vec![ports().remove(1)]));
    let panel = d.app.ports_panel().expect("open");
    assert_eq!(panel.ready().map(|l| l[0].port), Some(5432));
    // Closed: no more reads.
    d.code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Workspaces);
    d.send(Event::Tick {
        now_ms: T0 + 10 * REFRESH_MS,
    });
    assert!(!d.asked(Op::PortList), "a closed panel reads nothing");
}

#[test]
fn enter_starts_a_forward_whose_news_shows_the_local_url_and_connections() {
    let mut d = at_ports();
    d.code(KeyCode::Enter);
    let asked = forward_asked(&d);
    assert_eq!(asked.host, HostId::from("box"));
    assert_eq!(asked.port, 8000);
    assert_eq!(d.app.forwards()[0].state, ForwardState::Starting);
    d.net(NetEvent::Forward {
        id: asked.id,
        news: ForwardNews::Listening { local: local() },
    });
    let notice = d.app.notice().expect("a notice").text.to_string();
    assert!(
        notice.contains("forwarding http://127.0.0.1:8000 → box:8000"),
        "{notice}"
    );
    d.net(NetEvent::Forward {
        id: asked.id,
        news: ForwardNews::Connections(3),
    });
    assert_eq!(
        d.app
            .forward_of(&HostId::from("box"), 8000)
            .map(|f| f.state),
        Some(ForwardState::Listening {
            local: local(),
            connections: 3
        })
    );
}

#[test]
fn enter_or_x_on_a_forwarded_port_stops_it() {
    let (mut d, id) = forwarding();
    d.code(KeyCode::Enter);
    assert!(d.fx.contains(&Effect::CloseStream(id)), "{:?}", d.fx);
    assert!(d.app.forwards().is_empty());
    // Again: a new forward; x stops that one.
    d.code(KeyCode::Enter);
    let again = forward_asked(&d).id;
    assert_ne!(again, id);
    d.key('x');
    assert!(d.fx.contains(&Effect::CloseStream(again)), "{:?}", d.fx);
    assert!(d.app.forwards().is_empty());
    // x on a port without a forward does nothing.
    d.key('x');
    assert!(d.fx.is_empty(), "{:?}", d.fx);
}

#[test]
fn a_refused_port_shows_the_hosts_reason_in_the_panel() {
    let d = refused();
    assert!(d.app.forwards().is_empty());
    let why = d
        .app
        .ports_panel()
        .and_then(|p| p.refusal.as_ref())
        .expect("the refusal")
        .to_string();
    assert!(why.contains("cannot forward port 5432"), "{why}");
    assert!(why.contains("[forward] allow"), "{why}");
}

#[test]
fn a_lost_connection_stops_every_forward_with_a_notice() {
    let (mut d, _) = forwarding();
    d.code(KeyCode::Esc);
    assert_eq!(
        d.app.forwards().len(),
        1,
        "closing the panel keeps the forward"
    );
    d.net(NetEvent::Fatal {
        message: "the relay revoked this login".into(),
        revoked: true,
    });
    assert!(d.app.forwards().is_empty());
    let notice = d.app.notice().expect("a notice").text.to_string();
    assert!(
        notice.contains("1 port forward stopped: the relay connection was lost"),
        "{notice}"
    );
}

#[test]
fn the_palette_opens_the_ports_panel_and_the_help_lists_its_key() {
    let mut d = Drive::at_workspaces();
    d.key(':');
    d.typed("ports").code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Ports);
    let listed = crate::keymap::tables(Context::Workspaces)
        .iter()
        .flat_map(|t| t.iter())
        .any(|b| b.action == crate::action::Action::OpenPorts);
    assert!(listed);
}
