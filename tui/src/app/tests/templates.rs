//! Templates on a workspace: the workspaces screen asks the relay's list when a workspace runs
//! a template, `t` opens the panel, Enter twice streams `template_apply`, progress and the end
//! show in the panel (or as a notice once it is closed).

use super::clone::{item, opened};
use super::*;
use crate::app::templates::{ApplyPhase, TemplateStatus, template_status};
use crate::app::workspace_detail::Loadable;
use crate::call::{CallError, Scope, StreamCall, StreamItem};
use proto::template::{
    TemplateApplied, TemplateApply, TemplateApplyEvent, TemplateRef, TemplateSummary,
};
use proto::wire_error::ErrorCode;

pub(crate) fn summary(
    name: &str,
    version: u32,
    description: &str,
    mcp: &[&str],
) -> TemplateSummary {
    TemplateSummary {
        latest: TemplateRef {
            name: name.into(),
            version,
            hash: format!("blake3:{name}-{version}"),
        },
        author: "alice".into(),
        published_ms: T0,
        description: description.into(),
        mcp: mcp.iter().map(|m| (*m).to_owned()).collect(),
    }
}

pub(crate) fn relay_templates() -> Vec<TemplateSummary> {
    vec![
        summary("rust-team", 3, "rust defaults, docs MCP", &["docs", "fmt"]),
        summary("web", 1, "node and playwright", &[]),
    ]
}

/// On the workspaces screen of `box`; `demo` runs rust-team v2, the relay has v3.
pub(crate) fn at_templated_workspaces() -> Drive {
    let mut d = Drive::new();
    d.code(KeyCode::Enter);
    let mut running = workspace("demo", OpencodeState::Ready);
    running.template = Some(summary("rust-team", 2, "", &[]).latest);
    d.answer(
        Op::WorkspaceList,
        Response::Workspaces(vec![running, workspace("docs", OpencodeState::Stopped)]),
    );
    d.answer(Op::TemplateList, Response::Templates(relay_templates()));
    d.net(NetEvent::WatchStarted {
        watch: demo(),
        next_seq: 1,
    });
    d.pending.clear();
    d
}

/// The templates panel of `demo` open, the list read.
pub(crate) fn at_panel() -> Drive {
    let mut d = at_templated_workspaces();
    d.key('t');
    d.answer(Op::TemplateList, Response::Templates(relay_templates()));
    d
}

fn phase(d: &Drive) -> ApplyPhase {
    d.app
        .templates_panel()
        .and_then(|p| p.run.as_ref())
        .expect("an apply")
        .phase
        .clone()
}

#[test]
fn a_workspace_running_a_template_makes_the_screen_ask_for_the_relays_list() {
    let mut d = Drive::at_workspaces();
    assert!(
        d.app.template_cache().list.is_none(),
        "no workspace runs a template: nothing asked"
    );
    let d2 = at_templated_workspaces();
    let w = d2.app.workspaces().and_then(|v| v.selected()).cloned();
    let current = w.and_then(|w| w.template);
    assert_eq!(
        template_status(current.as_ref(), d2.app.template_cache().ready()),
        TemplateStatus::OutOfDate { latest: 3 }
    );
    d.key('t');
    let asked = d.take(Op::TemplateList);
    assert_eq!(asked.call, Call::TemplateList);
}

#[test]
fn t_lists_the_templates_and_two_enters_apply_the_highlighted_one_with_progress() {
    let mut d = at_panel();
    assert_eq!(d.app.context(), Context::Templates);
    assert_eq!(d.app.panel_template().map(|t| t.version), Some(2));
    d.code(KeyCode::Enter);
    assert!(
        !d.fx.iter().any(|e| matches!(e, Effect::Stream(_))),
        "the first Enter only asks"
    );
    assert!(d.app.templates_panel().is_some_and(|p| p.confirm));
    d.code(KeyCode::Enter);
    let s = opened(&d);
    assert_eq!(s.scope, Scope::workspace(&HostId::from("box"), "demo"));
    assert_eq!(
        s.call,
        StreamCall::TemplateApply(TemplateApply {
            name: "rust-team".into(),
            version: Some(3),
            resolved: None,
        })
    );
    assert_eq!(phase(&d), ApplyPhase::Asking);
    let applied = TemplateApplied {
        template: summary("rust-team", 3, "", &[]).latest,
        restart: true,
    };
    item(&mut d, s.id, StreamItem::Applied(applied));
    assert_eq!(phase(&d), ApplyPhase::Accepted { restart: true });
    item(
        &mut d,
        s.id,
        StreamItem::Apply(TemplateApplyEvent::Stopping),
    );
    assert_eq!(phase(&d), ApplyPhase::Stopping);
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    assert!(
        !d.fx.iter().any(|e| matches!(e, Effect::Stream(_))),
        "no second apply while one runs"
    );
    item(
        &mut d,
        s.id,
        StreamItem::Apply(TemplateApplyEvent::Starting),
    );
    assert_eq!(phase(&d), ApplyPhase::Starting);
    item(&mut d, s.id, StreamItem::Apply(TemplateApplyEvent::Done));
    assert_eq!(phase(&d), ApplyPhase::Done);
    assert!(d.app.notice().is_some_and(|n| n.text.contains("applied")));
    assert!(
        d.asked(Op::WorkspaceList),
        "the workspaces are read again to show the new version"
    );
    d.net(NetEvent::StreamEnded {
        id: s.id,
        error: None,
    });
    assert_eq!(phase(&d), ApplyPhase::Done);
}

#[test]
fn an_apply_refused_or_failed_shows_the_reason() {
    let mut d = at_panel();
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    let id = opened(&d).id;
    let why = "template_apply is not served by this relay yet";
    d.net(NetEvent::StreamEnded {
        id,
        error: Some(CallError::refused(ErrorCode::Unavailable, why)),
    });
    assert_eq!(phase(&d), ApplyPhase::Failed(RemoteText::new(why)));
    let notice = d.app.notice().expect("a notice");
    assert!(notice.error && notice.text.contains(why), "{notice:?}");

    d.code(KeyCode::Enter).code(KeyCode::Enter);
    let id = opened(&d).id;
    let message = "the host's policy refuses local MCP servers (fmt)".to_owned();
    item(
        &mut d,
        id,
        StreamItem::Apply(TemplateApplyEvent::Failed {
            message: message.clone(),
        }),
    );
    assert_eq!(phase(&d), ApplyPhase::Failed(RemoteText::new(&message)));
}

#[test]
fn closing_the_panel_during_an_apply_keeps_it_and_its_end_is_a_notice() {
    let mut d = at_panel();
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    let id = opened(&d).id;
    d.code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Workspaces);
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::CloseStream(_))));
    item(&mut d, id, StreamItem::Apply(TemplateApplyEvent::Done));
    assert!(d.app.templates_panel().is_none(), "reported, then dropped");
    assert!(
        d.app
            .notice()
            .is_some_and(|n| n.text.contains("rust-team v3") && n.text.contains("applied"))
    );
}

#[test]
fn a_relay_that_does_not_serve_templates_says_so_in_the_panel() {
    let mut d = Drive::at_workspaces();
    d.key('t');
    let request = d.take(Op::TemplateList);
    d.net(NetEvent::Reply {
        request,
        result: Err(CallError::refused(ErrorCode::Unavailable, "not served")),
    });
    assert_eq!(
        d.app.template_cache().list,
        Some(Loadable::Failed(RemoteText::new("not served")))
    );
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    assert!(!d.fx.iter().any(|e| matches!(e, Effect::Stream(_))));
    d.key('r');
    assert!(d.asked(Op::TemplateList), "r reads the list again");
}

#[test]
fn a_lost_connection_ends_a_running_apply_in_the_panel() {
    let mut d = at_panel();
    d.code(KeyCode::Enter).code(KeyCode::Enter);
    d.net(NetEvent::Fatal {
        message: "revoked".into(),
        revoked: true,
    });
    assert!(
        matches!(phase(&d), ApplyPhase::Failed(ref why) if why.contains("connection was lost"))
    );
}
