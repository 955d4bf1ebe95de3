//! `template_apply` in the request path: the relay reads the operator's body (bounded by the
//! frame limit and the handshake timeout, as for prompts), refuses one that carries content of
//! its own (`resolved`: only published versions are applied), looks the named version up in
//! its store and puts the body back with `resolved` set to the stored [`Template`], for the
//! agent to check (its hash) and merge under the host's policy.
//!
//! On an end-to-end channel (a zero-trust host) the relay cannot read the body: the operator's
//! laptop fetched the published template and sent it sealed, and the host checks the
//! operator's signature over it. The relay audits the template the signed header names
//! ([`sealed_note`]) and forwards the body as it came.

use super::Shared;
use super::error::RequestError;
use super::templates::{TemplateError, lookup};
use crate::framed::FramedRecv;
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::template::{Template, TemplateApply, TemplateRef};
use proto::text::printable_id;

/// What the stream's audit row says about the template applied.
pub(crate) fn note(t: &TemplateRef) -> String {
    format!("template {} v{} {}", t.name, t.version, t.hash)
}

/// The audit note of a sealed `template_apply`: the template its signed header names (as
/// claimed: the host checks the sealed body carries that very template).
///
/// # Errors
/// A signed header that names no template (an older `cm-tui`).
pub(crate) fn sealed_note(header: &StreamHeader) -> Result<String, RequestError> {
    header
        .auth
        .as_ref()
        .and_then(super::trust::signed_fields)
        .and_then(|f| f.template)
        .map(|t| {
            // Operator-supplied text, unverified here: only printable characters reach the log.
            let name = printable_id(&t.name);
            let hash = if is_content_hash(&t.hash) {
                t.hash.clone()
            } else {
                "<not a content hash>".to_owned()
            };
            format!("template {name} v{} {hash} (sealed)", t.version)
        })
        .ok_or_else(|| RequestError::BadBody {
            op: Op::TemplateApply,
            detail:
                "a sealed template_apply must name its template in the signed header; update cm-tui"
                    .into(),
        })
}

/// Whether `h` has the shape of [`proto::template::content_hash`]: `blake3:` and 64 hex digits.
fn is_content_hash(h: &str) -> bool {
    h.strip_prefix("blake3:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
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

    #[test]
    fn a_sealed_apply_is_noted_by_its_signed_template_and_odd_text_is_not_logged() {
        use proto::ids::{HostId, ReqId};
        use proto::trust::header::{SignInput, sign};
        let key = proto::trust::DeviceKey::from_seed([1; 32]).unwrap();
        let header = |template: Option<TemplateRef>| {
            let mut h = StreamHeader::new(Op::TemplateApply, ReqId(1));
            h.host = Some(HostId::from("box"));
            sign(
                &mut h,
                SignInput {
                    user: &"olga".into(),
                    key: &key,
                    nonce: [1; 16],
                    now_ms: 1,
                    body: None,
                    channel: Some("00".repeat(16)),
                    template,
                },
            )
            .unwrap();
            h
        };
        let good = stored().id;
        assert_eq!(
            sealed_note(&header(Some(good.clone()))).unwrap(),
            format!("template team v3 {} (sealed)", good.hash)
        );
        let odd = TemplateRef {
            name: "te\u{1b}[2Jam".into(),
            version: 1,
            hash: "blake3:\n forged".into(),
        };
        let note = sealed_note(&header(Some(odd))).unwrap();
        assert!(!note.contains('\u{1b}') && !note.contains('\n'), "{note:?}");
        assert!(note.contains("<not a content hash>"), "{note}");
        assert!(sealed_note(&header(None)).is_err());
    }
}
