//! The attention panel: what lands in it, the bell, answering permission requests from the
//! panel and from the session screen, failures, and jumping to the session.

use super::*;
use crate::call::{Call, CallError};
use proto::ops::{PermissionAnswer, PermissionReply, QuestionReply, QuestionRequest};
use proto::wire_error::ErrorCode;

fn asked(id: &str, session: &str) -> WsEvent {
    WsEvent::PermissionAsked {
        request: permission(id, session, "rm -rf build"),
    }
}

fn reply_of(r: &Request) -> &PermissionReply {
    match &r.call {
        Call::PermissionReply(p) => p,
        other => panic!("not a permission reply: {other:?}"),
    }
}

#[test]
fn a_permission_request_rings_once_and_lists_in_the_panel() {
    let mut d = Drive::at_sessions();
    d.event(2, asked("per_1", "ses_old"));
    assert!(d.fx.contains(&Effect::Bell), "{:?}", d.fx);
    d.event(3, asked("per_1", "ses_old"));
    assert!(
        !d.fx.contains(&Effect::Bell),
        "the same request does not ring twice"
    );
    assert_eq!(d.app.attention().items().len(), 1);
    // A permission_list answer replaces what the workspace has pending.
    d.net(NetEvent::Reply {
        request: Request {
            id: 999,
            scope: demo().scope(),
            call: Call::PermissionList,
        },
        result: Ok(Response::Pending(Pending {
            permissions: vec![permission("per_2", "ses_new", "ls")],
            questions: vec![],
        })),
    });
    let ids: Vec<String> = d
        .app
        .attention()
        .items()
        .iter()
        .filter_map(|i| match &i.kind {
            crate::app::attention::ItemKind::Permission(p) => Some(p.id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["per_2"]);
}

#[test]
fn the_bell_can_be_turned_off() {
    let mut d = Drive::at_sessions();
    d.key('b');
    assert!(!d.app.bell());
    d.event(2, asked("per_1", "ses_old"));
    assert!(!d.fx.contains(&Effect::Bell));
    assert_eq!(d.app.attention().items().len(), 1, "still listed");
}

#[test]
fn answer_from_the_panel_once_always_or_reject() {
    for (k, want) in [
        ('y', PermissionAnswer::Once),
        ('A', PermissionAnswer::Always),
        ('r', PermissionAnswer::Reject),
    ] {
        let mut d = Drive::at_sessions();
        d.event(2, asked("per_1", "ses_old"));
        d.code(KeyCode::Tab);
        d.key(k);
        if want == PermissionAnswer::Always {
            assert!(!d.asked(Op::PermissionReply), "always is confirmed first");
            d.key(k);
        }
        let r = d.take(Op::PermissionReply);
        let always_patterns =
            (want == PermissionAnswer::Always).then(|| vec!["rm -rf build *".to_owned()]);
        assert_eq!(
            reply_of(&r),
            &PermissionReply {
                request_id: "per_1".into(),
                answer: want,
                message: None,
                always_patterns,
            }
        );
        assert_eq!(
            r.scope,
            Scope::session(&HostId::from("box"), "demo", "ses_old")
        );
        d.key(k);
        assert!(
            !d.asked(Op::PermissionReply),
            "no second answer while one is in flight"
        );
        d.net(NetEvent::Reply {
            request: r,
            result: Ok(Response::Answered),
        });
        assert!(d.app.attention().items().is_empty());
    }
}

#[test]
fn answer_from_the_session_screen_picks_this_sessions_request() {
    let mut d = Drive::at_session();
    d.event(2, asked("per_other", "ses_old"));
    d.event(3, asked("per_mine", "ses_new"));
    d.key('y');
    let r = d.take(Op::PermissionReply);
    assert_eq!(reply_of(&r).request_id, "per_mine");
    assert_eq!(reply_of(&r).answer, PermissionAnswer::Once);
    // The agent's event confirms it for everyone watching.
    d.event(
        4,
        WsEvent::PermissionReplied {
            session: "ses_new".into(),
            request_id: "per_mine".into(),
            answer: PermissionAnswer::Once,
        },
    );
    assert_eq!(d.app.attention().items().len(), 1);
    d.key('r');
    assert!(
        !d.asked(Op::PermissionReply),
        "nothing of this session is waiting"
    );
    assert!(d.app.notice().is_some());
}

#[test]
fn a_failed_answer_can_be_retried_and_a_stale_one_goes() {
    let mut d = Drive::at_session();
    d.event(2, asked("per_1", "ses_new"));
    d.key('A');
    d.key('A');
    let r = d.take(Op::PermissionReply);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(CallError::transport("stream reset")),
    });
    let item = &d.app.attention().items()[0];
    assert_eq!(
        (item.answering, item.error.as_deref()),
        (None, Some("stream reset"))
    );
    d.key('A');
    d.key('A');
    let r = d.take(Op::PermissionReply);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(CallError::refused(ErrorCode::NotFound, "no such request")),
    });
    assert!(
        d.app.attention().items().is_empty(),
        "answered elsewhere: gone"
    );
}

#[test]
fn questions_are_rejected_with_r_only() {
    let mut d = Drive::at_sessions();
    d.event(
        2,
        WsEvent::QuestionAsked {
            request: QuestionRequest {
                id: "que_1".into(),
                session: "ses_old".into(),
                questions: serde_json::json!([{ "question": "Which branch?" }]),
            },
        },
    );
    d.code(KeyCode::Tab);
    d.key('y');
    assert!(d.pending.is_empty());
    d.key('r');
    let r = d.take(Op::QuestionReply);
    assert_eq!(
        r.call,
        Call::QuestionReply(QuestionReply {
            request_id: "que_1".into(),
            answers: None,
        })
    );
}

#[test]
fn finished_sessions_and_failed_opencode_are_news_until_seen() {
    let mut d = Drive::at_sessions();
    d.event(
        2,
        WsEvent::SessionStatus {
            session: "ses_old".into(),
            status: SessionStatus::Busy,
        },
    );
    // OpenCode reports the idle status, then the idle event: one item, one bell.
    d.event(
        3,
        WsEvent::SessionStatus {
            session: "ses_old".into(),
            status: SessionStatus::Idle,
        },
    );
    assert!(d.fx.contains(&Effect::Bell));
    d.event(
        4,
        WsEvent::SessionIdle {
            session: "ses_old".into(),
        },
    );
    assert!(!d.fx.contains(&Effect::Bell));
    // A session never seen working is not news when it reports idle.
    d.event(
        5,
        WsEvent::SessionIdle {
            session: "ses_new".into(),
        },
    );
    d.event(
        6,
        WsEvent::Opencode {
            info: OpencodeInfo {
                last_error: Some("exit status 1".into()),
                ..opencode("demo", OpencodeState::Failed)
            },
        },
    );
    assert_eq!(d.app.attention().items().len(), 2);
    // Enter on the panel goes to the session and it is no longer news.
    d.code(KeyCode::Tab);
    let finished = d
        .app
        .attention()
        .items()
        .iter()
        .position(|i| matches!(i.kind, crate::app::attention::ItemKind::Finished { .. }))
        .expect("finished item");
    for _ in 0..finished {
        d.key('j');
    }
    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Session);
    assert_eq!(d.session().id, "ses_old");
    assert!(!d.app.attention_open());
    assert_eq!(
        d.app.attention().items().len(),
        1,
        "only the failure remains"
    );
    d.key('!');
    d.key('x');
    assert!(d.app.attention().items().is_empty(), "x dismisses");
}

#[test]
fn enter_on_a_request_in_another_workspace_builds_the_stack() {
    let mut d = Drive::at_workspaces();
    d.net(NetEvent::WatchFrame {
        watch: demo(),
        frame: EventFrame {
            seq: 5,
            event: asked("per_1", "ses_far"),
        },
    });
    d.code(KeyCode::Tab);
    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Session);
    assert_eq!(d.session().id, "ses_far");
    assert!(d.asked(Op::SessionList) && d.asked(Op::Messages));
    d.key('y');
    assert_eq!(reply_of(&d.take(Op::PermissionReply)).request_id, "per_1");
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Sessions);
}

#[test]
fn always_is_sent_only_after_a_confirmation_with_the_patterns_shown() {
    let mut d = Drive::at_session();
    d.event(2, asked("per_1", "ses_new"));
    d.key('A');
    assert!(
        !d.asked(Op::PermissionReply),
        "the first A only shows what it allows"
    );
    assert!(d.app.attention().items()[0].confirming_always);
    d.code(KeyCode::Esc);
    assert_eq!(
        d.app.screen(),
        Screen::Session,
        "Esc cancels, it does not leave"
    );
    assert!(!d.app.attention().items()[0].confirming_always);
    d.key('A');
    d.key('A');
    let r = d.take(Op::PermissionReply);
    assert_eq!(reply_of(&r).answer, PermissionAnswer::Always);
    assert_eq!(
        reply_of(&r).always_patterns.as_deref(),
        Some(&["rm -rf build *".to_owned()][..]),
        "exactly the patterns the confirmation showed"
    );
}

#[test]
fn always_for_this_file_or_command_grants_only_the_requests_own_patterns() {
    let mut d = Drive::at_session();
    d.event(2, asked("per_1", "ses_new"));
    d.key('f');
    assert!(!d.asked(Op::PermissionReply), "f is confirmed too");
    d.key('f');
    let r = d.take(Op::PermissionReply);
    assert_eq!(reply_of(&r).answer, PermissionAnswer::Always);
    assert_eq!(
        reply_of(&r).always_patterns.as_deref(),
        Some(&["rm -rf build".to_owned()][..])
    );
}

#[test]
fn y_during_the_always_confirmation_allows_once() {
    let mut d = Drive::at_session();
    d.event(2, asked("per_1", "ses_new"));
    d.key('A');
    d.key('y');
    let r = d.take(Op::PermissionReply);
    assert_eq!(reply_of(&r).answer, PermissionAnswer::Once);
    assert_eq!(reply_of(&r).always_patterns, None);
}

#[test]
fn enter_on_a_request_from_a_session_with_an_invalid_id_opens_no_screen() {
    let mut d = Drive::at_workspaces();
    d.net(NetEvent::WatchFrame {
        watch: demo(),
        frame: EventFrame {
            seq: 5,
            event: asked("per_1", "../ses"),
        },
    });
    d.pending.clear();
    d.code(KeyCode::Tab);
    d.code(KeyCode::Enter);
    assert!(d.app.session().is_none());
    assert!(!d.asked(Op::Messages), "nothing is read for a bad id");
    let notice = d.app.notice().expect("a notice says why");
    assert!(
        notice.error
            && notice
                .text
                .contains("cannot open that session: invalid session id"),
        "{notice:?}"
    );
}

#[test]
fn a_failed_turn_is_news_in_place_of_finished_until_the_session_runs_again() {
    use crate::app::attention::ItemKind;
    let mut d = Drive::at_sessions();
    let busy = |d: &mut Drive, seq, session: &str| {
        d.event(
            seq,
            WsEvent::SessionStatus {
                session: session.into(),
                status: SessionStatus::Busy,
            },
        );
    };
    let error = |d: &mut Drive, seq, session: &str, name: &str| {
        d.event(
            seq,
            WsEvent::SessionError {
                session: session.into(),
                name: name.into(),
                message: "bad request".into(),
            },
        );
        d.event(
            seq + 1,
            WsEvent::SessionIdle {
                session: session.into(),
            },
        );
    };
    busy(&mut d, 2, "ses_a");
    error(&mut d, 3, "ses_a", "APIError");
    // Aborted by the operator: not a failure (it is "finished", as before).
    busy(&mut d, 5, "ses_b");
    error(&mut d, 6, "ses_b", "MessageAbortedError");
    let kinds: Vec<&ItemKind> = d.app.attention().items().iter().map(|i| &i.kind).collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        matches!(kinds[0], ItemKind::TurnFailed { session, error }
            if session == "ses_a" && error.as_str() == "APIError: bad request"),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds[1], ItemKind::Finished { session } if session == "ses_b"),
        "{kinds:?}"
    );
    // The session runs again: its failure is no longer news.
    busy(&mut d, 8, "ses_a");
    assert!(
        !d.app
            .attention()
            .items()
            .iter()
            .any(|i| matches!(i.kind, ItemKind::TurnFailed { .. })),
    );
}
