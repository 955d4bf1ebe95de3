//! `template_apply` sent to a real agent (its operations layer, as the relay forwards it): a
//! template the relay did not resolve, an altered one, a misnamed one and any template on a host
//! that refuses templates are refused before anything is written; an accepted one on a stopped
//! OpenCode is recorded without starting it (the fixture's OpenCode binary does not exist) and
//! listed by `workspace_list`.

use super::{Fixture, WS};
use anyhow::Result;
use proto::header::Op;
use proto::message::Reply;
use proto::ops::WorkspaceInfo;
use proto::template::{TemplateApplied, TemplateContent, TemplateRef, content_hash};
use proto::wire_error::ErrorCode;
use serde_json::{Value, json};

/// A `template_apply` body carrying `content` as version 1 of `team`, resolved as the relay
/// does.
fn resolved(name: &str, content: &Value) -> Result<Value> {
    let parsed: TemplateContent = serde_json::from_value(content.clone())?;
    Ok(json!({
        "name": name,
        "resolved": {"name": "team", "version": 1, "hash": content_hash(&parsed),
                     "author": "admin", "published_ms": 1, "content": content}
    }))
}

fn state_file(f: &Fixture) -> std::path::PathBuf {
    f.env.tmp.path().join(format!("state/templates/{WS}.json"))
}

#[tokio::test]
async fn a_template_the_relay_did_not_resolve_is_refused() -> Result<()> {
    let f = Fixture::new().await?;
    let e = f.err(Op::TemplateApply, json!({"name": "team"})).await?;
    assert_eq!(e.code, ErrorCode::BadRequest, "{e}");
    assert!(
        e.message.contains(
            "the request carries no template (the relay fills it in for a relay-trusted host"
        ),
        "{e}"
    );
    assert!(!state_file(&f).exists());
    Ok(())
}

#[tokio::test]
async fn an_altered_or_misnamed_template_is_refused_and_nothing_is_recorded() -> Result<()> {
    let f = Fixture::new().await?;
    let mut body = resolved(
        "team",
        &json!({"opencode": {"permission": {"bash": "deny"}}}),
    )?;
    body["resolved"]["content"]["opencode"]["permission"]["bash"] = json!("allow");
    let e = f.err(Op::TemplateApply, body).await?;
    assert_eq!(e.code, ErrorCode::Forbidden, "{e}");
    assert!(e.message.contains("does not match its hash"), "{e}");
    let body = resolved("other", &json!({"description": "x"}))?;
    let e = f.err(Op::TemplateApply, body).await?;
    assert_eq!(e.code, ErrorCode::BadRequest, "{e}");
    assert!(!state_file(&f).exists());
    Ok(())
}

#[tokio::test]
async fn a_host_with_templates_off_refuses_every_template() -> Result<()> {
    let mut f = Fixture::new().await?;
    let state = f.env.tmp.path().join("state-off");
    let policy = cm_agent::policy::PolicyConfig {
        templates: cm_agent::template::TemplatePolicy {
            enabled: false,
            ..Default::default()
        },
        ..Default::default()
    };
    f.env.workspaces = cm_agent::workspaces::Workspaces::spawn_with(
        &[cm_agent::config::Workspace {
            name: WS.into(),
            root: f.root.clone(),
            permissions: Default::default(),
            sandbox: crate::harness::unsandboxed(),
        }],
        f.env.workspaces.opencode_config().clone(),
        &state,
        cm_agent::policy::Policy::new(policy, &state),
        std::time::Duration::from_secs(60),
        Default::default(),
    );
    let e = f
        .err(
            Op::TemplateApply,
            resolved("team", &json!({"description": "x"}))?,
        )
        .await?;
    assert_eq!(e.code, ErrorCode::Forbidden, "{e}");
    assert!(e.message.contains("templates = false"), "{e}");
    assert!(!state.join(format!("templates/{WS}.json")).exists());
    Ok(())
}

#[tokio::test]
async fn a_template_for_a_stopped_opencode_is_recorded_without_starting_it() -> Result<()> {
    let f = Fixture::new().await?;
    let content = json!({"opencode": {"permission": {"bash": "deny"}}});
    let applied: TemplateApplied = f.ok(Op::TemplateApply, resolved("team", &content)?).await?;
    assert!(!applied.restart);
    let parsed: TemplateContent = serde_json::from_value(content)?;
    let expected = TemplateRef {
        name: "team".into(),
        version: 1,
        hash: content_hash(&parsed),
    };
    assert_eq!(applied.template, expected);
    assert!(state_file(&f).exists());
    let list = match f
        .env
        .call::<Vec<WorkspaceInfo>>(Op::WorkspaceList, None, None, None)
        .await?
    {
        Reply::Ok(l) => l,
        Reply::Error(e) => anyhow::bail!("workspace_list: {e}"),
    };
    assert_eq!(list[0].template, Some(expected));
    assert_eq!(
        list[0].opencode.state,
        proto::ops::OpencodeState::Stopped,
        "not started"
    );
    Ok(())
}
