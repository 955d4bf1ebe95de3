//! Cloning from the workspaces screen: `c` opens the form, Enter streams `git_clone` beneath
//! the selected workspace's root, progress moves the form, Esc aborts (closes the stream).

use super::*;
use crate::app::clone::CloneStage;
use crate::call::{CallError, Scope, StreamCall, StreamItem, StreamRequest};
use proto::git::{GitClone, GitCloneEvent, GitCloneStarted, GitCloned, GitProgress};
use proto::wire_error::{ErrorCode, WireError};

pub(crate) const URL: &str = "https://github.com/org/lib.git";

/// The stream the last update opened.
pub(crate) fn opened(d: &Drive) -> StreamRequest {
    d.fx.iter()
        .find_map(|e| match e {
            Effect::Stream(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no stream opened in {:?}", d.fx))
}

pub(crate) fn item(d: &mut Drive, id: u64, item: StreamItem) {
    d.net(NetEvent::StreamItem { id, item });
}

pub(crate) fn progress(phase: &str, percent: u8, bytes: u64) -> StreamItem {
    StreamItem::Clone(GitCloneEvent::Progress(GitProgress {
        phase: phase.into(),
        percent: Some(percent),
        bytes: Some(bytes),
    }))
}

/// On the workspaces screen with the form filled in with [`URL`].
pub(crate) fn at_form() -> Drive {
    let mut d = Drive::at_workspaces();
    d.key('c');
    d.typed(URL);
    d
}

/// A clone of [`URL`] started (its stream id returned) and accepted by the host.
pub(crate) fn cloning() -> (Drive, u64) {
    let mut d = at_form();
    d.code(KeyCode::Enter);
    let id = opened(&d).id;
    item(
        &mut d,
        id,
        StreamItem::CloneStarted(GitCloneStarted { dir: "lib".into() }),
    );
    (d, id)
}

fn stage(d: &Drive) -> CloneStage {
    d.app.clone_form().expect("the form is open").stage.clone()
}

#[test]
fn c_opens_the_form_and_enter_streams_git_clone_beneath_the_selected_workspace() {
    let mut d = Drive::at_workspaces();
    d.key('c');
    assert_eq!(d.app.context(), Context::CloneForm);
    // Keys that act elsewhere type here.
    d.typed(URL);
    assert!(!d.fx.contains(&Effect::Quit));
    let form = d.app.clone_form().expect("open");
    assert_eq!((form.url.as_str(), form.folder.as_str()), (URL, "lib"));

    d.code(KeyCode::Enter);
    let s = opened(&d);
    assert_eq!(s.scope, Scope::workspace(&HostId::from("box"), "demo"));
    assert_eq!(
        s.call,
        StreamCall::GitClone(GitClone {
            url: URL.into(),
            dir: "lib".into()
        })
    );
    assert_eq!(d.app.context(), Context::CloneProgress);
}

#[test]
fn progress_moves_the_form_and_the_end_says_where_the_clone_is() {
    let (mut d, id) = cloning();
    item(&mut d, id, progress("Receiving objects", 45, 1_300_000));
    assert!(matches!(
        stage(&d),
        CloneStage::Running { dir: Some(ref dir), progress: Some(ref p), .. }
            if dir == "lib" && p.percent == Some(45)
    ));
    item(&mut d, id, progress("Resolving deltas", 80, 2_000_000));
    let CloneStage::Running {
        progress: Some(p), ..
    } = stage(&d)
    else {
        panic!("running");
    };
    assert_eq!(p.phase, "Resolving deltas");

    let done = GitCloned {
        dir: "lib".into(),
        branch: Some("main".into()),
        head: Some("0123456789abcdef".into()),
        progress: None,
    };
    item(
        &mut d,
        id,
        StreamItem::Clone(GitCloneEvent::Done(done.clone())),
    );
    assert_eq!(stage(&d), CloneStage::Done(done));
    assert!(
        d.app
            .notice()
            .is_some_and(|n| n.text.contains("cloned into lib"))
    );
    assert!(
        d.asked(Op::FsList),
        "the workspace's folders are read again"
    );
    d.net(NetEvent::StreamEnded { id, error: None });
    assert!(
        matches!(stage(&d), CloneStage::Done(_)),
        "the end changes nothing"
    );
    d.code(KeyCode::Enter);
    assert!(d.app.clone_form().is_none());
    assert_eq!(d.app.context(), Context::Workspaces);
}

#[test]
fn esc_during_a_clone_closes_its_stream_and_says_the_folder_is_removed() {
    let (mut d, id) = cloning();
    item(&mut d, id, progress("Receiving objects", 10, 4096));
    d.code(KeyCode::Esc);
    assert!(d.fx.contains(&Effect::CloseStream(id)), "{:?}", d.fx);
    assert!(d.app.clone_form().is_none());
    assert_eq!(d.app.context(), Context::Workspaces);
    let notice = d.app.notice().expect("says so");
    assert!(
        notice.text.contains("aborted") && notice.text.contains("removes"),
        "{notice:?}"
    );
    // A frame already on its way is dropped.
    item(&mut d, id, progress("Receiving objects", 20, 8192));
    assert!(d.app.clone_form().is_none());
}

#[test]
fn a_refused_clone_shows_the_hosts_reason_and_enter_goes_back_to_the_form() {
    let mut d = at_form();
    d.code(KeyCode::Enter);
    let id = opened(&d).id;
    let why = "clone URL not allowed by the host's [git] clone_from";
    d.net(NetEvent::StreamEnded {
        id,
        error: Some(CallError::refused(ErrorCode::Forbidden, why)),
    });
    assert_eq!(stage(&d), CloneStage::Failed(RemoteText::new(why)));
    d.code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::CloneForm);
    assert_eq!(d.app.clone_form().map(|f| f.url.as_str()), Some(URL));
}

#[test]
fn a_clone_failing_on_the_host_shows_the_reason() {
    let (mut d, id) = cloning();
    let failed = GitCloneEvent::Failed(WireError::new(
        ErrorCode::Unavailable,
        "the clone took longer than the host's limit (600 s)",
    ));
    item(&mut d, id, StreamItem::Clone(failed));
    assert!(matches!(stage(&d), CloneStage::Failed(ref why) if why.contains("longer than")));
    d.code(KeyCode::Esc);
    assert!(d.app.clone_form().is_none());
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::CloseStream(_))));
}

#[test]
fn a_clone_is_not_started_while_disconnected_and_the_form_says_so() {
    let mut d = at_form();
    d.net(NetEvent::Disconnected {
        reason: "gone".into(),
        retry_in: std::time::Duration::from_secs(1),
    });
    d.code(KeyCode::Enter);
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::Stream(_))));
    let form = d.app.clone_form().expect("open");
    assert!(form.editing());
    assert!(
        form.problem
            .as_deref()
            .is_some_and(|p| p.contains("not connected"))
    );
}

#[test]
fn the_workspaces_help_and_palette_offer_clone_and_templates() {
    let keymap = crate::keymap::Keymap::default();
    let help = keymap.help_rows(Context::Workspaces);
    for (key, what) in [
        ("c", "clone a repository beneath the workspace's root"),
        ("t", "the workspace's OpenCode templates (apply one)"),
    ] {
        assert!(
            help.iter().any(|(k, w)| k == key && *w == what),
            "{key} missing from {help:?}"
        );
    }
    let mut d = Drive::at_workspaces();
    d.key(':');
    d.typed("clone");
    d.code(KeyCode::Enter);
    assert_eq!(
        d.app.context(),
        Context::CloneForm,
        "the palette opens the form"
    );
    d.code(KeyCode::Esc);
    assert!(
        d.app.clone_form().is_none(),
        "Esc before starting closes it"
    );
    d.key(':');
    d.typed("templates");
    d.code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Templates);
    assert!(d.asked(Op::TemplateList));
}

#[test]
fn a_lost_connection_ends_a_running_clone_and_says_what_the_host_does() {
    let (mut d, id) = cloning();
    item(&mut d, id, progress("Receiving objects", 30, 1024));
    d.net(NetEvent::Disconnected {
        reason: "gone".into(),
        retry_in: std::time::Duration::from_secs(1),
    });
    assert!(
        matches!(stage(&d), CloneStage::Failed(ref why) if why.contains("removes its folder")),
        "{:?}",
        stage(&d)
    );
}
