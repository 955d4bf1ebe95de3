//! The prompt box: editing, line breaks, history, sending with an idempotency key, and what
//! happens when the answer is lost or refused.

use super::*;
use crate::call::{Call, CallError};
use crate::keymap::Context;
use proto::ops::{Prompt, PromptAccepted};
use proto::wire_error::ErrorCode;

fn sent_prompt(d: &mut Drive) -> (Request, Prompt) {
    let r = d.take(Op::Prompt);
    match &r.call {
        Call::Prompt(p) => {
            let p = p.clone();
            (r, p)
        }
        other => panic!("not a prompt: {other:?}"),
    }
}

fn accepted() -> Response {
    Response::Accepted(PromptAccepted {
        session: "ses_new".into(),
        message_id: "msg_9".into(),
        duplicate: false,
    })
}

#[test]
fn i_focuses_typing_edits_and_esc_leaves_keeping_the_text() {
    let mut d = Drive::at_session();
    d.typed("q");
    assert_eq!(
        d.app.screen(),
        Screen::Session,
        "q outside the box does not type"
    );
    d.key('i');
    assert_eq!(d.app.context(), Context::Prompt);
    d.typed("fix it q?");
    d.code(KeyCode::Left);
    d.code(KeyCode::Backspace);
    d.code(KeyCode::End);
    d.press(KeyPress::alt(KeyCode::Enter));
    d.typed("now");
    d.press(KeyPress::shift(KeyCode::Enter));
    d.press(KeyPress::ctrl('j'));
    assert_eq!(d.session().editor.text(), "fix it ?\nnow\n\n");
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.press(KeyPress::ctrl('w'));
    assert_eq!(d.session().editor.text(), "fix it ?\n");
    d.code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Session);
    assert_eq!(
        d.session().editor.text(),
        "fix it ?\n",
        "Esc keeps the draft"
    );
    assert!(d.pending.is_empty(), "nothing was sent");
}

#[test]
fn enter_sends_the_text_with_a_fresh_idempotency_key() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("first");
    d.code(KeyCode::Enter);
    let (r, p) = sent_prompt(&mut d);
    assert_eq!(p.text, "first");
    assert!(!p.idempotency_key.is_empty());
    assert_eq!(
        r.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_new")
    );
    assert!(d.session().editor.is_empty(), "the box empties");
    assert!(d.session().outbox.is_some());
    assert_eq!(d.app.context(), Context::Prompt, "the box keeps the focus");
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(accepted()),
    });
    assert!(d.session().outbox.is_none());
    assert_eq!(d.session().status, SessionStatus::Busy);

    d.typed("second");
    d.code(KeyCode::Enter);
    let (_, p2) = sent_prompt(&mut d);
    assert_eq!(p2.text, "second");
    assert_ne!(
        p2.idempotency_key, p.idempotency_key,
        "every prompt gets its own key"
    );
}

#[test]
fn blank_prompts_are_not_sent_and_one_prompt_goes_at_a_time() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("  ");
    d.code(KeyCode::Enter);
    assert!(!d.asked(Op::Prompt));
    d.typed("go");
    d.code(KeyCode::Enter);
    d.typed("again");
    d.code(KeyCode::Enter);
    assert_eq!(
        d.pending
            .iter()
            .filter(|r| r.call.op() == Op::Prompt)
            .count(),
        1
    );
    assert_eq!(
        d.session().editor.text(),
        "again",
        "the second stays in the box"
    );
}

#[test]
fn up_and_down_walk_the_history_on_the_first_and_last_line() {
    let mut d = Drive::at_session();
    d.key('i');
    for text in ["one", "two"] {
        d.typed(text);
        d.code(KeyCode::Enter);
        d.answer(Op::Prompt, accepted());
    }
    d.typed("draft");
    d.code(KeyCode::Up);
    assert_eq!(d.session().editor.text(), "two");
    d.code(KeyCode::Up);
    assert_eq!(d.session().editor.text(), "one");
    d.code(KeyCode::Up);
    assert_eq!(d.session().editor.text(), "one", "stops at the oldest");
    d.code(KeyCode::Down);
    d.code(KeyCode::Down);
    assert_eq!(d.session().editor.text(), "draft", "back to the draft");
    // In a multi-line draft, Up first moves between lines.
    d.press(KeyPress::alt(KeyCode::Enter));
    d.typed("more");
    d.code(KeyCode::Up);
    assert_eq!(d.session().editor.cursor().0, 0);
    assert_eq!(d.session().editor.text(), "draft\nmore");
}

#[test]
fn a_prompt_lost_with_the_connection_is_resent_with_the_same_key() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("survive");
    d.code(KeyCode::Enter);
    let (r, p) = sent_prompt(&mut d);
    d.net(NetEvent::Disconnected {
        reason: "lost".into(),
        retry_in: Duration::from_secs(1),
    });
    d.net(NetEvent::Reply {
        request: r,
        result: Err(CallError::transport("the relay connection was lost")),
    });
    assert!(!d.asked(Op::Prompt), "nothing goes out while disconnected");
    d.net(NetEvent::Connected {
        conn_id: ConnId::from("k2"),
    });
    let (_, again) = sent_prompt(&mut d);
    assert_eq!(
        again, p,
        "same text, same key: the agent answers a retry from its record"
    );
}

#[test]
fn a_refused_prompt_comes_back_into_the_box() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("not allowed");
    d.code(KeyCode::Enter);
    let (r, _) = sent_prompt(&mut d);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(CallError::refused(
            ErrorCode::Forbidden,
            "viewers cannot prompt",
        )),
    });
    assert!(d.session().outbox.is_none());
    assert_eq!(d.session().editor.text(), "not allowed");
    let notice = d.app.notice().map(|n| (n.text.clone(), n.error));
    assert_eq!(
        notice,
        Some(("prompt not sent: viewers cannot prompt".into(), true))
    );
}

#[test]
fn a_prompt_written_offline_goes_out_on_reconnect() {
    let mut d = Drive::at_session();
    d.net(NetEvent::Disconnected {
        reason: "lost".into(),
        retry_in: Duration::from_secs(1),
    });
    d.key('i');
    d.typed("later");
    d.code(KeyCode::Enter);
    assert!(!d.asked(Op::Prompt));
    d.net(NetEvent::Connected {
        conn_id: ConnId::from("k2"),
    });
    let (_, p) = sent_prompt(&mut d);
    assert_eq!(p.text, "later");
}

#[test]
fn a_abort_asks_the_agent() {
    let mut d = Drive::at_session();
    d.key('a');
    let r = d.take(Op::Abort);
    assert_eq!(
        r.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_new")
    );
}

#[test]
fn a_prompt_for_an_offline_host_is_shown_as_queued() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("later");
    d.code(KeyCode::Enter);
    let (r, _) = sent_prompt(&mut d);
    let expires_ms = d.app.now_ms + 3_600_000;
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Queued(proto::queue::Queued {
            id: "q_1".into(),
            expires_ms,
        })),
    });
    assert!(d.session().outbox.is_none(), "nothing left to resend");
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(
        notice.starts_with("queued (host offline), expires in 60 min"),
        "{notice}"
    );
}

#[test]
fn a_permission_arriving_after_a_prompt_takes_the_keys_from_the_empty_prompt_box() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("make the tests pass");
    d.code(KeyCode::Enter);
    d.answer(Op::Prompt, accepted());
    assert_eq!(d.app.context(), Context::Prompt);
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_new", "cargo test"),
        },
    );
    assert_eq!(
        d.app.context(),
        Context::Session,
        "the permission box has the keys now"
    );
    d.key('y');
    assert!(d.session().editor.is_empty(), "y did not type into the box");
    let r = d.take(Op::PermissionReply);
    assert!(matches!(&r.call, Call::PermissionReply(p) if p.request_id == "per_1"));
}

#[test]
fn a_permission_arriving_while_a_draft_is_being_written_leaves_the_draft_alone() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("half a thought");
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_new", "cargo test"),
        },
    );
    d.typed(" y");
    assert_eq!(d.app.context(), Context::Prompt);
    assert_eq!(d.session().editor.text(), "half a thought y");
    assert!(!d.asked(Op::PermissionReply));
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(notice.contains("Esc"), "told how to answer: {notice}");
}

#[test]
fn news_from_another_session_does_not_take_the_keys_from_the_prompt_box() {
    let mut d = Drive::at_session();
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_new", "cargo test"),
        },
    );
    // The operator chose to write anyway; a request elsewhere must not take the keys back.
    d.key('i');
    d.event(
        3,
        WsEvent::PermissionAsked {
            request: permission("per_9", "ses_old", "ls"),
        },
    );
    assert_eq!(d.app.context(), Context::Prompt);
    d.typed("y");
    assert_eq!(d.session().editor.text(), "y");
}
