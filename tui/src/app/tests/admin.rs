//! The administration screen through `update()`: hidden for lower roles, lists read from the
//! relay, typed confirmations, and changes the role lacks never sent.

use super::*;
use crate::app::admin::AdminTab;
use crate::call::{AdminCall, Call, CallError};
use proto::admin::{AdminDone, GrantInfo, HostEnrolled, KillTarget, UserInfo, UserRequest};
use proto::rbac::Role;
use proto::wire_error::ErrorCode;

/// Connected with `role` on every host (`*`), as the relay's host list reports it.
pub(crate) fn with_role(role: Role) -> Drive {
    with_roles(Some(role), role)
}

/// Connected with `global` from the grant on `*` and `on_box` on host `box`.
fn with_roles(global: Option<Role>, on_box: Role) -> Drive {
    let mut d = Drive::new();
    d.net(NetEvent::Role {
        host: HostId::from("box"),
        role: on_box,
    });
    let mut hosts = list(&["box", "spare"]);
    hosts.roles.insert(HostId::from("box"), on_box);
    hosts.global_role = global;
    d.net(NetEvent::Hosts(hosts));
    d
}

fn admin_call(r: &Request) -> &AdminCall {
    match &r.call {
        Call::Admin(a) => a,
        other => panic!("not an admin call: {other:?}"),
    }
}

fn take_admin(d: &mut Drive, op: Op) -> AdminCall {
    let r = d.take(op);
    admin_call(&r).clone()
}

pub(crate) fn users() -> Vec<UserInfo> {
    let grant = |host: &str, role| GrantInfo {
        host: host.into(),
        role,
    };
    vec![
        UserInfo {
            name: "alice".into(),
            has_password: true,
            grants: vec![grant("*", Role::Owner)],
        },
        UserInfo {
            name: "bob".into(),
            has_password: true,
            grants: vec![grant("box", Role::Operator)],
        },
        UserInfo {
            name: "carol".into(),
            has_password: false,
            grants: vec![grant("*", Role::Admin)],
        },
    ]
}

/// On the admin screen's users tab with the users read.
pub(crate) fn at_admin(role: Role) -> Drive {
    let mut d = with_role(role);
    d.key('m');
    assert_eq!(d.app.screen(), Screen::Admin);
    assert_eq!(take_admin(&mut d, Op::UserList), AdminCall::UserList);
    d.net(NetEvent::Reply {
        request: Request {
            id: 900,
            scope: Scope::host(&HostId::from("")),
            call: Call::Admin(AdminCall::UserList),
        },
        result: Ok(Response::Users(users())),
    });
    d
}

#[test]
fn lower_roles_cannot_open_it_and_nothing_is_asked() {
    for role in [Role::Viewer, Role::Operator] {
        let mut d = with_role(role);
        d.key('m');
        assert_eq!(d.app.screen(), Screen::Hosts);
        assert!(d.pending.is_empty(), "nothing attempted");
        let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
        assert!(notice.contains(&format!("you are {role}")), "{notice}");
        let entries = d.app.palette_entries();
        assert!(
            entries.iter().all(|e| e.name != "open_admin"),
            "not offered"
        );
    }
    let d = with_role(Role::Admin);
    assert!(
        d.app
            .palette_entries()
            .iter()
            .any(|e| e.name == "open_admin")
    );
}

#[test]
fn only_the_grant_on_every_host_counts_for_administration() {
    // Owner of one host, viewer everywhere: no administration (the relay would refuse).
    for global in [None, Some(Role::Viewer), Some(Role::Operator)] {
        let mut d = with_roles(global, Role::Owner);
        d.key('m');
        assert_eq!(d.app.screen(), Screen::Hosts, "{global:?}");
        assert!(d.pending.is_empty(), "nothing attempted");
        assert!(
            d.app
                .palette_entries()
                .iter()
                .all(|e| e.name != "open_admin")
        );
    }
    // Admin on `*`, owner of one host: the screen opens, owner-only changes stay disabled.
    let mut d = with_roles(Some(Role::Admin), Role::Owner);
    d.key('m');
    assert_eq!(d.app.screen(), Screen::Admin);
    assert_eq!(take_admin(&mut d, Op::UserList), AdminCall::UserList);
    d.net(NetEvent::Reply {
        request: Request {
            id: 900,
            scope: Scope::host(&HostId::from("")),
            call: Call::Admin(AdminCall::UserList),
        },
        result: Ok(Response::Users(users())),
    });
    d.key('j'); // bob
    d.key('+').typed("admin box").code(KeyCode::Enter);
    assert!(d.pending.is_empty(), "grant_admin is for owners on *");
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(notice.contains("owner"), "{notice}");
    // A later host list without the grant closes the offer again.
    d.code(KeyCode::Esc);
    d.net(NetEvent::Hosts(list(&["box", "spare"])));
    assert_eq!(d.app.admin_role(), None);
}

#[test]
fn tabs_read_their_lists_and_a_refusal_is_shown() {
    let mut d = at_admin(Role::Admin);
    d.key('l');
    assert_eq!(d.app.admin().map(|a| a.tab), Some(AdminTab::Hosts));
    let request = d.take(Op::HostRotate);
    assert_eq!(admin_call(&request), &AdminCall::HostList);
    d.net(NetEvent::Reply {
        request,
        result: Err(CallError::refused(ErrorCode::Forbidden, "needs admin on *")),
    });
    match &d.app.admin().expect("open").hosts {
        crate::app::workspace_detail::Loadable::Failed(e) => {
            assert!(e.contains("grant on every host"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    d.key('l').key('l');
    assert_eq!(d.app.admin().map(|a| a.tab), Some(AdminTab::Audit));
    assert!(matches!(take_admin(&mut d, Op::AuditRead), AdminCall::AuditRead(q) if q.limit == 200));
    d.key('/').typed("user=bob host=box").code(KeyCode::Enter);
    match take_admin(&mut d, Op::AuditRead) {
        AdminCall::AuditRead(q) => {
            assert_eq!(
                (q.user.as_deref(), q.host.as_deref()),
                (Some("bob"), Some("box"))
            );
        }
        other => panic!("{other:?}"),
    }
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Hosts);
}

#[test]
fn admins_see_owner_changes_disabled_with_the_reason_and_never_send_them() {
    let mut d = at_admin(Role::Admin);
    d.key('j').key('j'); // carol, an admin
    let actions = d.app.admin_actions();
    let remove = actions
        .iter()
        .find(|a| a.action == Action::Remove)
        .expect("remove listed");
    assert_eq!(
        remove.disabled.as_deref(),
        Some("carol holds admin or owner rights: owners only")
    );
    d.key('D');
    assert!(
        d.app.admin().is_some_and(|a| a.input.is_none()),
        "no prompt"
    );
    assert!(d.pending.is_empty());
    // Granting admin is an owner's change: refused before sending.
    d.key('k'); // bob
    d.key('+').typed("admin box").code(KeyCode::Enter);
    assert!(d.pending.is_empty(), "nothing sent");
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(notice.contains("only owners"), "{notice}");
    // Operator is fine for an admin.
    d.key('+').typed("operator box").code(KeyCode::Enter);
    assert_eq!(
        take_admin(&mut d, Op::UserManage),
        AdminCall::User(
            Op::UserManage,
            UserRequest::Grant {
                name: "bob".into(),
                role: Role::Operator,
                host: "box".into(),
            }
        )
    );
}

#[test]
fn owners_grant_admin_with_grant_admin() {
    let mut d = at_admin(Role::Owner);
    d.key('j'); // bob
    d.key('+').typed("admin").code(KeyCode::Enter);
    assert!(matches!(
        take_admin(&mut d, Op::GrantAdmin),
        AdminCall::User(
            Op::GrantAdmin,
            UserRequest::Grant {
                role: Role::Admin,
                ..
            }
        )
    ));
}

#[test]
fn the_kill_switch_needs_the_name_typed() {
    let mut d = at_admin(Role::Admin);
    d.key('j').key('K'); // bob
    d.typed("bobby").code(KeyCode::Enter);
    assert!(d.pending.is_empty(), "a wrong name changes nothing");
    let notice = d.app.notice().map(|n| n.text.clone()).unwrap_or_default();
    assert!(notice.contains("type bob exactly"), "{notice}");
    d.key('K').typed("bob").code(KeyCode::Enter);
    let kill = d.take(Op::Kill);
    assert_eq!(
        admin_call(&kill),
        &AdminCall::Kill(KillTarget::User { name: "bob".into() })
    );
    d.net(NetEvent::Reply {
        request: kill,
        result: Ok(Response::Done(AdminDone {
            summary: "killed 2 credentials of bob".into(),
            invite: None,
        })),
    });
    assert_eq!(
        d.app
            .admin()
            .and_then(|a| a.result.clone())
            .map(|r| r.summary)
            .as_deref(),
        Some("killed 2 credentials of bob")
    );
    assert!(d.asked(Op::UserList), "the list is read again");
    d.key('X').typed("all").code(KeyCode::Enter);
    assert_eq!(
        take_admin(&mut d, Op::Kill),
        AdminCall::Kill(KillTarget::All)
    );
}

#[test]
fn enrolling_a_host_shows_its_token_once() {
    let mut d = at_admin(Role::Admin);
    d.key('l');
    d.pending.clear();
    d.key('a').typed("new-box").code(KeyCode::Enter);
    let add = d.take(Op::HostAdd);
    d.net(NetEvent::Reply {
        request: add,
        result: Ok(Response::Enrolled(HostEnrolled {
            name: "new-box".into(),
            token: "cmh_secret".into(),
        })),
    });
    let result = d.app.admin().and_then(|a| a.result.clone()).unwrap();
    assert!(result.summary.contains("new-box"), "{result:?}");
    // A token without owner roots (this laptop has none) says it is relay-trusted.
    assert!(result.summary.contains("relay-trusted"), "{result:?}");
    assert!(result.summary.contains("admin trust init"), "{result:?}");
    assert_eq!(result.secret.as_deref(), Some("cmh_secret"));
    // `c` copies it to the operator's clipboard.
    d.key('c');
    assert!(
        d.fx.contains(&Effect::Copy("cmh_secret".into())),
        "{:?}",
        d.fx
    );
    // Leaving the screen forgets it: coming back does not show it again.
    d.code(KeyCode::Esc);
    d.key('m');
    assert_eq!(d.app.admin().and_then(|a| a.result.clone()), None);
}
