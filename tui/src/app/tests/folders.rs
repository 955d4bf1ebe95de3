//! Folders as workspaces: `f` lists the host's `workspace_candidates`, Enter on a folder asks
//! its workspace's name and runs `workspace_add` (then the new workspace is selected), `x` on
//! an added one asks and runs `workspace_remove`; refusals show in the panel; a finished
//! clone offers to add its folder.

use super::clone::{cloning, item};
use super::*;
use crate::app::folders::FoldersMode;
use crate::call::{CallError, Scope, StreamItem};
use proto::git::{GitCloneEvent, GitCloned};
use proto::wire_error::ErrorCode;
use proto::workspace::{WorkspaceAdd, WorkspaceCandidate, WorkspaceCandidates, WorkspaceRemoved};

pub(crate) const REFUSAL: &str = "refused (subworkspaces_off): workspace docs does not allow subworkspaces; the host enables them with `subworkspaces = true` in that [[workspace]] table of agent.toml";

fn candidate(
    root: &str,
    folder: &str,
    branch: Option<&str>,
    ws: Option<&str>,
) -> WorkspaceCandidate {
    WorkspaceCandidate {
        root: root.into(),
        folder: folder.into(),
        is_git: branch.is_some(),
        branch: branch.map(Into::into),
        workspace: ws.map(Into::into),
    }
}

/// `demo`'s folders: `lib` (git, main, no workspace), `notes` (plain), `tool` (workspace
/// `tool`).
pub(crate) fn candidates() -> WorkspaceCandidates {
    WorkspaceCandidates {
        candidates: vec![
            candidate("demo", "lib", Some("main"), None),
            candidate("demo", "notes", None, None),
            candidate("demo", "tool", Some("dev"), Some("tool")),
        ],
        truncated: false,
    }
}

/// The folders panel of `box` open, the candidates read.
pub(crate) fn at_folders() -> Drive {
    let mut d = Drive::at_workspaces();
    d.key('f');
    d.answer(Op::WorkspaceCandidates, Response::Candidates(candidates()));
    d
}

/// The name input of `demo/lib` open, its name typed over with `core`.
pub(crate) fn naming() -> Drive {
    let mut d = at_folders();
    d.code(KeyCode::Enter);
    d.press(KeyPress::ctrl('u'));
    d.typed("core");
    d
}

fn refuse(d: &mut Drive, op: Op, code: ErrorCode, message: &str) {
    let request = d.take(op);
    d.net(NetEvent::Reply {
        request,
        result: Err(CallError::refused(code, message)),
    });
}

/// The panel refusing to add `lib` as `core`.
pub(crate) fn refused() -> Drive {
    let mut d = naming();
    d.code(KeyCode::Enter);
    refuse(&mut d, Op::WorkspaceAdd, ErrorCode::Forbidden, REFUSAL);
    d
}

fn mode(d: &Drive) -> FoldersMode {
    d.app.folders_panel().expect("the panel").mode.clone()
}

#[test]
fn f_asks_the_hosts_candidates_and_lists_them() {
    let mut d = Drive::at_workspaces();
    d.key('f');
    assert_eq!(d.app.context(), Context::Folders);
    let asked = d.take(Op::WorkspaceCandidates);
    assert_eq!(asked.scope, Scope::host(&HostId::from("box")));
    assert_eq!(asked.call, Call::WorkspaceCandidates);
    d.net(NetEvent::Reply {
        request: asked,
        result: Ok(Response::Candidates(candidates())),
    });
    let panel = d.app.folders_panel().expect("open");
    assert_eq!(panel.ready().map(<[_]>::len), Some(3));
    d.code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Workspaces);
}

#[test]
fn enter_on_a_folder_asks_its_name_and_adds_it_then_selects_the_new_workspace() {
    let mut d = at_folders();
    d.code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::FolderName);
    assert!(matches!(mode(&d), FoldersMode::Naming { ref name, .. } if name == "lib"));
    // Keys that act elsewhere type here.
    d.typed("-x");
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Backspace);
    d.code(KeyCode::Enter);
    let add = d.take(Op::WorkspaceAdd);
    assert_eq!(add.scope, Scope::workspace(&HostId::from("box"), "demo"));
    assert_eq!(
        add.call,
        Call::WorkspaceAdd(WorkspaceAdd {
            folder: "lib".into(),
            name: None
        }),
        "the folder's own name is the default: none sent"
    );
    assert!(matches!(mode(&d), FoldersMode::Busy(_)));
    d.net(NetEvent::Reply {
        request: add,
        result: Ok(Response::WorkspaceAdded(workspace(
            "lib",
            OpencodeState::Stopped,
        ))),
    });
    assert_eq!(d.app.context(), Context::Workspaces, "the panel closes");
    assert!(
        d.app
            .notice()
            .is_some_and(|n| n.text.contains("lib is now a workspace"))
    );
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![
            workspace("demo", OpencodeState::Ready),
            workspace("docs", OpencodeState::Stopped),
            workspace("lib", OpencodeState::Stopped),
        ]),
    );
    let selected = d
        .app
        .workspaces()
        .and_then(|v| v.selected())
        .map(|w| w.name.clone());
    assert_eq!(selected.as_deref(), Some("lib"));
}

#[test]
fn a_typed_name_is_sent_and_an_empty_one_is_named_before_anything_is_sent() {
    let mut d = at_folders();
    d.code(KeyCode::Enter);
    d.press(KeyPress::ctrl('u'));
    d.code(KeyCode::Enter);
    assert!(!d.asked(Op::WorkspaceAdd));
    assert!(matches!(
        mode(&d),
        FoldersMode::Naming {
            problem: Some(_),
            ..
        }
    ));
    d.typed("core");
    d.code(KeyCode::Enter);
    assert_eq!(
        d.take(Op::WorkspaceAdd).call,
        Call::WorkspaceAdd(WorkspaceAdd {
            folder: "lib".into(),
            name: Some("core".into())
        })
    );
}

#[test]
fn a_refused_add_shows_the_hosts_reason_in_the_panel() {
    let d = refused();
    assert_eq!(d.app.context(), Context::Folders);
    let panel = d.app.folders_panel().expect("open");
    assert_eq!(panel.mode, FoldersMode::Browse);
    let why = panel.refusal.as_ref().expect("a refusal").to_string();
    assert!(why.contains("lib not added as a workspace"), "{why}");
    assert!(why.contains("subworkspaces = true"), "{why}");
}

#[test]
fn x_on_an_added_workspace_asks_then_removes_it_and_says_its_files_stay() {
    let mut d = at_folders();
    d.key('x');
    assert_eq!(mode(&d), FoldersMode::Browse, "lib is no workspace");
    assert!(
        d.app
            .folders_panel()
            .and_then(|p| p.refusal.as_ref())
            .is_some()
    );
    d.key('G');
    d.key('x');
    assert_eq!(mode(&d), FoldersMode::ConfirmRemove("tool".into()));
    d.code(KeyCode::Esc);
    assert_eq!(
        mode(&d),
        FoldersMode::Browse,
        "Esc cancels the question only"
    );
    assert_eq!(d.app.context(), Context::Folders);
    d.key('x');
    d.code(KeyCode::Enter);
    let remove = d.take(Op::WorkspaceRemove);
    assert_eq!(remove.scope, Scope::workspace(&HostId::from("box"), "tool"));
    d.net(NetEvent::Reply {
        request: remove,
        result: Ok(Response::WorkspaceRemoved(WorkspaceRemoved {
            name: "tool".into(),
            root: "demo".into(),
            folder: "tool".into(),
        })),
    });
    let notice = d.app.notice().expect("says so");
    assert!(notice.text.contains("its files stay"), "{}", notice.text);
    assert!(
        d.asked(Op::WorkspaceCandidates),
        "the folders are read again"
    );
    assert!(d.asked(Op::WorkspaceList), "the workspaces are read again");
}

#[test]
fn a_refused_remove_shows_the_hosts_reason() {
    let mut d = at_folders();
    d.key('G');
    d.key('x');
    d.code(KeyCode::Enter);
    refuse(
        &mut d,
        Op::WorkspaceRemove,
        ErrorCode::Forbidden,
        "refused: workspace tool is in agent.toml, not added with workspace_add",
    );
    let why = d
        .app
        .folders_panel()
        .and_then(|p| p.refusal.clone())
        .expect("shown");
    assert!(
        why.to_string().contains("workspace tool not removed"),
        "{why}"
    );
}

fn clone_done(d: &mut Drive, id: u64) {
    let done = GitCloned {
        dir: "lib".into(),
        branch: Some("main".into()),
        head: None,
        progress: None,
    };
    item(d, id, StreamItem::Clone(GitCloneEvent::Done(done)));
}

#[test]
fn a_finished_clone_offers_to_add_its_folder_as_a_workspace() {
    let (mut d, id) = cloning();
    clone_done(&mut d, id);
    assert!(d.asked(Op::WorkspaceCandidates), "whether it may: asked");
    let host = HostId::from("box");
    assert!(
        d.app.subworkspaces_allowed(&host, "demo"),
        "unknown: offered"
    );
    d.answer(Op::WorkspaceCandidates, Response::Candidates(candidates()));
    assert!(d.app.subworkspaces_allowed(&host, "demo"));
    assert!(
        !d.app.subworkspaces_allowed(&host, "docs"),
        "no candidates there"
    );
    d.key('a');
    assert_eq!(d.app.context(), Context::FolderName);
    assert!(d.app.clone_form().is_none());
    d.code(KeyCode::Enter);
    assert_eq!(
        d.take(Op::WorkspaceAdd).call,
        Call::WorkspaceAdd(WorkspaceAdd {
            folder: "lib".into(),
            name: None
        })
    );
}

#[test]
fn the_palette_opens_the_folders_panel_and_the_help_lists_its_key() {
    let mut d = Drive::at_workspaces();
    d.key(':');
    d.typed("folders").code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Folders);
    assert!(d.asked(Op::WorkspaceCandidates));
    let keys = crate::keymap::tables(Context::Workspaces)
        .iter()
        .flat_map(|t| t.iter())
        .any(|b| b.action == crate::action::Action::OpenFolders);
    assert!(
        keys,
        "f is in the workspaces screen's table (help and palette come from it)"
    );
}
