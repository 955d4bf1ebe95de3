//! Whole-screen tests: the hosts screen drawn on a `TestBackend` and compared with committed
//! insta snapshots (text), plus style checks where colour carries meaning. Time, RTT and the
//! account are fixed by the events fed in, so the snapshots hold no volatile text.

use super::render;
use super::theme::Theme;
use crate::app::App;
use crate::app::tests::{T0, host, list, profile};
use crate::event::{Event, KeyPress, NetEvent};
use proto::ids::{ConnId, HostId};
use proto::message::{HostInfo, HostList, HostStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::{Color, Modifier};
use std::time::Duration;

fn draw(app: &App, theme: Theme, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| render(frame, app, theme))
        .expect("draw");
    terminal
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let terminal = draw(app, Theme::new(true), width, height);
    format!("{width}x{height}\n{}\n", terminal.backend())
}

fn net(app: &mut App, event: NetEvent) {
    app.update(Event::Net(event));
}

fn connected() -> App {
    let mut app = App::new(&profile(), T0);
    net(
        &mut app,
        NetEvent::Connected {
            conn_id: ConnId::from("k1"),
        },
    );
    net(
        &mut app,
        NetEvent::Pong {
            rtt: Duration::from_millis(12),
        },
    );
    app
}

/// A fleet with every kind of row: busy online host, another online one, an offline host with
/// an old status, and an enrolled host that never connected.
fn fleet() -> HostList {
    let mut build = host("build-01", true);
    build.last_heartbeat_ms = Some(T0 - 1_000);
    let mut gpu = host("gpu-box", true);
    gpu.status = Some(HostStatus {
        os: "linux 6.8.0-45-generic".into(),
        load: [3.25, 2.0, 1.0],
        mem_total_kib: 64 * 1_048_576,
        mem_available_kib: 8 * 1_048_576,
        workspaces: vec!["train".into()],
        ..HostStatus::default()
    });
    let mut laptop = host("laptop", false);
    laptop.last_heartbeat_ms = Some(T0 - 2 * 3_600_000);
    let never = HostInfo {
        host: HostId::from("new-host"),
        online: false,
        last_heartbeat_ms: None,
        status: None,
    };
    HostList {
        now_ms: T0,
        hosts: vec![build, gpu, laptop, never],
    }
}

fn fleet_app() -> App {
    let mut app = connected();
    net(&mut app, NetEvent::Hosts(fleet()));
    app.update(Event::Key(KeyPress::char('j')));
    app
}

#[test]
fn hosts_screen_connected_at_two_widths() {
    let app = fleet_app();
    insta::assert_snapshot!(format!("{}{}", screen(&app, 80, 24), screen(&app, 140, 40)));
}

#[test]
fn hosts_screen_empty_list_shows_the_enroll_hint() {
    let mut app = connected();
    net(&mut app, NetEvent::Hosts(list(&[])));
    let text = screen(&app, 80, 24);
    assert!(text.contains("cm-relay host add NAME"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn hosts_screen_reconnecting_shows_countdown_and_reason() {
    let mut app = fleet_app();
    net(
        &mut app,
        NetEvent::Disconnected {
            reason: "cannot connect to relay relay.example.com:7443: no answer (is the relay \
                     running, and is its UDP port open?)"
                .into(),
            retry_in: Duration::from_secs(8),
        },
    );
    app.update(Event::Tick { now_ms: T0 + 3_000 });
    let text = screen(&app, 80, 24);
    assert!(text.contains("reconnecting in 5s"), "{text}");
    assert!(
        text.contains("port open?)"),
        "the reason wraps, not cut: {text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn hosts_screen_offline_after_refusal_says_what_to_run() {
    let mut app = fleet_app();
    net(
        &mut app,
        NetEvent::Fatal {
            message: crate::net::REFUSED.into(),
        },
    );
    let text = screen(&app, 80, 24);
    assert!(text.contains("run `cm-tui login` again"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn help_overlay_lists_the_keymap() {
    let mut app = fleet_app();
    app.update(Event::Key(KeyPress::char('?')));
    let text = screen(&app, 80, 24);
    assert!(
        text.contains("q/Ctrl-C") && text.contains("reconnect"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn before_the_first_list_the_screen_says_it_is_waiting() {
    let app = App::new(&profile(), T0);
    let text = screen(&app, 80, 24);
    assert!(text.contains("waiting for the host list"), "{text}");
    assert!(text.contains("connecting…"), "{text}");
}

#[test]
fn refused_before_the_first_list_does_not_claim_to_wait() {
    let mut app = App::new(&profile(), T0);
    net(
        &mut app,
        NetEvent::Fatal {
            message: crate::net::REFUSED.into(),
        },
    );
    let text = screen(&app, 80, 24);
    assert!(text.contains("no host list: not connected"), "{text}");
    assert!(!text.contains("waiting"), "{text}");
}

/// The cell of the first occurrence of `symbol` in the buffer.
fn find(terminal: &Terminal<TestBackend>, symbol: &str) -> (u16, u16) {
    let buffer = terminal.backend().buffer();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            if buffer[(x, y)].symbol() == symbol {
                return (x, y);
            }
        }
    }
    panic!("{symbol:?} not on screen");
}

#[test]
fn online_is_green_and_offline_rows_are_dimmed() {
    let mut app = connected();
    net(&mut app, NetEvent::Hosts(fleet()));
    let terminal = draw(&app, Theme::new(true), 100, 20);
    let buffer = terminal.backend().buffer();
    let online = find(&terminal, "●");
    assert_eq!(buffer[online].fg, Color::Green);
    let offline = find(&terminal, "○");
    assert_eq!(buffer[offline].fg, Color::Red);
    // The host name cell of the offline "laptop" row is dimmed; "build-01" (online) is not.
    let (_, laptop_row) = find(&terminal, "○");
    let (name_x, build_row) = find(&terminal, "b");
    assert!(
        buffer[(name_x, laptop_row)]
            .modifier
            .contains(Modifier::DIM)
    );
    assert!(!buffer[(name_x, build_row)].modifier.contains(Modifier::DIM));
}

#[test]
fn no_color_emits_no_colour_but_keeps_emphasis() {
    let app = fleet_app();
    let terminal = draw(&app, Theme::new(false), 100, 20);
    let buffer = terminal.backend().buffer();
    for cell in &buffer.content {
        assert_eq!(cell.fg, Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, Color::Reset, "{cell:?}");
    }
    let offline = find(&terminal, "○");
    assert!(buffer[offline].modifier.contains(Modifier::DIM));
    assert!(
        buffer
            .content
            .iter()
            .any(|c| c.modifier.contains(Modifier::REVERSED)),
        "the selection is still visible"
    );
}
