//! The workspaces screen's details (folders and git status), through `update()`.

use super::*;
use crate::app::workspace_detail::Loadable;
use crate::call::Call;

#[test]
fn the_selected_workspace_is_read_once_per_list() {
    let mut d = Drive::new();
    d.code(KeyCode::Enter);
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![
            workspace("demo", OpencodeState::Ready),
            workspace("docs", OpencodeState::Stopped),
        ]),
    );
    let fs = d.take(Op::FsList);
    assert_eq!(fs.scope, Scope::workspace(&HostId::from("box"), "demo"));
    assert_eq!(fs.call, Call::FsList(proto::fs::FsPath::default()));
    let git = d.take(Op::GitStatus);
    d.key('j');
    assert!(d.asked(Op::FsList) && d.asked(Op::GitStatus), "docs asked");
    d.pending.clear();
    d.key('k');
    assert!(!d.asked(Op::FsList), "demo is known already");
    d.net(NetEvent::Reply {
        request: git,
        result: Ok(Response::Git(proto::git::GitStatus::default())),
    });
    d.net(NetEvent::Reply {
        request: fs,
        result: Err(crate::call::CallError::transport("connection lost")),
    });
    let detail = d
        .app
        .workspaces()
        .and_then(|w| w.detail("demo"))
        .cloned()
        .expect("demo's details");
    assert_eq!(
        detail.git,
        Loadable::Ready(proto::git::GitStatus::default())
    );
    assert_eq!(detail.folders, Loadable::Failed("connection lost".into()));
}
