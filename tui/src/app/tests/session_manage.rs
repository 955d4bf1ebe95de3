//! Renaming (`R`, then `rename TITLE` in the palette) and deleting (`D` twice) sessions.

use super::*;
use crate::call::Call;
use proto::ops::RenameSession;

fn notice(d: &Drive) -> String {
    d.app
        .notice()
        .map(|n| n.text.to_string())
        .unwrap_or_default()
}

#[test]
fn r_renames_the_selected_session_through_the_palette() {
    let mut d = Drive::at_sessions();
    // The newest first: "Fix the tests".
    d.key('R');
    assert_eq!(
        d.app.palette().map(|p| p.input.clone()).as_deref(),
        Some("rename Fix the tests")
    );
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.typed("suite").code(KeyCode::Enter);
    let r = d.take(Op::SessionRename);
    assert_eq!(
        r.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_new")
    );
    assert_eq!(
        r.call,
        Call::SessionRename(RenameSession {
            title: "Fix the suite".into()
        })
    );
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Renamed(session_info(
            "ses_new",
            "Fix the suite",
            T0,
            SessionStatus::Idle,
        ))),
    });
    let titles: Vec<String> = d
        .app
        .sessions()
        .and_then(|s| s.list())
        .map(|l| l.iter().map(|s| s.title.to_string()).collect())
        .unwrap_or_default();
    assert!(titles.contains(&"Fix the suite".to_owned()), "{titles:?}");
    assert!(notice(&d).contains("renamed"), "{}", notice(&d));
}

#[test]
fn d_deletes_the_selected_session_only_when_pressed_twice() {
    let mut d = Drive::at_sessions();
    d.key('D');
    assert!(!d.asked(Op::SessionDelete), "one press only asks");
    assert!(notice(&d).contains("press D again"), "{}", notice(&d));
    // Moving to another session disarms: D there asks again.
    d.key('j').key('D');
    assert!(!d.asked(Op::SessionDelete));
    d.key('D');
    let r = d.take(Op::SessionDelete);
    assert_eq!(
        r.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_old")
    );
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Deleted),
    });
    let ids: Vec<String> = d
        .app
        .sessions()
        .and_then(|s| s.list())
        .map(|l| l.iter().map(|s| s.id.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec!["ses_new".to_owned()]);
}

#[test]
fn a_refused_delete_says_why() {
    let mut d = Drive::at_sessions();
    d.key('D').key('D');
    let r = d.take(Op::SessionDelete);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(crate::call::CallError::refused(
            proto::wire_error::ErrorCode::Forbidden,
            "needs role admin on a session someone else owns",
        )),
    });
    assert!(d.app.notice().is_some_and(|n| n.error));
    assert!(notice(&d).contains("delete failed"), "{}", notice(&d));
    assert_eq!(
        d.app.sessions().and_then(|s| s.list()).map(<[_]>::len),
        Some(2)
    );
}
