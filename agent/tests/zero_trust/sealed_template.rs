//! `template_apply` on a zero-trust host: the template comes inside the operator's signed and
//! sealed body (the relay cannot fill it in), and must be the one the signed header names.

use crate::harness::*;
use anyhow::{Result, bail, ensure};
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId, UserId};
use proto::message::Reply;
use proto::rbac::Role;
use proto::template::{Template, TemplateApply, TemplateContent, TemplateRef, content_hash};
use proto::trust::header::{SignInput, body_hash, sign};

fn template(version: u32) -> Template {
    let content: TemplateContent =
        serde_json::from_str(r#"{"description":"team","opencode":{"instructions":["a.md"]}}"#)
            .expect("template content");
    Template {
        id: TemplateRef {
            name: "team".into(),
            version,
            hash: content_hash(&content),
        },
        author: "olga".into(),
        published_ms: 1,
        content,
    }
}

/// A signed `template_apply` for `body` naming `named` in the signed header.
fn signed_apply(
    fx: &Fixture,
    channel: cm_client::e2e::ChannelId,
    body: &[u8],
    named: Option<TemplateRef>,
) -> Result<Signed> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    let mut header = StreamHeader::new(Op::TemplateApply, ReqId(9));
    header.host = Some(HostId::from(HOST));
    header.workspace = Some(WS.into());
    sign(
        &mut header,
        SignInput {
            user: &UserId::from("ana"),
            key: &fx.ana,
            nonce,
            now_ms: now(),
            body: Some(body_hash(body)),
            channel: Some(channel.to_hex()),
            template: named,
        },
    )?;
    Ok(Signed { header, nonce })
}

#[tokio::test]
async fn a_sealed_template_from_the_operator_is_applied_when_it_is_the_signed_one() -> Result<()> {
    let fx = Fixture::new(Role::Operator, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    let t = template(2);
    let body = serde_json::to_vec(&TemplateApply {
        name: "team".into(),
        version: Some(2),
        resolved: Some(t.clone()),
    })?;
    let s = signed_apply(&fx, channel.id(), &body, Some(t.id.clone()))?;
    let answer = call_sealed(
        &fx,
        &channel,
        &s.nonce,
        &Fixture::forward(s.header),
        Some(&body),
    )
    .await?;
    let Answer::Sealed(Reply::Ok(applied), wire) = answer else {
        bail!("the signed template was not applied: {answer:?}");
    };
    ensure!(applied["template"]["version"] == 2, "{applied}");
    ensure!(
        !String::from_utf8_lossy(&wire).contains("a.md"),
        "the relay saw the template's content"
    );
    ensure!(fx.logs.text().contains("template applied"));
    Ok(())
}

#[tokio::test]
async fn a_template_other_than_the_signed_one_is_refused() -> Result<()> {
    let fx = Fixture::new(Role::Operator, now())?;
    let channel = open_channel(&fx, &fx.certs).await?;
    // The body carries version 2; the signed header names version 1 (what the relay audited).
    let body = serde_json::to_vec(&TemplateApply {
        name: "team".into(),
        version: Some(2),
        resolved: Some(template(2)),
    })?;
    let s = signed_apply(&fx, channel.id(), &body, Some(template(1).id))?;
    let answer = call_sealed(
        &fx,
        &channel,
        &s.nonce,
        &Fixture::forward(s.header),
        Some(&body),
    )
    .await?;
    let Answer::Sealed(Reply::Error(e), _) = answer else {
        bail!("a template other than the signed one was applied: {answer:?}");
    };
    ensure!(
        e.message.contains("not the one the signed header names"),
        "{e}"
    );
    // A viewer's signed template is refused by role, whatever it carries.
    let viewer = Fixture::new(Role::Viewer, now())?;
    let channel = open_channel(&viewer, &viewer.certs).await?;
    let t = template(2);
    let s = signed_apply(&viewer, channel.id(), &body, Some(t.id))?;
    let answer = call_sealed(
        &viewer,
        &channel,
        &s.nonce,
        &Fixture::forward(s.header),
        Some(&body),
    )
    .await?;
    let Answer::Refused(e) = answer else {
        bail!("a viewer applied a template: {answer:?}");
    };
    ensure!(e.code == proto::wire_error::ErrorCode::Forbidden, "{e}");
    Ok(())
}
