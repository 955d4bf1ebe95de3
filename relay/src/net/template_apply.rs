//! `template_apply` in the request path: the relay reads the operator's body (bounded by the
//! frame limit and the handshake timeout, as for prompts), refuses one that carries content of
//! its own (`resolved`: only published versions are applied), looks the named version up in
//! its store and puts the body back with `resolved` set to the stored [`Template`], for the
//! agent to check (its hash) and merge under the host's policy.

use super::Shared;
use super::error::RequestError;
use super::templates::{TemplateError, lookup};
use crate::framed::FramedRecv;
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use proto::template::{Template, TemplateApply, TemplateRef};

/// What the stream's audit row says about the template applied.
pub(crate) fn note(t: &TemplateRef) -> String {
    format!("template {} v{} {}", t.name, t.version, t.hash)
}

/// The body with the stored version filled in.
///
/// # Errors
/// [`TemplateError::ContentFromOperator`] for a body that already carries content.
pub(crate) fn resolved(
    mut apply: TemplateApply,
    template: Template,
) -> Result<TemplateApply, TemplateError> {
    if apply.resolved.is_some() {
        return Err(TemplateError::ContentFromOperator);
    }
    apply.version = Some(template.id.version);
    apply.resolved = Some(template);
    Ok(apply)
}

/// Reads the body, resolves the template, puts the resolved body back into `recv`, and returns
/// the audit note.
///
/// # Errors
/// No body in time, a body that is not a `template_apply`, content from the operator, an
/// unknown template or version, a stored version whose hash does not match, store failures.
pub(crate) async fn resolve(
    shared: &Shared,
    recv: &mut FramedRecv,
) -> Result<String, RequestError> {
    recv.set_max_len(MAX_FRAME_LEN);
    let body = super::body::read_raw(recv, Op::TemplateApply, shared.config.handshake_timeout)
        .await?
        .ok_or(RequestError::NoBody(Op::TemplateApply))?;
    let apply: TemplateApply =
        proto::frame::parse_json(&body).map_err(|e| RequestError::BadBody {
            op: Op::TemplateApply,
            detail: e.to_string(),
        })?;
    if apply.resolved.is_some() {
        // Before any lookup: the operator's content is never looked at.
        return Err(TemplateError::ContentFromOperator.into());
    }
    let template = lookup(shared, &apply.name, apply.version).await?;
    if !template.hash_matches() {
        return Err(RequestError::Internal(format!(
            "stored template {} v{} does not match its hash",
            template.id.name, template.id.version
        )));
    }
    let note = note(&template.id);
    let apply = resolved(apply, template)?;
    let bytes = serde_json::to_vec(&apply).map_err(|e| RequestError::Internal(e.to_string()))?;
    recv.unread_frame(&bytes);
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::{TemplateContent, content_hash};

    fn stored() -> Template {
        let content = TemplateContent::default();
        Template {
            id: TemplateRef {
                name: "team".into(),
                version: 3,
                hash: content_hash(&content),
            },
            author: "alice".into(),
            published_ms: 1,
            content,
        }
    }

    #[test]
    fn an_operator_cannot_send_template_content_of_its_own() {
        let apply = TemplateApply {
            name: "team".into(),
            version: None,
            resolved: Some(stored()),
        };
        assert!(matches!(
            resolved(apply, stored()),
            Err(TemplateError::ContentFromOperator)
        ));
    }

    #[test]
    fn the_stored_version_is_filled_in() {
        let apply = TemplateApply {
            name: "team".into(),
            version: None,
            resolved: None,
        };
        let out = resolved(apply, stored()).unwrap();
        assert_eq!(out.version, Some(3));
        assert_eq!(out.resolved, Some(stored()));
        assert!(note(&stored().id).starts_with("template team v3 blake3:"));
    }
}
