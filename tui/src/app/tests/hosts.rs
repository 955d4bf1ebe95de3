//! The hosts screen: selection, paging, help, quitting, connection state.

use super::*;

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
        revoked: false,
    }));
    assert_eq!(app.connection_text(), "login refused");
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

#[test]
fn a_revoked_login_is_shown_as_revoked_not_connected() {
    let mut app = app_with(&["a"]);
    assert_eq!(app.connection_text(), "connected");
    app.update(Event::Net(NetEvent::Fatal {
        message: crate::net::REVOKED.into(),
        revoked: true,
    }));
    assert_eq!(app.connection_text(), "login revoked");
    assert_eq!(app.problem(), Some(crate::net::REVOKED));
}
