//! Answering OpenCode questions from the attention panel, through `update()`.

use super::*;
use crate::call::Call;
use proto::ops::{QuestionReply, QuestionRequest};

fn asked() -> WsEvent {
    WsEvent::QuestionAsked {
        request: QuestionRequest {
            id: "que_1".into(),
            session: "ses_old".into(),
            questions: serde_json::json!([
                {"question": "Which color?", "header": "Color", "options": [
                    {"label": "Red", "description": "warm"},
                    {"label": "Blue", "description": "cool"}
                ]},
                {"question": "Which sizes?", "header": "Sizes", "multiple": true, "options": [
                    {"label": "S"}, {"label": "M"}, {"label": "L"}
                ]}
            ]),
        },
    }
}

fn reply(d: &mut Drive) -> QuestionReply {
    match d.take(Op::QuestionReply).call {
        Call::QuestionReply(r) => r,
        other => panic!("not a question reply: {other:?}"),
    }
}

pub(crate) fn at_question() -> Drive {
    let mut d = Drive::at_sessions();
    d.event(2, asked());
    d.code(KeyCode::Tab);
    d.code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Question);
    d
}

#[test]
fn options_are_picked_question_by_question_and_submitted() {
    let mut d = at_question();
    d.key('j').code(KeyCode::Enter); // Blue
    assert_eq!(d.app.question_form().map(|f| f.current), Some(1));
    assert!(!d.asked(Op::QuestionReply), "not before the last question");
    d.key(' ').key('j').key('j').key(' ').code(KeyCode::Enter); // S and L
    assert_eq!(
        reply(&mut d),
        QuestionReply {
            request_id: "que_1".into(),
            answers: Some(vec![vec!["Blue".into()], vec!["S".into(), "L".into()]]),
        }
    );
    assert!(d.app.question_form().is_none());
    assert_eq!(d.app.context(), Context::Attention);
    let item = &d.app.attention().items()[0];
    assert!(item.answering.is_some(), "shown as being sent");
}

#[test]
fn a_question_can_be_rejected_or_left_for_later() {
    let mut d = at_question();
    d.code(KeyCode::Esc);
    assert!(d.app.question_form().is_none());
    assert!(d.pending.is_empty(), "nothing sent");
    d.key('y'); // y on a question opens the form too
    assert_eq!(d.app.context(), Context::Question);
    d.key('r');
    assert_eq!(reply(&mut d).answers, None);
}

#[test]
fn a_single_choice_question_keeps_one_pick() {
    let mut d = at_question();
    d.key(' ').key('j').key(' ');
    let form = d.app.question_form().cloned().expect("open");
    assert_eq!(form.answers()[0], ["Blue"]);
}

fn asked_in_open_session(d: &mut Drive) {
    let WsEvent::QuestionAsked { mut request } = asked() else {
        unreachable!("asked() is a question");
    };
    request.session = "ses_new".into();
    d.event(5, WsEvent::QuestionAsked { request });
}

/// On the open session `ses_new` with its question waiting.
pub(crate) fn in_session() -> Drive {
    let mut d = Drive::at_session();
    asked_in_open_session(&mut d);
    d
}

#[test]
fn a_question_of_the_open_session_is_answered_there() {
    let mut d = in_session();
    d.key('y');
    assert_eq!(d.app.context(), Context::Question);
    d.code(KeyCode::Enter).code(KeyCode::Enter); // Red, then S
    let r = reply(&mut d);
    assert_eq!(
        r.answers,
        Some(vec![vec!["Red".to_owned()], vec!["S".to_owned()]])
    );
    assert_eq!(d.app.context(), Context::Session, "back on the session");
    let mut d = in_session();
    d.key('r');
    assert_eq!(reply(&mut d).answers, None, "r rejects it");
}
