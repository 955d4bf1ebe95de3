//! Reconnects keep the place: the screen, the open session, its scroll position and draft
//! stay; what is shown is re-read; watches resume after the last event seen; watches that end
//! are retried with backoff; an agent restart triggers a re-read.

use super::*;

fn lose(d: &mut Drive) {
    d.net(NetEvent::Disconnected {
        reason: "relay connection lost: timed out".into(),
        retry_in: Duration::from_secs(2),
    });
}

fn connect(d: &mut Drive) {
    d.net(NetEvent::Connected {
        conn_id: ConnId::from("k2"),
    });
}

fn watch_effects(fx: &[Effect]) -> Vec<(WatchKey, Option<u64>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Watch { watch, after_seq } => Some((watch.clone(), *after_seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reconnect_keeps_the_session_screen_and_resumes_the_watch() {
    let mut d = Drive::at_session();
    d.send(Event::Resize {
        width: 80,
        height: 12,
    });
    for seq in 2..30 {
        d.event(
            seq,
            WsEvent::TextDelta {
                session: "ses_new".into(),
                message_id: "msg_3".into(),
                part_id: "prt_3".into(),
                delta: format!("line {seq}\n"),
            },
        );
    }
    d.key('k');
    d.key('k');
    d.key('i');
    d.typed("half a thought");
    let top = d.session().top();
    let transcript = d.session().transcript.clone();

    lose(&mut d);
    assert_eq!(d.app.screen(), Screen::Session);
    connect(&mut d);
    assert_eq!(d.app.screen(), Screen::Session, "still on the session");
    assert_eq!(d.session().id, "ses_new");
    assert_eq!(d.session().top(), top, "same scroll position");
    assert_eq!(d.session().editor.text(), "half a thought", "draft kept");
    assert_eq!(d.session().transcript, transcript, "transcript kept");
    let watches = watch_effects(&d.fx);
    assert!(
        watches.contains(&(demo(), Some(29))),
        "resumes after the last event seen: {watches:?}"
    );
    // The lists underneath are re-read; the loaded history is not.
    assert!(d.asked(Op::WorkspaceList) && d.asked(Op::SessionList));
    assert!(!d.asked(Op::Messages));
    // Replayed events continue the transcript.
    d.net(NetEvent::WatchStarted {
        watch: demo(),
        next_seq: 31,
    });
    d.event(
        30,
        WsEvent::TextDelta {
            session: "ses_new".into(),
            message_id: "msg_3".into(),
            part_id: "prt_3".into(),
            delta: "line 30\n".into(),
        },
    );
    let last = d
        .session()
        .transcript
        .messages()
        .last()
        .and_then(|m| m.parts.last())
        .cloned();
    assert!(matches!(last, Some(Part::Text { text, .. }) if text.ends_with("line 29\nline 30\n")));
}

#[test]
fn selections_survive_a_reconnect_and_a_changed_list() {
    let mut d = Drive::at_sessions();
    d.key('j');
    assert_eq!(
        d.app
            .sessions()
            .and_then(|s| s.selected())
            .map(|s| s.id.to_string())
            .as_deref(),
        Some("ses_old")
    );
    lose(&mut d);
    connect(&mut d);
    d.answer(
        Op::SessionList,
        Response::Sessions(vec![
            session_info("ses_old", "Old chat", T0 - 3_600_000, SessionStatus::Idle),
            session_info("ses_new", "Fix the tests", T0 - 60_000, SessionStatus::Idle),
            session_info("ses_newer", "Brand new", T0, SessionStatus::Busy),
        ]),
    );
    let view = d.app.sessions().expect("view");
    assert_eq!(view.selected().map(|s| s.id.as_str()), Some("ses_old"));
    assert_eq!(view.nav.selected(), 2, "same session, new position");
}

#[test]
fn a_history_lost_in_transit_is_fetched_after_the_reconnect() {
    let mut d = Drive::at_sessions();
    d.code(KeyCode::Enter);
    let lost = d.take(Op::Messages);
    lose(&mut d);
    d.net(NetEvent::Reply {
        request: lost,
        result: Err(crate::call::CallError::transport("connection lost")),
    });
    connect(&mut d);
    assert!(d.asked(Op::Messages));
}

#[test]
fn an_ended_watch_is_retried_with_backoff() {
    let mut d = Drive::at_session();
    d.net(NetEvent::WatchEnded {
        watch: demo(),
        reason: "the agent ended the event stream".into(),
    });
    assert!(!d.app.watching(&demo()));
    d.send(Event::Tick { now_ms: T0 + 1_000 });
    assert!(watch_effects(&d.fx).is_empty(), "not yet");
    d.send(Event::Tick { now_ms: T0 + 2_000 });
    assert_eq!(watch_effects(&d.fx), [(demo(), Some(0))]);
    d.net(NetEvent::WatchEnded {
        watch: demo(),
        reason: "again".into(),
    });
    d.send(Event::Tick { now_ms: T0 + 5_000 });
    assert!(watch_effects(&d.fx).is_empty(), "the second wait is longer");
    d.send(Event::Tick { now_ms: T0 + 6_000 });
    assert_eq!(watch_effects(&d.fx).len(), 1);
}

#[test]
fn an_agent_restart_rereads_the_session() {
    let mut d = Drive::at_session();
    d.event(
        40,
        WsEvent::SessionIdle {
            session: "ses_old".into(),
        },
    );
    lose(&mut d);
    connect(&mut d);
    assert!(watch_effects(&d.fx).contains(&(demo(), Some(40))));
    d.pending.clear();
    // The agent restarted: its numbers begin again.
    d.net(NetEvent::WatchStarted {
        watch: demo(),
        next_seq: 3,
    });
    assert!(d.asked(Op::Messages), "history re-read");
    assert!(!d.session().loaded);
}

#[test]
fn nothing_is_requested_while_disconnected() {
    let mut d = Drive::new();
    lose(&mut d);
    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Workspaces);
    assert!(d.pending.is_empty());
    connect(&mut d);
    assert!(d.asked(Op::WorkspaceList), "asked once connected");
}
