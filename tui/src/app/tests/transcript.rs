//! A stream of workspace events applied to the open session's transcript: deltas in order,
//! whole parts reconciling, tool state, other sessions ignored, events that beat the history,
//! blocks, scrolling and resyncs.

use super::*;
use crate::view;

fn delta(part: &str, text: &str) -> WsEvent {
    WsEvent::TextDelta {
        session: "ses_new".into(),
        message_id: "msg_3".into(),
        part_id: part.into(),
        delta: text.into(),
    }
}

fn part(part: Part) -> WsEvent {
    WsEvent::PartUpdated {
        session: "ses_new".into(),
        message_id: "msg_3".into(),
        part,
    }
}

fn tool(status: &str, output: Option<&str>) -> Part {
    Part::Tool {
        id: "prt_tool".into(),
        tool: "bash".into(),
        status: status.into(),
        title: None,
        input: serde_json::json!({ "command": "cargo test" }),
        output: output.map(str::to_owned),
        error: None,
    }
}

/// The texts of the open transcript's parts, in order.
fn texts(d: &Drive) -> Vec<String> {
    d.session()
        .transcript
        .messages()
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter_map(|p| match p {
            Part::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn tool_status(d: &Drive) -> Option<String> {
    d.session()
        .transcript
        .messages()
        .iter()
        .flat_map(|m| m.parts.iter())
        .find_map(|p| match p {
            Part::Tool { status, .. } => Some(status.clone()),
            _ => None,
        })
}

#[test]
fn a_streamed_answer_builds_up_and_reconciles() {
    let mut d = Drive::at_session();
    d.event(
        2,
        WsEvent::SessionStatus {
            session: "ses_new".into(),
            status: SessionStatus::Busy,
        },
    );
    d.event(
        3,
        WsEvent::MessageUpdated {
            session: "ses_new".into(),
            message_id: "msg_3".into(),
            role: "assistant".into(),
            finish: None,
        },
    );
    for (seq, chunk) in (4..).zip(["The ", "fix ", "is"]) {
        d.event(seq, delta("prt_a", chunk));
    }
    assert_eq!(texts(&d).last().map(String::as_str), Some("The fix is"));
    d.event(7, part(tool("running", None)));
    assert_eq!(tool_status(&d).as_deref(), Some("running"));
    d.event(8, part(tool("completed", Some("test result: ok"))));
    assert_eq!(
        tool_status(&d).as_deref(),
        Some("completed"),
        "the same call, updated"
    );
    // The final text of the part replaces what the deltas built (here: it adds a word).
    d.event(
        9,
        part(Part::Text {
            id: "prt_a".into(),
            text: "The fix is in.".into(),
        }),
    );
    assert_eq!(
        texts(&d),
        [
            "Why do the tests fail?",
            "Because **one** assertion is off.",
            "The fix is in."
        ]
    );
    d.event(
        10,
        WsEvent::SessionIdle {
            session: "ses_new".into(),
        },
    );
    assert_eq!(d.session().status, SessionStatus::Idle);
    assert!(
        d.app.attention().items().is_empty(),
        "a turn you watched finish is not news"
    );
}

#[test]
fn events_of_other_sessions_do_not_touch_this_transcript() {
    let mut d = Drive::at_session();
    let before = d.session().transcript.clone();
    d.event(
        2,
        WsEvent::TextDelta {
            session: "ses_old".into(),
            message_id: "msg_x".into(),
            part_id: "prt_x".into(),
            delta: "elsewhere".into(),
        },
    );
    assert_eq!(d.session().transcript, before);
}

#[test]
fn events_that_beat_the_history_are_applied_after_it() {
    let mut d = Drive::at_sessions();
    d.code(KeyCode::Enter);
    // The history request is out; the answer streams meanwhile.
    d.event(2, delta("prt_1", "dup "));
    d.event(3, delta("prt_new", "fresh"));
    d.event(4, part(tool("pending", None)));
    d.answer(
        Op::Messages,
        Response::Messages(vec![text_message("msg_1", "user", "prt_1", "hello")]),
    );
    assert_eq!(
        texts(&d),
        ["hello", "fresh"],
        "deltas for parts the history has are dropped"
    );
    assert_eq!(tool_status(&d).as_deref(), Some("pending"));
}

#[test]
fn reasoning_and_tool_output_start_collapsed_and_toggle_by_key() {
    let mut d = Drive::at_session();
    d.event(
        2,
        part(Part::Reasoning {
            id: "prt_r".into(),
            text: "let me think".into(),
        }),
    );
    d.event(3, part(tool("completed", Some("ok"))));
    let t = &d.session().transcript;
    assert!(!t.is_expanded("prt_r") && !t.is_expanded("prt_tool"));
    d.key(']');
    assert_eq!(d.session().block(), Some(1), "the newest block first");
    d.code(KeyCode::Enter);
    assert!(d.session().transcript.is_expanded("prt_tool"));
    d.key('[');
    d.key(' ');
    assert!(d.session().transcript.is_expanded("prt_r"));
    d.code(KeyCode::Enter);
    assert!(!d.session().transcript.is_expanded("prt_r"));
}

#[test]
fn the_view_follows_new_output_until_scrolled_up() {
    let mut d = Drive::at_session();
    d.send(Event::Resize {
        width: 80,
        height: 12,
    });
    for seq in 2..40 {
        d.event(seq, delta("prt_long", "line\n"));
    }
    assert_eq!(d.session().top(), None, "following");
    d.key('k');
    let top = d.session().top().expect("scrolled");
    d.event(40, delta("prt_long", "more\n"));
    assert_eq!(
        d.session().top(),
        Some(top),
        "new output does not move a scrolled view"
    );
    d.key('g');
    assert_eq!(d.session().top(), Some(0));
    d.key('G');
    assert_eq!(d.session().top(), None, "G follows again");
    // Scrolling down past the end is following too.
    d.key('k');
    d.key('j');
    assert_eq!(d.session().top(), None);
    let rows = view::transcript::rows(&d.session().transcript, None, view::inner_width(80));
    assert!(rows.len() > 12);
}

#[test]
fn a_resync_rereads_the_history_and_buffers_until_it_is_back() {
    let mut d = Drive::at_session();
    d.event(
        2,
        WsEvent::Resync {
            reason: "fell behind".into(),
        },
    );
    assert!(d.asked(Op::Messages));
    assert!(d.asked(Op::PermissionList));
    assert!(!d.session().loaded);
    d.event(3, delta("prt_z", "after"));
    d.answer(
        Op::Messages,
        Response::Messages(vec![text_message("msg_1", "user", "prt_1", "reloaded")]),
    );
    assert_eq!(texts(&d), ["reloaded", "after"]);
}
