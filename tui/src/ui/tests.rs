//! Whole-screen tests: the hosts screen drawn on a `TestBackend` and compared with committed
//! insta snapshots (text), plus style checks where colour carries meaning. Time, RTT and the
//! account are fixed by the events fed in, so the snapshots hold no volatile text.
//!
//! Longer than ~600 lines on purpose: it is one table of whole-screen cases, and insta names
//! each committed snapshot after this module's path, so splitting it would rename them all.

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

/// The app on a phone's terminal: 50×30, then 40×20 (the narrow layout).
fn narrow(app: &App) -> String {
    format!("{}{}", screen(app, 50, 30), screen(app, 40, 20))
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
        roles: Default::default(),
        global_role: None,
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
    insta::assert_snapshot!("hosts_screen_connected_at_two_widths_narrow", narrow(&app));
}

#[test]
fn hosts_are_marked_verified_or_relay_trusted_and_the_status_bar_says_which() {
    use crate::e2e_channels::HostMode;
    let mut app = fleet_app();
    let before = screen(&app, 100, 24);
    assert!(!before.contains("verified") && !before.contains("relay-trusted"));
    let mode = |host: &str, mode| NetEvent::HostMode {
        host: HostId::from(host),
        mode,
    };
    net(&mut app, mode("gpu-box", HostMode::Verified));
    net(&mut app, mode("build-01", HostMode::RelayTrusted));
    let text = screen(&app, 100, 24);
    assert!(text.contains("gpu-box ✓"), "{text}");
    assert!(text.contains("build-01 !"), "{text}");
    assert!(
        text.contains("✓ verified"),
        "the selected host's, in words:\n{text}"
    );
    app.update(Event::Key(KeyPress::char('k')));
    let text = screen(&app, 100, 24);
    assert!(text.contains("! relay-trusted"), "{text}");
}

#[test]
fn hosts_screen_empty_list_shows_the_enroll_hint() {
    let mut app = connected();
    net(&mut app, NetEvent::Hosts(list(&[])));
    let text = screen(&app, 80, 24);
    assert!(text.contains("cm-relay host add NAME"), "{text}");
    insta::assert_snapshot!(text);
    insta::assert_snapshot!(
        "hosts_screen_empty_list_shows_the_enroll_hint_narrow",
        narrow(&app)
    );
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
    insta::assert_snapshot!(
        "hosts_screen_reconnecting_shows_countdown_and_reason_narrow",
        narrow(&app)
    );
}

#[test]
fn hosts_screen_offline_after_refusal_says_what_to_run() {
    let mut app = fleet_app();
    net(
        &mut app,
        NetEvent::Fatal {
            message: crate::net::REFUSED.into(),
            revoked: false,
        },
    );
    let text = screen(&app, 80, 24);
    assert!(text.contains("run `cm-tui login` again"), "{text}");
    insta::assert_snapshot!(text);
    insta::assert_snapshot!(
        "hosts_screen_offline_after_refusal_says_what_to_run_narrow",
        narrow(&app)
    );
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
    insta::assert_snapshot!("help_overlay_lists_the_keymap_narrow", narrow(&app));
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
            revoked: false,
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

// ---- The operator's screens, each at 80×24 and 140×40 ----

use crate::app::tests::{Drive, demo, permission, session_info, text_message};
use crate::call::Response;
use crate::event::KeyCode;
use proto::event::Event as WsEvent;
use proto::header::Op;
use proto::ops::{FileDiff, Message, OpencodeState, Part, SessionStatus};

/// The app at both sizes, one after the other.
fn both(app: &App) -> String {
    format!("{}{}", screen(app, 80, 24), screen(app, 140, 40))
}

/// A driver whose status bar shows a fixed RTT.
fn steady(mut d: Drive) -> Drive {
    d.net(NetEvent::Pong {
        rtt: Duration::from_millis(12),
    });
    d
}

#[test]
fn workspaces_screen_shows_root_and_opencode_state() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Enter);
    let mut failed = crate::app::tests::workspace("api", OpencodeState::Failed);
    failed.opencode.last_error = Some("opencode exited with status 1".into());
    failed.opencode.restarts = 5;
    let mut missing = crate::app::tests::workspace("old-project", OpencodeState::Stopped);
    missing.available = false;
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![
            crate::app::tests::workspace("demo", OpencodeState::Ready),
            crate::app::tests::workspace("docs", OpencodeState::Starting),
            failed,
            missing,
        ]),
    );
    d.key('j');
    // The selected workspace's folders and git status (asked for demo, then docs).
    for _ in 0..2 {
        d.answer(Op::FsList, Response::Folder(folders()));
        d.answer(Op::GitStatus, Response::Git(git_status()));
    }
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("● ready") && text.contains("✗ failed"),
        "{text}"
    );
    assert!(text.contains("⎇ main ↑2 ↓0"), "{text}");
    assert!(text.contains("src/  tests/"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "workspaces_screen_shows_root_and_opencode_state_narrow",
        narrow(&d.app)
    );
}

#[test]
fn counts_of_one_are_singular() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Enter);
    let mut demo = crate::app::tests::workspace("demo", OpencodeState::Starting);
    demo.opencode.restarts = 1;
    d.answer(Op::WorkspaceList, Response::Workspaces(vec![demo]));
    let text = screen(&d.app, 80, 24);
    assert!(text.contains(" 1 workspace ┐"), "{text}");
    assert!(
        text.contains("1 restart ") && !text.contains("1 restarts"),
        "{text}"
    );
    d.code(KeyCode::Enter);
    d.answer(
        Op::SessionList,
        Response::Sessions(vec![crate::app::tests::session_info(
            "ses_1",
            "Only one",
            T0 - 60_000,
            SessionStatus::Idle,
        )]),
    );
    let text = screen(&d.app, 80, 24);
    assert!(text.contains(" 1 session ┐"), "{text}");
    d.code(KeyCode::Enter);
    let mut message = crate::app::tests::text_message("msg_1", "assistant", "prt_1", "Done.");
    message.parts.insert(
        0,
        Part::Reasoning {
            id: "prt_0".into(),
            text: "Hmm.".into(),
        },
    );
    d.answer(Op::Messages, Response::Messages(vec![message]));
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("thinking · 1 word ") && !text.contains("1 words"),
        "{text}"
    );
}

fn folders() -> proto::fs::FsListing {
    use proto::fs::{FsEntry, FsKind};
    let entry = |name: &str, kind| FsEntry {
        name: name.into(),
        kind,
        size: None,
    };
    proto::fs::FsListing {
        path: String::new(),
        entries: vec![
            entry(".git", FsKind::Dir),
            entry("docs", FsKind::Dir),
            entry("src", FsKind::Dir),
            entry("tests", FsKind::Dir),
            entry("Cargo.toml", FsKind::File),
            entry("README.md", FsKind::File),
        ],
        truncated: false,
    }
}

fn git_status() -> proto::git::GitStatus {
    let entry = |path: &str, index: &str, worktree: &str| proto::git::GitStatusEntry {
        path: path.into(),
        index: index.into(),
        worktree: worktree.into(),
        from: None,
    };
    proto::git::GitStatus {
        branch: Some("main".into()),
        head: Some("0123456789abcdef".into()),
        upstream: Some("origin/main".into()),
        ahead: 2,
        behind: 0,
        entries: vec![
            entry("src/lib.rs", "M", "."),
            entry("src/main.rs", ".", "M"),
            entry("notes.txt", "?", "?"),
        ],
        truncated: false,
    }
}

#[test]
fn workspace_details_say_when_there_is_no_repository() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Enter);
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![crate::app::tests::workspace(
            "demo",
            OpencodeState::Ready,
        )]),
    );
    let text = screen(&d.app, 140, 40);
    assert!(text.contains("git: reading…"), "{text}");
    let request = d.take(Op::GitStatus);
    d.net(NetEvent::Reply {
        request,
        result: Err(crate::call::CallError::refused(
            proto::wire_error::ErrorCode::NotFound,
            "\"\" is not inside a git repository in this workspace",
        )),
    });
    d.answer(Op::FsList, Response::Folder(folders()));
    let text = screen(&d.app, 140, 40);
    assert!(text.contains("git: not a repository"), "{text}");
    assert!(text.contains("3 folders · 2 files at the root"), "{text}");
}

#[test]
fn sessions_screen_lists_status_waiting_and_activity() {
    let mut d = steady(Drive::at_workspaces());
    d.code(KeyCode::Enter);
    d.answer(
        Op::SessionList,
        Response::Sessions(vec![
            session_info(
                "ses_a1",
                "Fix the flaky integration test",
                T0 - 30_000,
                SessionStatus::Busy,
            ),
            session_info(
                "ses_b2",
                "Refactor the config loader",
                T0 - 2 * 3_600_000,
                SessionStatus::Idle,
            ),
            session_info(
                "ses_c3",
                "",
                T0 - 3 * 86_400_000,
                SessionStatus::Retry {
                    attempt: 2,
                    message: "rate limited".into(),
                },
            ),
        ]),
    );
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_a1", "cargo test"),
        },
    );
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("⚠ 1") && text.contains("retry #2"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "sessions_screen_lists_status_waiting_and_activity_narrow",
        narrow(&d.app)
    );
}

/// A session mid-turn: markdown answer, reasoning, a finished tool call (expanded), a running
/// one, changed files, a waiting permission request, and a prompt being written.
fn busy_session() -> Drive {
    let mut d = steady(Drive::at_sessions());
    d.code(KeyCode::Enter);
    let answer = "## Plan\n\nThe test fails because **one** assertion compares `Instant`s.\n\n\
                  - make the clock *injectable*\n- assert on durations\n\n```rust\nlet now = clock.now();\n```";
    let assistant = Message {
        id: "msg_2".into(),
        role: "assistant".into(),
        created_ms: T0,
        finish: Some("tool-calls".into()),
        error: None,
        parts: vec![
            Part::Reasoning {
                id: "prt_r".into(),
                text: "The flaky part is timing.".into(),
            },
            Part::Text {
                id: "prt_t".into(),
                text: answer.into(),
            },
            Part::Tool {
                id: "prt_read".into(),
                tool: "bash".into(),
                status: "completed".into(),
                title: None,
                input: serde_json::json!({ "command": "cargo test -p core" }),
                output: Some("running 12 tests\ntest result: FAILED. 11 passed; 1 failed".into()),
                error: None,
            },
            Part::Patch {
                id: "prt_p".into(),
                files: vec!["src/clock.rs".into(), "tests/timing.rs".into()],
            },
            Part::Tool {
                id: "prt_edit".into(),
                tool: "edit".into(),
                status: "running".into(),
                title: Some("src/clock.rs".into()),
                input: serde_json::Value::Null,
                output: None,
                error: None,
            },
        ],
    };
    d.answer(
        Op::Messages,
        Response::Messages(vec![
            text_message("msg_1", "user", "prt_1", "Why is the timing test flaky?"),
            assistant,
        ]),
    );
    d.event(
        2,
        WsEvent::SessionStatus {
            session: "ses_new".into(),
            status: SessionStatus::Busy,
        },
    );
    d.event(
        3,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_new", "cargo test -p core -- timing"),
        },
    );
    // Expand the finished tool call.
    d.key('[');
    d.key('[');
    d.code(KeyCode::Enter);
    d.key('i');
    d.typed("Also run clippy");
    d
}

#[test]
fn session_screen_renders_markdown_tools_permission_and_prompt() {
    let d = busy_session();
    let text = screen(&d.app, 140, 40);
    for needle in [
        "Plan",
        "• make the clock injectable",
        "╭─ rust",
        "│ let now = clock.now();",
        "▸ thinking · 5 words",
        "▾ ✓ bash completed · $ cargo test -p core",
        "│ test result: FAILED. 11 passed; 1 failed",
        "✎ changed src/clock.rs, tests/timing.rs",
        "◐ edit running · src/clock.rs",
        "⚠ permission: bash",
        "$ cargo test -p core -- timing",
        "Also run clippy",
        "● busy",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "session_screen_renders_markdown_tools_permission_and_prompt_narrow",
        narrow(&d.app)
    );
}

#[test]
fn session_transcript_colours_carry_meaning() {
    let d = busy_session();
    let terminal = draw(&d.app, Theme::new(true), 140, 40);
    let buffer = terminal.backend().buffer();
    assert_eq!(buffer[find(&terminal, "✓")].fg, Color::Green);
    assert_eq!(buffer[find(&terminal, "◐")].fg, Color::Yellow);
    assert_eq!(buffer[find(&terminal, "⚠")].fg, Color::Yellow);
    let (x, y) = find(&terminal, "╭");
    assert_eq!(buffer[(x + 3, y)].fg, Color::Magenta, "the language label");
    // The prompt has the cursor, after the typed text.
    let cursor = terminal.backend().cursor_position();
    assert_eq!(buffer[(cursor.x - 1, cursor.y)].symbol(), "y");
}

#[test]
fn session_screen_empty_and_loading_states() {
    let mut d = steady(Drive::at_sessions());
    d.code(KeyCode::Enter);
    assert!(screen(&d.app, 80, 24).contains("reading the history…"));
    d.answer(Op::Messages, Response::Messages(vec![]));
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("no messages yet") && text.contains("press i to write"),
        "{text}"
    );
    insta::assert_snapshot!("session_screen_empty_narrow", narrow(&d.app));
}

#[test]
fn diff_screen_shows_files_and_a_coloured_patch() {
    let mut d = steady(Drive::at_session());
    d.key('d');
    d.answer(
        Op::Diff,
        Response::Diff(vec![
            FileDiff {
                file: "src/clock.rs".into(),
                patch: "--- a/src/clock.rs\n+++ b/src/clock.rs\n@@ -1,4 +1,5 @@\n pub struct Clock;\n-pub fn now() -> Instant {\n-    Instant::now()\n+pub fn now(clock: &dyn Source) -> Instant {\n+    clock.now()\n }\n".into(),
                additions: 2,
                deletions: 2,
                status: "modified".into(),
            },
            FileDiff {
                file: "tests/timing.rs".into(),
                patch: "@@ -0,0 +1 @@\n+#[test] fn timing() {}\n".into(),
                additions: 1,
                deletions: 0,
                status: "added".into(),
            },
        ]),
    );
    let terminal = draw(&d.app, Theme::new(true), 80, 24);
    let buffer = terminal.backend().buffer();
    let (x, y) = find(&terminal, "+");
    assert!(
        [Color::Green, Color::Reset].contains(&buffer[(x, y)].fg)
            || buffer[(x, y)].fg == Color::Green,
        "added lines are green"
    );
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "diff_screen_shows_files_and_a_coloured_patch_narrow",
        narrow(&d.app)
    );
}

#[test]
fn attention_panel_lists_requests_failures_and_finished_sessions() {
    let mut d = steady(Drive::at_sessions());
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: permission("per_1", "ses_new", "rm -rf target"),
        },
    );
    d.event(
        3,
        WsEvent::Opencode {
            info: proto::ops::OpencodeInfo {
                last_error: Some("opencode exited with status 1".into()),
                ..crate::app::tests::opencode("demo", OpencodeState::Failed)
            },
        },
    );
    d.event(
        4,
        WsEvent::SessionStatus {
            session: "ses_old".into(),
            status: SessionStatus::Busy,
        },
    );
    d.event(
        5,
        WsEvent::SessionIdle {
            session: "ses_old".into(),
        },
    );
    d.send(Event::Tick {
        now_ms: T0 + 120_000,
    });
    d.code(KeyCode::Tab);
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("3 waiting") && text.contains("permission bash"),
        "{text}"
    );
    assert!(
        text.contains("⚑ 3 waiting"),
        "the status bar counts them: {text}"
    );
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "attention_panel_lists_requests_failures_and_finished_sessions_narrow",
        narrow(&d.app)
    );
}

#[test]
fn attention_panel_when_nothing_waits() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Tab);
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("nothing waits for you"), "{text}");
    assert!(
        text.contains("show up here"),
        "the wrapped hint is whole: {text}"
    );
    insta::assert_snapshot!("attention_panel_when_nothing_waits_narrow", narrow(&d.app));
}

#[test]
fn help_overlay_follows_the_screen() {
    let mut d = steady(Drive::at_session());
    d.key('?');
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("keys · session") && text.contains("allow always"),
        "{text}"
    );
    assert!(
        !text.contains("reconnect"),
        "hosts keys are not listed: {text}"
    );
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!("help_overlay_follows_the_screen_narrow", narrow(&d.app));
}

#[test]
fn screens_survive_tiny_terminals() {
    let d = busy_session();
    for (w, h) in [(1, 1), (10, 3), (20, 6), (40, 10), (80, 8)] {
        let _ = draw(&d.app, Theme::new(true), w, h);
    }
    let mut d = d;
    d.code(KeyCode::Esc);
    d.key('d');
    for (w, h) in [(1, 1), (12, 4), (30, 8)] {
        let _ = draw(&d.app, Theme::new(false), w, h);
    }
    let _ = demo();
}

#[test]
fn command_palette_matches_and_highlights() {
    let mut d = steady(Drive::at_session());
    d.key(':');
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("command") && text.contains("abort"), "{text}");
    d.typed("dif");
    let text = screen(&d.app, 80, 24);
    assert!(text.contains(": dif▏"), "{text}");
    assert!(text.contains("show_diff"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "command_palette_matches_and_highlights_narrow",
        narrow(&d.app)
    );
}

#[test]
fn command_palette_says_when_nothing_matches() {
    let mut d = steady(Drive::new());
    d.key(':');
    d.typed("zzzz");
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("no command matches"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "command_palette_says_when_nothing_matches_narrow",
        narrow(&d.app)
    );
}

#[test]
fn question_form_shows_options_and_picks() {
    let mut d = steady(crate::app::tests::question::at_question());
    d.key(' ');
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("Which color?") && text.contains("(•) Red"),
        "{text}"
    );
    assert!(text.contains("1 of 2"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "question_form_shows_options_and_picks_narrow",
        narrow(&d.app)
    );
}

#[test]
fn admin_users_tab_shows_grants_and_disabled_actions() {
    use proto::rbac::Role;
    let mut d = steady(crate::app::tests::admin::at_admin(Role::Admin));
    d.key('j').key('j');
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("owner@*") && text.contains("operator@box"),
        "{text}"
    );
    assert!(
        text.contains("✗ not for your role: carol holds admin or owner rights: owners only"),
        "{text}"
    );
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "admin_users_tab_shows_grants_and_disabled_actions_narrow",
        narrow(&d.app)
    );
}

#[test]
fn admin_audit_tab_with_a_filter_and_a_kill_confirmation() {
    use crate::call::{AdminCall, Call, Request};
    use proto::admin::AuditEntry;
    use proto::rbac::Role;
    let mut d = steady(crate::app::tests::admin::at_admin(Role::Owner));
    d.key('h').key('h');
    let row = |id: i64, actor: &str, op: &str, decision: &str, reason: Option<&str>| AuditEntry {
        id,
        ts_ms: T0 - 120_000,
        actor: actor.into(),
        role: Some("operator".into()),
        host: Some("box".into()),
        op: op.into(),
        target: (op == "prompt").then(|| "ses_1".to_owned()),
        decision: decision.into(),
        reason: reason.map(str::to_owned),
        hash: "h".into(),
    };
    d.net(NetEvent::Reply {
        request: Request {
            id: 901,
            scope: crate::call::Scope::host(&HostId::from("")),
            call: Call::Admin(AdminCall::AuditRead(proto::admin::AuditQuery::default())),
        },
        result: Ok(Response::Audit(vec![
            row(41, "bob", "prompt", "allow", None),
            row(42, "bob", "kill", "deny", Some("role")),
        ])),
    });
    d.key('X');
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("KILL SWITCH") && text.contains("type all to"),
        "{text}"
    );
    assert!(text.contains("deny (role)"), "{text}");
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "admin_audit_tab_with_a_filter_and_a_kill_confirmation_narrow",
        narrow(&d.app)
    );
}

#[test]
fn session_shows_its_waiting_question() {
    let d = steady(crate::app::tests::question::in_session());
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("? question") && text.contains("Which color?") && text.contains("y answer"),
        "{text}"
    );
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!("session_shows_its_waiting_question_narrow", narrow(&d.app));
}

#[test]
fn admin_hosts_and_credentials_tabs() {
    use crate::call::{AdminCall, Call, Request};
    use proto::admin::{CredInfo, CredsQuery, HostEnrolled, HostEntry};
    use proto::rbac::Role;
    let mut d = steady(crate::app::tests::admin::at_admin(Role::Admin));
    let reply = |d: &mut Drive, call: AdminCall, response: Response| {
        d.net(NetEvent::Reply {
            request: Request {
                id: 950,
                scope: crate::call::Scope::host(&HostId::from("")),
                call: Call::Admin(call),
            },
            result: Ok(response),
        });
    };
    d.key('l');
    let host = |name: &str, revoked| HostEntry {
        name: name.into(),
        revoked,
        created_ms: T0 - 86_400_000,
    };
    // A rotated token is shown once; the list is read again after it.
    reply(
        &mut d,
        AdminCall::HostRotate("box".into()),
        Response::Enrolled(HostEnrolled {
            name: "box".into(),
            token: "cmh_0123456789abcdef".into(),
        }),
    );
    reply(
        &mut d,
        AdminCall::HostList,
        Response::AdminHosts(vec![host("box", false), host("old-box", true)]),
    );
    let hosts = both(&d.app);
    assert!(
        hosts.contains("revoked") && hosts.contains("cmh_0123456789abcdef"),
        "{hosts}"
    );
    // The one-time token is on a line of its own at every width, never wrapped or indented,
    // so a terminal selection gets it whole.
    assert_eq!(
        hosts
            .lines()
            .filter(|l| l.starts_with("\"cmh_0123456789abcdef "))
            .count(),
        2,
        "{hosts}"
    );
    d.key('l');
    let cred = |id: &str, user: &str, expires_ms, revoked| CredInfo {
        id: id.into(),
        user: user.into(),
        created_ms: T0 - 3_600_000,
        expires_ms,
        revoked,
        label: Some("laptop".into()),
    };
    reply(
        &mut d,
        AdminCall::CredsList(CredsQuery::default()),
        Response::Creds(vec![
            cred("c1", "alice", T0 + 7 * 3_600_000, false),
            cred("c2", "bob", T0 + 20 * 60_000, true),
            cred("c3", "bob", T0 - 60_000, false),
        ]),
    );
    let creds = both(&d.app);
    assert!(
        creds.contains("in 7h") && creds.contains("expired"),
        "{creds}"
    );
    insta::assert_snapshot!(format!("{hosts}{creds}"));
    insta::assert_snapshot!("admin_hosts_and_credentials_tabs_narrow", narrow(&d.app));
}

/// `box` going offline while its session is open, 10 s later (the notice has gone): the title
/// and the status bar say so instead of the last status heard and "connected".
fn box_offline(mut d: Drive) -> Drive {
    let mut hosts = list(&["box", "spare"]);
    hosts.hosts[0].online = false;
    d.net(NetEvent::Hosts(hosts));
    d.send(Event::Tick {
        now_ms: T0 + 10_000,
    });
    d
}

#[test]
fn session_screen_says_when_its_host_is_offline() {
    let d = box_offline(steady(Drive::at_session()));
    for (w, h) in [(80, 24), (140, 40)] {
        let text = screen(&d.app, w, h);
        assert!(text.contains("✗ host offline"), "{text}");
        assert!(
            !text.contains("○ idle") && !text.contains("connected"),
            "{text}"
        );
        assert!(
            text.contains("host box offline — prompts will be queued"),
            "{text}"
        );
    }
    insta::assert_snapshot!(both(&d.app));
    insta::assert_snapshot!(
        "session_screen_says_when_its_host_is_offline_narrow",
        narrow(&d.app)
    );
}

#[test]
fn workspaces_of_an_offline_host_do_not_offer_start_and_stop() {
    let online = steady(Drive::at_workspaces());
    let text = screen(&online.app, 140, 40);
    assert!(text.contains("s start · S stop"), "{text}");
    let d = box_offline(online);
    let text = screen(&d.app, 140, 40);
    assert!(
        !text.contains("s start") && !text.contains("S stop"),
        "{text}"
    );
    assert!(text.contains("start/stop: host offline"), "{text}");
    assert!(text.contains("✗ host offline"), "{text}");
    let mut d = d;
    d.code(KeyCode::Enter);
    let text = screen(&d.app, 140, 40);
    assert!(
        text.contains("✗ host offline"),
        "sessions screen too: {text}"
    );
}

#[test]
fn a_workspace_without_the_kernel_sandbox_says_so_on_its_row() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Enter);
    let mut refused = crate::app::tests::workspace("bare", OpencodeState::Stopped);
    refused.sandbox = Some(proto::ops::SandboxInfo {
        state: "refused".into(),
        detail: "the kernel offers Landlock ABI 0".into(),
    });
    let mut held = crate::app::tests::workspace("held", OpencodeState::Stopped);
    held.sandbox = Some(proto::ops::SandboxInfo {
        state: "enforced".into(),
        detail: "Landlock ABI 7".into(),
    });
    d.answer(Op::WorkspaceList, Response::Workspaces(vec![refused, held]));
    let text = screen(&d.app, 140, 24);
    assert!(text.contains("⚠ sandbox refused"), "{text}");
    assert_eq!(text.matches("⚠ sandbox").count(), 1, "{text}");
}

#[test]
fn an_enforced_workspace_whose_opencode_hit_a_limit_says_so_on_its_row() {
    let mut d = steady(Drive::new());
    d.code(KeyCode::Enter);
    let mut hit = crate::app::tests::workspace("hit", OpencodeState::Failed);
    hit.sandbox = Some(proto::ops::SandboxInfo {
        state: "enforced".into(),
        detail: "memory limit 512 MiB reached; OpenCode was stopped".into(),
    });
    let mut held = crate::app::tests::workspace("held", OpencodeState::Stopped);
    held.sandbox = Some(proto::ops::SandboxInfo {
        state: "enforced".into(),
        detail: "Landlock ABI 7, memory limit 512 MiB".into(),
    });
    d.answer(Op::WorkspaceList, Response::Workspaces(vec![hit, held]));
    let text = screen(&d.app, 140, 24);
    assert!(
        text.contains("⚠ sandbox enforced: memory limit 512 MiB"),
        "{text}"
    );
    assert_eq!(text.matches("⚠ sandbox").count(), 1, "{text}");
}

// ---- What a permission request would do, before it is allowed ----

/// An edit request of `src/clock.rs` with OpenCode's diff in its metadata.
fn edit_request() -> proto::ops::PermissionRequest {
    let diff = "Index: /srv/demo/src/clock.rs\n\
                ===================================================================\n\
                --- /srv/demo/src/clock.rs\n\
                +++ /srv/demo/src/clock.rs\n\
                @@ -1,6 +1,7 @@\n \
                pub struct Clock;\n\
                -pub fn now() -> Instant {\n\
                -    Instant::now()\n\
                +pub fn now(clock: &dyn Source) -> Instant {\n\
                +    clock.now()\n \
                }\n\
                +// injectable for tests\n";
    proto::ops::PermissionRequest {
        id: "per_e".into(),
        session: "ses_new".into(),
        permission: "edit".into(),
        patterns: vec!["src/clock.rs".into()],
        metadata: serde_json::json!({ "filepath": "/srv/demo/src/clock.rs", "diff": diff }),
        always: vec!["*".into()],
    }
}

fn asked_edit() -> Drive {
    let mut d = steady(Drive::at_session());
    d.event(
        2,
        WsEvent::PermissionAsked {
            request: edit_request(),
        },
    );
    d
}

#[test]
fn an_edit_permission_shows_its_diff_coloured() {
    let d = asked_edit();
    let text = screen(&d.app, 80, 24);
    for needle in [
        "⚠ permission: edit",
        "src/clock.rs",
        "-pub fn now() -> Instant {",
        "+pub fn now(clock: &dyn Source) -> Instant {",
        "1–8 of 11",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    let terminal = draw(&d.app, Theme::new(true), 80, 24);
    let buffer = terminal.backend().buffer();
    let row_of = |text: &str| {
        (0..buffer.area.height)
            .find(|&y| {
                let line: String = (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect();
                line.contains(text)
            })
            .unwrap_or_else(|| panic!("{text:?} not on screen"))
    };
    let added = row_of("+pub fn now(clock");
    let removed = row_of("-pub fn now() ->");
    assert_eq!(buffer[(2, added)].fg, Color::Green, "added lines are green");
    assert_eq!(buffer[(2, removed)].fg, Color::Red, "removed lines are red");
    insta::assert_snapshot!(screen(&d.app, 80, 24));
    insta::assert_snapshot!(
        "an_edit_permission_shows_its_diff_coloured_narrow",
        narrow(&d.app)
    );
}

#[test]
fn an_edit_permission_diff_pages_on_a_small_terminal() {
    let mut d = asked_edit();
    let small = screen(&d.app, 50, 14);
    assert!(small.contains("1–2 of 11"), "{small}");
    d.key('J');
    d.key('J');
    let scrolled = screen(&d.app, 50, 14);
    assert!(scrolled.contains("3–4 of 11"), "{scrolled}");
    insta::assert_snapshot!(format!("{small}{scrolled}"));
    insta::assert_snapshot!(
        "an_edit_permission_diff_pages_on_a_small_terminal_narrow",
        narrow(&d.app)
    );
}

#[test]
fn always_shows_in_words_what_it_would_allow_before_it_is_sent() {
    let mut d = asked_edit();
    d.key('A');
    assert!(
        !d.asked(Op::PermissionReply),
        "nothing sent before the confirmation"
    );
    let text = screen(&d.app, 80, 24);
    for needle in [
        "A  allow every edit of any file in this session until OpenCode restarts",
        "f  allow edits of `src/clock.rs` in this session until OpenCode restarts",
        "-pub fn now() -> Instant {",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    let small = screen(&d.app, 50, 14);
    for needle in ["until OpenCode restarts", "`src/clock.rs`", "Esc cancel"] {
        assert!(small.contains(needle), "{needle:?} missing:\n{small}");
    }
    insta::assert_snapshot!(format!("{text}{small}"));
    insta::assert_snapshot!(
        "always_shows_in_words_what_it_would_allow_before_it_is_sent_narrow",
        narrow(&d.app)
    );
}

#[test]
fn a_command_permission_shows_the_whole_command_and_where_it_runs() {
    let mut d = steady(Drive::at_session());
    let mut request = permission("per_b", "ses_new", "cargo test");
    request.metadata =
        serde_json::json!({ "command": "cd crates/core &&\ncargo test -- --nocapture" });
    d.event(2, WsEvent::PermissionAsked { request });
    let text = screen(&d.app, 80, 24);
    for needle in [
        "$ cd crates/core &&",
        "  cargo test -- --nocapture",
        "in the workspace folder",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

#[test]
fn model_picker_marks_the_default_and_the_header_shows_the_pick() {
    let mut d = steady(crate::app::tests::model::at_picker());
    d.key('j');
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("anthropic/claude-sonnet-4  default") && text.contains("plan"),
        "{text}"
    );
    insta::assert_snapshot!("model_picker_overlay", both(&d.app));
    insta::assert_snapshot!("model_picker_overlay_narrow", narrow(&d.app));
    d.key('j').code(KeyCode::Enter);
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("model openai/gpt-5"), "{text}");
    insta::assert_snapshot!(
        "session_header_shows_the_picked_model",
        screen(&d.app, 80, 24)
    );
}

mod admin_certs;
mod notify;
mod ports;
mod setup;

#[test]
fn on_a_phone_a_waiting_request_shows_every_answer_and_the_waiting_count() {
    let d = asked_edit();
    for (w, h) in [(50, 30), (40, 20)] {
        let text = screen(&d.app, w, h);
        for needle in [
            "y once",
            "A always…",
            "f this file",
            "r reject",
            "⚑ 1 waiting",
        ] {
            assert!(
                text.contains(needle),
                "{needle:?} missing at {w}x{h}:\n{text}"
            );
        }
        assert!(
            text.contains("@@ -1,6 +1,7 @@")
                && (text.contains("J K scroll") || text.contains("+// injectable for tests")),
            "the diff is shown whole or paged: {text}"
        );
    }
}
