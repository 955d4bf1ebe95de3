//! The open host going offline while the relay connection stays up: the screens say so (the
//! last session status is stale), start/stop are refused, and when the host comes back what
//! its screens show is re-read and its ended watches reopen at once, as after a reconnect.

use super::*;

/// The host list with `box` online or not (and `spare` online).
pub(crate) fn box_online(online: bool) -> NetEvent {
    let mut hosts = list(&["box", "spare"]);
    hosts.hosts[0].online = online;
    NetEvent::Hosts(hosts)
}

fn watch_effects(fx: &[Effect]) -> Vec<(WatchKey, Option<u64>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Watch { watch, after_seq } => Some((watch.clone(), *after_seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_open_host_going_offline_is_said_on_its_screens() {
    let mut d = Drive::at_session();
    assert_eq!(d.app.open_host_offline(), None);
    d.net(box_online(false));
    assert_eq!(d.app.screen(), Screen::Session, "the screen stays");
    assert_eq!(d.app.open_host_offline(), Some(&HostId::from("box")));
    let notice = d.app.notice().expect("a notice");
    assert!(notice.error);
    assert!(
        notice.text.contains("host box went offline") && notice.text.contains("queued"),
        "{notice:?}"
    );
    assert!(d.pending.is_empty(), "nothing re-read while it is gone");
    // Another list saying the same does not repeat the notice.
    d.send(Event::Tick {
        now_ms: T0 + NOTICE_MS,
    });
    d.net(box_online(false));
    assert!(d.app.notice().is_none());
    // Still offline on the sessions and workspaces screens; not on the hosts list.
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Sessions);
    assert!(d.app.open_host_offline().is_some());
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Workspaces);
    assert!(d.app.open_host_offline().is_some());
    d.code(KeyCode::Esc);
    assert_eq!(d.app.screen(), Screen::Hosts);
    assert_eq!(d.app.open_host_offline(), None);
}

#[test]
fn another_host_going_offline_is_not_news_here() {
    let mut d = Drive::at_session();
    let mut hosts = list(&["box", "spare"]);
    hosts.hosts[1].online = false;
    d.net(NetEvent::Hosts(hosts));
    assert_eq!(d.app.open_host_offline(), None);
    assert!(d.app.notice().is_none());
}

#[test]
fn back_online_rereads_the_screens_and_reopens_the_watch_at_once() {
    let mut d = Drive::at_session();
    d.event(
        7,
        WsEvent::SessionIdle {
            session: "ses_new".into(),
        },
    );
    d.net(box_online(false));
    d.net(NetEvent::WatchEnded {
        watch: demo(),
        reason: "host box is offline".into(),
    });
    d.pending.clear();
    d.net(box_online(true));
    assert_eq!(d.app.open_host_offline(), None);
    let notice = d.app.notice().expect("a notice");
    assert!(
        !notice.error && notice.text.contains("back online"),
        "{notice:?}"
    );
    assert!(d.asked(Op::WorkspaceList), "workspaces re-read");
    assert!(d.asked(Op::SessionList) && d.asked(Op::PermissionList));
    assert!(!d.asked(Op::Messages), "the loaded history is kept");
    let watches = watch_effects(&d.fx);
    assert!(
        watches.contains(&(demo(), Some(7))),
        "resumes after the last event seen, without waiting for the backoff: {watches:?}"
    );
    assert_eq!(d.app.screen(), Screen::Session);
}

#[test]
fn a_host_online_all_along_triggers_no_reread() {
    let mut d = Drive::at_session();
    d.net(box_online(true));
    assert!(d.pending.is_empty());
    assert!(watch_effects(&d.fx).is_empty());
}

#[test]
fn start_and_stop_are_refused_on_an_offline_host() {
    let mut d = Drive::at_workspaces();
    d.net(box_online(false));
    d.key('s');
    assert!(!d.asked(Op::OpencodeStart));
    d.key('S');
    assert!(!d.asked(Op::OpencodeStop));
    let notice = d.app.notice().expect("a notice");
    assert!(
        notice.error && notice.text.contains("host box is offline"),
        "{notice:?}"
    );
    d.net(box_online(true));
    d.key('s');
    assert!(d.asked(Op::OpencodeStart), "offered again once it is back");
}
