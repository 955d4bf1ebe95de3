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

#[test]
fn standing_grants_are_listed_with_the_workspace_and_x_revokes_them() {
    let mut d = Drive::new();
    d.code(KeyCode::Enter);
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![workspace("demo", OpencodeState::Ready)]),
    );
    let grant = proto::grant::StandingGrant {
        id: "grant_1".into(),
        session: "ses_a".into(),
        permission: "edit".into(),
        patterns: vec!["*".into()],
        granted_by: UserId::from("alice"),
        granted_at_ms: T0,
        uses: 2,
    };
    d.answer(Op::PermissionGrants, Response::Grants(vec![grant.clone()]));
    let detail = d
        .app
        .workspaces()
        .and_then(|w| w.detail("demo"))
        .cloned()
        .expect("demo's details");
    assert_eq!(detail.grants, Loadable::Ready(vec![grant.clone()]));
    d.key('X');
    let r = d.take(Op::PermissionRevoke);
    assert_eq!(
        r.call,
        Call::PermissionRevoke(proto::grant::GrantRevoke {
            id: "grant_1".into()
        })
    );
    d.net(NetEvent::Reply {
        request: r,
        result: Ok(Response::Revoked(grant)),
    });
    let detail = d
        .app
        .workspaces()
        .and_then(|w| w.detail("demo"))
        .cloned()
        .expect("demo's details");
    assert_eq!(detail.grants, Loadable::Ready(vec![]));
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(
        notice.contains("every edit of any file in this session"),
        "{notice}"
    );
}
