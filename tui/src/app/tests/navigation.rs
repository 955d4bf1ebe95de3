//! Moving through the screens: Hosts → Workspaces → Sessions → Session → Diff and back with
//! Esc, the requests each level asks for, OpenCode start/stop, new sessions, list filters.

use super::*;
use crate::call::{Call, CallError};
use crate::keymap::Context;
use proto::ops::{CreateSession, DiffQuery, FileDiff};

#[test]
fn enter_walks_down_the_stack_and_esc_walks_back() {
    let mut d = Drive::new();
    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Workspaces);
    let r = d.take(Op::WorkspaceList);
    assert_eq!(r.scope, Scope::host(&HostId::from("box")));
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Workspaces(vec![
            workspace("demo", OpencodeState::Ready),
            workspace("docs", OpencodeState::Stopped),
        ])),
    });
    // Opening a host watches its workspaces, and reads what waits in the running ones.
    let watched: Vec<&WatchKey> =
        d.fx.iter()
            .filter_map(|e| match e {
                Effect::Watch { watch, after_seq } => {
                    assert_eq!(*after_seq, None);
                    Some(watch)
                }
                _ => None,
            })
            .collect();
    assert_eq!(watched.len(), 2, "{:?}", d.fx);
    assert!(d.asked(Op::PermissionList));
    d.pending.clear();

    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Sessions);
    let r = d.take(Op::SessionList);
    assert_eq!(r.scope, Scope::workspace(&HostId::from("box"), "demo"));
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Sessions(vec![
            session_info("ses_old", "Old chat", T0 - 3_600_000, SessionStatus::Idle),
            session_info("ses_new", "Fix the tests", T0 - 60_000, SessionStatus::Busy),
        ])),
    });
    let sessions = d.app.sessions().expect("sessions view");
    assert_eq!(
        sessions.selected().map(|s| s.id.as_str()),
        Some("ses_new"),
        "newest first"
    );

    d.code(KeyCode::Enter);
    assert_eq!(d.app.screen(), Screen::Session);
    assert_eq!(d.session().id, "ses_new");
    assert_eq!(d.session().status, SessionStatus::Busy);
    let r = d.take(Op::Messages);
    assert_eq!(
        r.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_new")
    );

    d.key('d');
    assert_eq!(d.app.screen(), Screen::Diff);
    let r = d.take(Op::Diff);
    assert_eq!(r.call, Call::Diff(DiffQuery::Session { message_id: None }));
    d.key('w');
    let r = d.take(Op::Diff);
    assert_eq!(
        r.call,
        Call::Diff(DiffQuery::Worktree),
        "w switches to the working tree"
    );

    for want in [
        Screen::Session,
        Screen::Sessions,
        Screen::Workspaces,
        Screen::Hosts,
    ] {
        d.code(KeyCode::Esc);
        assert_eq!(d.app.screen(), want);
    }
    assert_eq!(d.app.update(special(KeyCode::Esc)), vec![Effect::Quit]);
}

#[test]
fn start_and_stop_opencode_in_the_selected_workspace() {
    let mut d = Drive::at_workspaces();
    d.key('j');
    d.key('s');
    let r = d.take(Op::OpencodeStart);
    assert_eq!(r.scope, Scope::workspace(&HostId::from("box"), "docs"));
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Opencode(opencode(
            "docs",
            OpencodeState::Starting,
        ))),
    });
    let ws = d.app.workspaces().expect("view");
    assert_eq!(
        ws.selected().map(|w| w.opencode.state),
        Some(OpencodeState::Starting)
    );
    // Live state changes arrive as events on the workspace's watch.
    d.net(NetEvent::WatchFrame {
        watch: WatchKey::new(&HostId::from("box"), "docs"),
        frame: EventFrame {
            seq: 1,
            event: WsEvent::Opencode {
                info: opencode("docs", OpencodeState::Ready),
            },
        },
    });
    let ws = d.app.workspaces().expect("view");
    assert_eq!(
        ws.selected().map(|w| w.opencode.state),
        Some(OpencodeState::Ready)
    );
    d.key('S');
    assert_eq!(
        d.take(Op::OpencodeStop).scope,
        Scope::workspace(&HostId::from("box"), "docs")
    );
}

#[test]
fn n_opens_a_new_session_that_is_created_only_when_the_first_prompt_is_sent() {
    let mut d = Drive::at_sessions();
    d.key('n');
    assert_eq!(d.app.screen(), Screen::Session);
    assert_eq!(d.app.context(), Context::Prompt);
    assert!(!d.asked(Op::SessionCreate), "no empty session on `n`");
    assert!(!d.asked(Op::Messages), "no history to read yet");
    // Leaving without writing creates nothing.
    d.code(KeyCode::Esc).code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Sessions);
    assert!(!d.asked(Op::SessionCreate), "no empty session on leaving");

    d.key('n');
    d.typed("hello");
    d.code(KeyCode::Enter);
    let r = d.take(Op::SessionCreate);
    assert_eq!(r.call, Call::SessionCreate(CreateSession { title: None }));
    assert!(!d.asked(Op::Prompt), "the prompt waits for its session");
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Created(session_info(
            "ses_3",
            "",
            T0,
            SessionStatus::Idle,
        ))),
    });
    assert_eq!(d.session().id, "ses_3");
    let p = d.take(Op::Prompt);
    assert_eq!(
        p.scope,
        Scope::session(&HostId::from("box"), "demo", "ses_3")
    );
    match p.call {
        Call::Prompt(prompt) => assert_eq!(prompt.text, "hello"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.app.sessions().and_then(|s| s.list()).map(<[_]>::len),
        Some(3)
    );
}

#[test]
fn slash_filters_the_list_and_esc_clears_it() {
    let mut d = Drive::at_sessions();
    d.key('/');
    assert_eq!(d.app.context(), Context::Filter);
    d.typed("old");
    let visible: Vec<String> = d
        .app
        .sessions()
        .expect("view")
        .visible()
        .iter()
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(visible, ["ses_old"]);
    // While typing, q is a letter, not quit.
    assert!(d.app.update(key('q')).is_empty());
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Sessions, "Enter keeps the filter");
    d.code(KeyCode::Enter);
    assert_eq!(d.session().id, "ses_old", "Enter opens the filtered row");
    d.code(KeyCode::Esc);
    d.key('/');
    d.code(KeyCode::Esc);
    assert_eq!(d.app.sessions().expect("view").visible().len(), 2);
}

#[test]
fn diff_scrolls_by_line_and_jumps_files_and_hunks() {
    let mut d = Drive::at_session();
    d.send(Event::Resize {
        width: 80,
        height: 12,
    });
    d.key('d');
    let patch: String = std::iter::once("--- a/a.rs\n+++ b/a.rs\n@@ -1 +1 @@\n".to_owned())
        .chain((0..20).map(|i| format!("+line {i}\n")))
        .chain(std::iter::once("@@ -40 +40 @@\n-x\n".to_owned()))
        .collect();
    let files = vec![
        FileDiff {
            file: "a.rs".into(),
            patch,
            additions: 20,
            deletions: 1,
            status: "modified".into(),
        },
        FileDiff {
            file: "b.rs".into(),
            patch: "+new\n".into(),
            additions: 1,
            deletions: 0,
            status: "added".into(),
        },
    ];
    d.answer(Op::Diff, Response::Diff(files));
    let top = |d: &Drive| d.app.diff().map(|v| v.top);
    d.key('j');
    assert_eq!(top(&d), Some(1));
    d.key(']');
    assert_eq!(top(&d), Some(2), "the first hunk");
    d.key(']');
    assert_eq!(
        top(&d),
        Some(25 - 8),
        "the last hunk, clamped to the last page"
    );
    d.key('k');
    d.key('[');
    assert_eq!(top(&d), Some(2));
    d.key('G');
    assert_eq!(top(&d), Some(25 - 8));
    d.key('l');
    assert_eq!(d.app.diff().map(|v| (v.file, v.top)), Some((1, 0)));
    d.key('l');
    assert_eq!(
        d.app.diff().map(|v| v.file),
        Some(1),
        "stays on the last file"
    );
}

#[test]
fn tab_and_bang_toggle_attention_from_anywhere() {
    let mut d = Drive::at_session();
    d.code(KeyCode::Tab);
    assert_eq!(d.app.context(), Context::Attention);
    d.code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Session);
    d.key('i');
    d.code(KeyCode::Tab);
    assert_eq!(
        d.app.context(),
        Context::Attention,
        "Tab works in the prompt too"
    );
    d.key('!');
    assert_eq!(d.app.context(), Context::Prompt, "back where it was");
}

#[test]
fn help_describes_the_screen_underneath() {
    let mut d = Drive::at_session();
    d.key('?');
    assert_eq!(d.app.context(), Context::Help);
    assert_eq!(d.app.screen_context(), Context::Session);
    d.key('j');
    assert_eq!(
        d.app.context(),
        Context::Help,
        "keys do not leak through help"
    );
    d.key('?');
    assert_eq!(d.app.context(), Context::Session);
}

#[test]
fn esc_drops_a_set_filter_before_going_back() {
    let mut d = Drive::at_sessions();
    d.key('/');
    d.typed("fix");
    d.code(KeyCode::Enter);
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Sessions);
    assert_eq!(d.app.sessions().expect("view").nav.filter(), "");
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Workspaces);
}

#[test]
fn a_paste_lands_in_the_prompt_whole() {
    let mut d = Drive::at_session();
    d.send(Event::Paste("not sent\nyet".into()));
    assert!(
        d.session().editor.is_empty(),
        "outside the box a paste does nothing"
    );
    d.key('i');
    d.send(Event::Paste("line one\nline two".into()));
    assert!(!d.asked(Op::Prompt), "a pasted line break is not Enter");
    assert_eq!(d.session().editor.text(), "line one\nline two");
}

#[test]
fn a_line_ending_in_a_backslash_continues_on_enter_for_keyboards_without_alt_enter() {
    let mut d = Drive::at_session();
    d.key('i');
    d.typed("line one\\");
    d.code(KeyCode::Enter);
    assert!(!d.asked(Op::Prompt), "not sent yet");
    d.typed("line two");
    assert_eq!(d.session().editor.text(), "line one\nline two");
    d.code(KeyCode::Enter);
    assert!(d.asked(Op::Prompt), "Enter after a line without one sends");
}

#[test]
fn a_failed_create_gives_the_prompt_back_to_try_again() {
    let mut d = Drive::at_sessions();
    d.key('n');
    d.typed("hello");
    d.code(KeyCode::Enter);
    let r = d.take(Op::SessionCreate);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(crate::call::CallError::refused(
            proto::wire_error::ErrorCode::Forbidden,
            "needs role operator",
        )),
    });
    assert_eq!(d.app.screen(), Screen::Session);
    assert!(d.app.notice().is_some_and(|n| n.error));
    assert_eq!(d.session().editor.text(), "hello");
    d.code(KeyCode::Enter);
    assert!(d.asked(Op::SessionCreate));
}

#[test]
fn the_open_diff_reads_again_when_the_turn_summary_arrives() {
    let mut d = Drive::at_session();
    d.key('d');
    // Read right after the turn: OpenCode has not computed the turn's diff yet.
    d.answer(Op::Diff, Response::Diff(Vec::new()));
    assert_eq!(
        d.app.diff().and_then(|v| v.files.as_ref()).map(Vec::len),
        Some(0)
    );
    let user_message = |session: &str, role: &str| WsEvent::MessageUpdated {
        session: session.into(),
        message_id: "msg_9".into(),
        role: role.into(),
        finish: None,
    };
    // Other sessions and assistant messages do not move the session's diff.
    d.event(2, user_message("ses_old", "user"));
    d.event(3, user_message("ses_new", "assistant"));
    assert!(!d.asked(Op::Diff), "{:?}", d.pending);
    // The summary lands on the user message: read again, and show the answer.
    d.event(4, user_message("ses_new", "user"));
    let file = FileDiff {
        file: "notes/hello.txt".into(),
        patch: "@@ -0,0 +1 @@\n+hello\n".into(),
        additions: 1,
        deletions: 0,
        status: "added".into(),
    };
    d.answer(Op::Diff, Response::Diff(vec![file.clone()]));
    assert_eq!(d.app.diff().and_then(|v| v.selected()), Some(&file));
    // The end of a turn and `r` read again too.
    d.event(
        5,
        WsEvent::SessionIdle {
            session: "ses_new".into(),
        },
    );
    assert_eq!(
        d.take(Op::Diff).call,
        Call::Diff(DiffQuery::Session { message_id: None })
    );
    d.key('r');
    let first = d.take(Op::Diff);
    // An answer to an older request is ignored once a newer one is out.
    d.key('r');
    d.net(NetEvent::Reply {
        request: first,
        result: Ok(Response::Diff(Vec::new())),
    });
    assert_eq!(d.app.diff().and_then(|v| v.selected()), Some(&file));
    // The working tree reads again when a file is edited.
    d.pending.clear();
    d.key('w');
    assert_eq!(d.take(Op::Diff).call, Call::Diff(DiffQuery::Worktree));
    d.event(
        6,
        WsEvent::FileEdited {
            file: "notes/hello.txt".into(),
        },
    );
    assert_eq!(d.take(Op::Diff).call, Call::Diff(DiffQuery::Worktree));
    // Back on the session screen nothing is read.
    d.code(KeyCode::Esc);
    d.event(
        7,
        WsEvent::SessionIdle {
            session: "ses_new".into(),
        },
    );
    assert!(!d.asked(Op::Diff));
}

#[test]
fn a_session_id_that_is_not_an_id_is_not_listed_and_says_why() {
    let mut d = Drive::at_workspaces();
    d.code(KeyCode::Enter);
    d.answer(
        Op::SessionList,
        Response::Sessions(vec![
            session_info("ses_\u{1b}]0;pwned\u{7}", "Evil", T0, SessionStatus::Idle),
            session_info("ses_ok", "Fine", T0 - 1, SessionStatus::Idle),
        ]),
    );
    let listed: Vec<String> = d
        .app
        .sessions()
        .map(|s| s.visible().iter().map(|s| s.id.to_string()).collect())
        .unwrap_or_default();
    assert_eq!(listed, ["ses_ok"]);
    let notice = d.app.notice().expect("a notice says why");
    assert!(notice.error, "{notice:?}");
    assert!(
        notice.text.contains("1 session not shown")
            && notice
                .text
                .contains("invalid session id: it holds a control character"),
        "{notice:?}"
    );
    assert!(!notice.text.contains("pwned"), "the bad id is never shown");
}

#[test]
fn a_workspace_name_that_is_not_a_name_is_neither_listed_nor_watched() {
    let mut d = Drive::new();
    d.code(KeyCode::Enter);
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![
            workspace("../etc", OpencodeState::Ready),
            workspace("demo", OpencodeState::Ready),
        ]),
    );
    let listed: Vec<String> = d
        .app
        .workspaces()
        .map(|w| w.visible().iter().map(|w| w.name.clone()).collect())
        .unwrap_or_default();
    assert_eq!(listed, ["demo"]);
    let watched: Vec<&str> =
        d.fx.iter()
            .filter_map(|e| match e {
                Effect::Watch { watch, .. } => Some(watch.workspace.as_str()),
                _ => None,
            })
            .collect();
    assert_eq!(watched, ["demo"], "no watch is opened for the bad name");
    let notice = d.app.notice().expect("a notice says why");
    assert!(
        notice.error
            && notice.text.contains("1 workspace not shown")
            && notice
                .text
                .contains("invalid workspace name: it starts with"),
        "{notice:?}"
    );
}

#[test]
fn remote_text_stored_by_the_app_is_already_sanitized() {
    let mut d = Drive::at_workspaces();
    d.code(KeyCode::Enter);
    let r = d.take(Op::SessionList);
    d.net(NetEvent::Reply {
        request: r,
        result: Err(CallError::refused(
            proto::wire_error::ErrorCode::Internal,
            "boom\u{1b}[2J\u{202e}\r\nagain",
        )),
    });
    let error = d.app.sessions().and_then(|s| s.error.clone());
    assert_eq!(error.as_deref(), Some("boomagain"));
}
