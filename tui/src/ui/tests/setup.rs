//! Whole-screen snapshots of setting a workspace up: the clone form and its progress, the
//! templates panel and an apply, and the workspaces screen saying which template each runs. At
//! the usual sizes and 60 columns wide.

use super::{both, narrow, screen, steady};
use crate::app::tests::Drive;
use crate::app::tests::clone::{at_form, cloning, item, opened, progress};
use crate::app::tests::folders::{at_folders, naming, refused};
use crate::app::tests::templates::{at_panel, at_templated_workspaces};
use crate::call::{CallError, StreamItem};
use crate::event::{KeyCode, NetEvent};
use proto::git::{GitCloneEvent, GitCloned, GitProgress};
use proto::template::{TemplateApplied, TemplateApplyEvent, TemplateRef};
use proto::wire_error::ErrorCode;

/// The usual two sizes and a narrow one.
fn all(d: &Drive) -> String {
    format!("{}{}", both(&d.app), screen(&d.app, 60, 24))
}

#[test]
fn clone_form_with_the_folder_taken_from_the_url() {
    let d = steady(at_form());
    let text = screen(&d.app, 80, 24);
    for needle in [
        "clone into demo",
        "https://github.com/org/lib.git",
        "folder   lib",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "clone_form_with_the_folder_taken_from_the_url_narrow",
        narrow(&d.app)
    );
}

#[test]
fn clone_progress_moves_with_the_hosts_reports() {
    let (d, id) = cloning();
    let mut d = steady(d);
    item(&mut d, id, progress("Receiving objects", 45, 1_300_000));
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("Receiving objects   45%  1.2 MiB"), "{text}");
    assert!(text.contains("████"), "{text}");
    item(&mut d, id, progress("Receiving objects", 90, 2_600_000));
    let later = screen(&d.app, 80, 24);
    assert!(later.contains(" 90%  2.5 MiB"), "{later}");
    assert!(
        later.matches('█').count() > text.matches('█').count(),
        "the bar grew:\n{text}{later}"
    );
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "clone_progress_moves_with_the_hosts_reports_narrow",
        narrow(&d.app)
    );
}

#[test]
fn clone_done_says_where_and_what() {
    let (d, id) = cloning();
    let mut d = steady(d);
    let done = GitCloned {
        dir: "lib".into(),
        branch: Some("main".into()),
        head: Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904".into()),
        progress: Some(GitProgress {
            phase: "Resolving deltas".into(),
            percent: Some(100),
            bytes: None,
        }),
    };
    item(&mut d, id, StreamItem::Clone(GitCloneEvent::Done(done)));
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!("clone_done_says_where_and_what_narrow", narrow(&d.app));
}

#[test]
fn clone_failed_shows_the_hosts_reason() {
    let mut d = steady(at_form());
    d.code(KeyCode::Enter);
    let id = opened(&d).id;
    d.net(NetEvent::StreamEnded {
        id,
        error: Some(CallError::refused(
            ErrorCode::Forbidden,
            "https://github.com/org/lib.git is not allowed: the host's [git] clone_from allows https://git.example.com/*",
        )),
    });
    let text = screen(&d.app, 80, 24);
    assert!(
        text.contains("the clone failed") && text.contains("clone_from"),
        "{text}"
    );
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!("clone_failed_shows_the_hosts_reason_narrow", narrow(&d.app));
}

#[test]
fn workspaces_show_the_template_they_run_and_when_it_is_out_of_date() {
    let d = steady(at_templated_workspaces());
    let text = screen(&d.app, 140, 40);
    assert!(
        text.contains("rust-team v2 · out of date (v3 available)"),
        "{text}"
    );
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "workspaces_show_the_template_they_run_and_when_it_is_out_of_date_narrow",
        narrow(&d.app)
    );
}

#[test]
fn templates_panel_marks_the_applied_one_and_asks_before_applying() {
    let mut d = steady(at_panel());
    let text = screen(&d.app, 80, 24);
    for needle in [
        "(•) rust-team v3",
        "MCP: docs, fmt",
        "( ) web v1",
        "runs rust-team v2",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    d.code(KeyCode::Enter);
    let text = screen(&d.app, 80, 24);
    assert!(text.contains("apply rust-team v3 to demo?"), "{text}");
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "templates_panel_marks_the_applied_one_and_asks_before_applying_narrow",
        narrow(&d.app)
    );
}

#[test]
fn templates_panel_shows_an_apply_in_progress_then_its_failure() {
    let mut d = steady(at_panel());
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    let id = opened(&d).id;
    let template = TemplateRef {
        name: "rust-team".into(),
        version: 3,
        hash: "blake3:x".into(),
    };
    item(
        &mut d,
        id,
        StreamItem::Applied(TemplateApplied {
            template,
            restart: true,
        }),
    );
    item(&mut d, id, StreamItem::Apply(TemplateApplyEvent::Starting));
    let starting = all(&d);
    assert!(starting.contains("starting OpenCode"), "{starting}");
    item(
        &mut d,
        id,
        StreamItem::Apply(TemplateApplyEvent::Failed {
            message: "OpenCode did not become ready within 60 s".into(),
        }),
    );
    insta::assert_snapshot!(format!("{starting}{}", all(&d)));
    insta::assert_snapshot!(
        "templates_panel_shows_an_apply_in_progress_then_its_failure_narrow",
        narrow(&d.app)
    );
}

#[test]
fn folders_panel_lists_the_candidates_with_branch_and_workspace() {
    let d = steady(at_folders());
    let text = screen(&d.app, 80, 24);
    for needle in [
        "folders on box",
        "demo/lib",
        "git main",
        "not a workspace",
        "workspace tool",
        "x forget",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "folders_panel_lists_the_candidates_with_branch_and_workspace_narrow",
        narrow(&d.app)
    );
}

#[test]
fn folders_name_input_shows_the_name_typed() {
    let d = steady(naming());
    let text = screen(&d.app, 80, 24);
    for needle in [
        "make demo/lib a workspace named:",
        "name  core",
        "Enter add",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "folders_name_input_shows_the_name_typed_narrow",
        narrow(&d.app)
    );
}

#[test]
fn folders_refusal_shows_the_hosts_reason() {
    let d = steady(refused());
    let text = screen(&d.app, 140, 40);
    assert!(text.contains("lib not added as a workspace"), "{text}");
    assert!(text.contains("subworkspaces_off"), "{text}");
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "folders_refusal_shows_the_hosts_reason_narrow",
        narrow(&d.app)
    );
}

#[test]
fn folders_remove_question_says_the_files_stay() {
    let mut d = steady(at_folders());
    d.key('G').key('x');
    let text = screen(&d.app, 140, 40);
    assert!(text.contains("forget the workspace tool?"), "{text}");
    assert!(text.contains("files stay"), "{text}");
    insta::assert_snapshot!(all(&d));
    insta::assert_snapshot!(
        "folders_remove_question_says_the_files_stay_narrow",
        narrow(&d.app)
    );
}
