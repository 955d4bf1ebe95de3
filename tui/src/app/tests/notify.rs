//! The notification settings panel through `update()`: `N` lists the channels at the relay,
//! `t` tests the selected one, `x` asks and Enter removes it, Esc closes; refusals are shown
//! in the panel.

use super::*;
use crate::app::notify_panel::NotifyMode;
use crate::app::workspace_detail::Loadable;
use crate::call::{Call, CallError, NotifyCall};
use proto::notify::{ChannelInfo, ChannelTarget, NotifyEvent, NotifyTested, QuietHours};
use proto::wire_error::ErrorCode;

/// A channel that delivers (with quiet hours) and one whose receiver fails.
pub(crate) fn channels() -> Vec<ChannelInfo> {
    let phone = ChannelInfo {
        name: "phone".into(),
        target: ChannelTarget::Ntfy {
            server: "https://ntfy.example.org".into(),
            topic: "cm-alice-7f3kq9-very-long-topic-name".into(),
        },
        has_secret: true,
        events: vec![
            NotifyEvent::Permission,
            NotifyEvent::Question,
            NotifyEvent::Failed,
        ],
        quiet: QuietHours::parse("22:00-07:00", 60).ok(),
        ignore_presence: false,
        delivered: 12,
        last_ok_ms: Some(T0 - 180_000),
        last_error_ms: None,
        last_error: None,
        failures: 0,
    };
    let hook = ChannelInfo {
        name: "team-hook".into(),
        target: ChannelTarget::Webhook {
            url: "https://hooks.example.org/codemantle/incoming".into(),
        },
        has_secret: true,
        events: NotifyEvent::ALL.to_vec(),
        quiet: None,
        ignore_presence: true,
        delivered: 4,
        last_ok_ms: Some(T0 - 7_200_000),
        last_error_ms: Some(T0 - 20_000),
        last_error: Some("the receiver answered HTTP 500 Internal Server Error".into()),
        failures: 3,
    };
    vec![phone, hook]
}

fn notify_call(r: &Request) -> NotifyCall {
    match &r.call {
        Call::Notify(n) => n.clone(),
        other => panic!("not a notification call: {other:?}"),
    }
}

/// The panel open over the hosts screen, its channels read (`list`).
pub(crate) fn with_channels(list: Vec<ChannelInfo>) -> Drive {
    let mut d = Drive::new();
    d.key('N');
    assert_eq!(d.app.context(), Context::Notify);
    let asked = d.take(Op::NotifyList);
    assert_eq!(notify_call(&asked), NotifyCall::List);
    d.net(NetEvent::Reply {
        request: asked,
        result: Ok(Response::Channels(list)),
    });
    d
}

fn mode(d: &Drive) -> NotifyMode {
    d.app
        .notify_panel()
        .expect("the panel is open")
        .mode
        .clone()
}

fn news(d: &Drive) -> (String, bool) {
    let n = d
        .app
        .notify_panel()
        .and_then(|p| p.news.clone())
        .expect("news");
    (n.text.to_string(), n.error)
}

#[test]
fn n_lists_the_channels_from_any_screen_and_esc_closes() {
    let d = with_channels(channels());
    let panel = d.app.notify_panel().expect("open");
    assert_eq!(panel.ready().map(<[ChannelInfo]>::len), Some(2));
    assert_eq!(panel.selected().map(|c| c.name.as_str()), Some("phone"));

    let mut d = Drive::at_session();
    d.key('N');
    assert_eq!(
        d.app.context(),
        Context::Notify,
        "from the session screen too"
    );
    assert!(d.asked(Op::NotifyList));
    d.code(KeyCode::Esc);
    assert!(d.app.notify_panel().is_none());
    assert_eq!(d.app.context(), Context::Session);
}

#[test]
fn t_tests_the_selected_channel_once_and_shows_why_it_failed() {
    let mut d = with_channels(channels());
    d.key('j').key('t');
    let sent = d.take(Op::NotifyTest);
    assert_eq!(notify_call(&sent), NotifyCall::Test("team-hook".into()));
    assert!(matches!(mode(&d), NotifyMode::Busy(..)));
    d.key('t').key('x');
    assert!(
        !d.asked(Op::NotifyTest) && matches!(mode(&d), NotifyMode::Busy(..)),
        "one at a time"
    );
    d.net(NetEvent::Reply {
        request: sent,
        result: Ok(Response::ChannelTested(NotifyTested {
            delivered: false,
            error: Some("HTTP 500".into()),
        })),
    });
    let (text, error) = news(&d);
    assert!(error, "{text}");
    assert!(
        text.contains("the test notification to team-hook failed: HTTP 500"),
        "{text}"
    );
    assert_eq!(mode(&d), NotifyMode::Browse);
    assert!(d.asked(Op::NotifyList), "the list shows the attempt");
}

#[test]
fn x_asks_first_esc_keeps_and_enter_removes() {
    let mut d = with_channels(channels());
    d.key('x');
    assert_eq!(mode(&d), NotifyMode::ConfirmRemove("phone".into()));
    assert!(!d.asked(Op::NotifyRemove), "not before Enter");
    d.code(KeyCode::Esc);
    assert_eq!(mode(&d), NotifyMode::Browse);
    assert!(
        d.app.notify_panel().is_some(),
        "Esc only cancels the question"
    );
    d.key('x').key('j');
    assert_eq!(
        mode(&d),
        NotifyMode::Browse,
        "moving away drops the question"
    );
    d.key('x').code(KeyCode::Enter);
    let sent = d.take(Op::NotifyRemove);
    assert_eq!(notify_call(&sent), NotifyCall::Remove("team-hook".into()));
    d.net(NetEvent::Reply {
        request: sent,
        result: Ok(Response::ChannelRemoved(true)),
    });
    assert_eq!(news(&d), ("removed team-hook".into(), false));
    assert!(d.asked(Op::NotifyList));
}

#[test]
fn relay_refusals_are_shown_in_the_panel() {
    let mut d = Drive::new();
    d.key('N');
    let asked = d.take(Op::NotifyList);
    d.net(NetEvent::Reply {
        request: asked,
        result: Err(CallError::refused(
            ErrorCode::UnknownOp,
            "unknown_op: notify_list",
        )),
    });
    let panel = d.app.notify_panel().expect("still open");
    assert!(
        matches!(&panel.channels, Loadable::Failed(t) if t.contains("notify_list")),
        "{:?}",
        panel.channels
    );
    assert_eq!(d.app.context(), Context::Notify);

    let mut d = with_channels(channels());
    d.key('t');
    let sent = d.take(Op::NotifyTest);
    d.net(NetEvent::Reply {
        request: sent,
        result: Err(CallError::refused(ErrorCode::Forbidden, "viewers cannot")),
    });
    let (text, error) = news(&d);
    assert!(
        error && text.contains("phone was not sent: viewers cannot"),
        "{text}"
    );
    assert_eq!(mode(&d), NotifyMode::Browse, "keys work again");
}

#[test]
fn an_empty_list_offers_nothing_to_test_or_remove_and_offline_says_so() {
    let mut d = with_channels(Vec::new());
    d.key('t').key('x').code(KeyCode::Enter);
    assert!(d.pending.is_empty(), "{:?}", d.pending);
    assert_eq!(mode(&d), NotifyMode::Browse);

    let mut app = App::new(&profile(), T0);
    app.update(key('N'));
    let panel = app.notify_panel().expect("open while connecting");
    assert!(
        matches!(&panel.channels, Loadable::Failed(t) if t.contains("not connected")),
        "{:?}",
        panel.channels
    );
    // Connecting reads them.
    let fx = app.update(Event::Net(NetEvent::Connected {
        conn_id: ConnId::from("k1"),
    }));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Request(r) if r.call == Call::Notify(NotifyCall::List))),
        "{fx:?}"
    );
}

#[test]
fn q_quits_from_the_panel() {
    let mut d = with_channels(channels());
    d.key('q');
    assert!(d.fx.contains(&Effect::Quit));
}

#[test]
fn question_mark_shows_the_panels_keys_and_again_or_esc_goes_back() {
    let mut d = with_channels(channels());
    d.key('?');
    assert!(d.app.notify_panel().is_some_and(|p| p.keys_shown));
    d.code(KeyCode::Esc);
    let panel = d
        .app
        .notify_panel()
        .expect("Esc leaves the keys, not the panel");
    assert!(!panel.keys_shown);
    d.key('?').key('?');
    assert!(d.app.notify_panel().is_some_and(|p| !p.keys_shown));
}
