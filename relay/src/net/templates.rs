//! The relay's OpenCode config templates: list and show (any grant), publish (admin on every
//! host; `authz::decide` treats it as administration of the relay). A publish is checked here
//! ([`check_publish`]: name, OpenCode keys, MCP server names, size), hashed with
//! [`content_hash`], stored as the next version and audited in the same writer job.

use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use crate::audit_event::Audit;
use crate::store::Published;
use crate::time::now_ms;
use proto::op;
use proto::template::{
    MAX_CONTENT_LEN, OPENCODE_KEYS, Template, TemplatePublish, TemplateQuery, TemplateSummary,
    content_hash, valid_name,
};

/// The largest `template_publish` body frame: content up to [`MAX_CONTENT_LEN`] and the rest
/// of the body (larger content is refused by [`check_publish`], with its size).
pub(crate) const PUBLISH_FRAME_LEN: usize = MAX_CONTENT_LEN + proto::frame::MAX_HEADER_LEN;

/// Why a template request is refused (each message says what to do).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    /// Not a template name.
    #[error(
        "{0:?} is not a valid template name: 1 to {max} bytes of a-z, 0-9, '.', '_' and '-', \
         starting with a letter or digit",
        max = proto::template::MAX_NAME_LEN
    )]
    BadName(String),
    /// OpenCode keys a template may not set.
    #[error(
        "a template may not set the OpenCode key(s) {}; it may set only: {}",
        .0.join(", "),
        OPENCODE_KEYS.join(", ")
    )]
    UnknownKeys(Vec<String>),
    /// An MCP server name that is not plain.
    #[error(
        "{0:?} is not a valid MCP server name: the same rule as template names (a-z, 0-9, '.', \
         '_', '-', starting with a letter or digit)"
    )]
    BadMcpName(String),
    /// Content larger than [`MAX_CONTENT_LEN`].
    #[error("the template content is {0} bytes as JSON; at most {MAX_CONTENT_LEN} are allowed")]
    TooLarge(usize),
    /// No template of that name.
    #[error("no template named {0}; `cm-tui template list` shows the published ones")]
    Unknown(String),
    /// The template has no such version.
    #[error(
        "template {name} has no version {version} (the latest is v{latest}); \
         `cm-tui template show {name}` shows the latest"
    )]
    UnknownVersion {
        /// The template.
        name: String,
        /// The version asked for.
        version: u32,
        /// Its latest version.
        latest: u32,
    },
    /// A `template_apply` body carrying content of its own.
    #[error(
        "template_apply: the request carries template content (`resolved`); send only the name \
         (and version): the relay applies published versions only"
    )]
    ContentFromOperator,
}

/// The publish rules: a template name, only [`OPENCODE_KEYS`], plain MCP server names, at
/// most [`MAX_CONTENT_LEN`] bytes of JSON.
///
/// # Errors
/// The first rule broken.
pub(crate) fn check_publish(p: &TemplatePublish) -> Result<(), TemplateError> {
    if !valid_name(&p.name) {
        return Err(TemplateError::BadName(shown(&p.name)));
    }
    let unknown = p.content.unknown_keys();
    if !unknown.is_empty() {
        let mut named: Vec<String> = unknown.iter().take(MAX_NAMED).map(|k| shown(k)).collect();
        if unknown.len() > MAX_NAMED {
            named.push(format!("and {} more", unknown.len() - MAX_NAMED));
        }
        return Err(TemplateError::UnknownKeys(named));
    }
    if let Some(bad) = p.content.mcp.keys().find(|n| !valid_name(n)) {
        return Err(TemplateError::BadMcpName(shown(bad)));
    }
    let len = serde_json::to_vec(&p.content).map_or(usize::MAX, |v| v.len());
    if len > MAX_CONTENT_LEN {
        return Err(TemplateError::TooLarge(len));
    }
    Ok(())
}

/// How many refused keys an error names (the audit row keeps the message).
const MAX_NAMED: usize = 10;

/// A name as quoted in an error and its audit row: printable, at most a line's worth of an
/// operator's text.
pub(crate) fn shown(name: &str) -> String {
    const MAX: usize = 80;
    let name = proto::text::sanitize_line(name);
    if name.chars().count() <= MAX {
        return name;
    }
    let mut cut: String = name.chars().take(MAX).collect();
    cut.push('…');
    cut
}

/// Why `name` (version `version`) was not found: no such template, or no such version of it.
pub(crate) fn not_found(name: &str, version: Option<u32>, latest: Option<u32>) -> TemplateError {
    match (version, latest) {
        (Some(version), Some(latest)) => TemplateError::UnknownVersion {
            name: name.to_owned(),
            version,
            latest,
        },
        _ => TemplateError::Unknown(shown(name)),
    }
}

/// The stored version `name` / `version` names.
///
/// # Errors
/// [`TemplateError::Unknown`] / [`TemplateError::UnknownVersion`], or a store failure.
pub(crate) async fn lookup(
    shared: &super::Shared,
    name: &str,
    version: Option<u32>,
) -> Result<Template, RequestError> {
    if !valid_name(name) {
        return Err(TemplateError::Unknown(shown(name)).into());
    }
    let n = name.to_owned();
    let (found, latest) = shared
        .store
        .read(move |s| {
            let found = s.template(&n, version)?;
            let latest = match (&found, version) {
                (None, Some(_)) => s.template(&n, None)?.map(|t| t.id.version),
                _ => None,
            };
            Ok((found, latest))
        })
        .await?;
    found.ok_or_else(|| not_found(name, version, latest).into())
}

impl LocalHandler for op::TemplateList {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<Vec<TemplateSummary>, RequestError> {
        Ok(cx.shared.store.read(|s| s.list_templates()).await?)
    }
}

impl LocalHandler for op::TemplateShow {
    async fn handle(cx: &mut Cx<'_>, q: TemplateQuery) -> Result<Template, RequestError> {
        lookup(cx.shared, &q.name, q.version).await
    }
}

impl LocalHandler for op::TemplatePublish {
    async fn handle(cx: &mut Cx<'_>, p: TemplatePublish) -> Result<TemplateSummary, RequestError> {
        cx.done.target = Some(shown(&p.name));
        check_publish(&p)?;
        let hash = content_hash(&p.content);
        let (actor, role) = (cx.principal.user.clone(), cx.role);
        let published: Published = cx
            .shared
            .store
            .call(move |s| {
                let now = now_ms();
                let published =
                    s.publish_template(&p.name, actor.as_str(), &p.content, &hash, now)?;
                let row = Audit::TemplatePublished {
                    actor,
                    role,
                    template: published.template.id.clone(),
                    new: published.new,
                }
                .row();
                s.audit(now, &row)?;
                Ok(published)
            })
            .await?;
        Ok(published.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::TemplateContent;
    use serde_json::json;

    fn publish(content: serde_json::Value) -> TemplatePublish {
        TemplatePublish {
            name: "team".into(),
            content: serde_json::from_value::<TemplateContent>(content).unwrap(),
        }
    }

    #[test]
    fn unknown_opencode_keys_are_named_with_the_allowed_ones() {
        let e = check_publish(&publish(
            json!({"opencode": {"provider": {}, "model": "a/b"}}),
        ))
        .unwrap_err();
        let m = e.to_string();
        assert!(m.contains("provider"), "{m}");
        for key in OPENCODE_KEYS {
            assert!(m.contains(key), "{m} lacks {key}");
        }
    }

    #[test]
    fn names_mcp_names_and_size_are_checked() {
        let mut p = publish(json!({"opencode": {"model": "a/b"}}));
        assert!(check_publish(&p).is_ok());
        p.name = "../etc".into();
        assert!(matches!(check_publish(&p), Err(TemplateError::BadName(_))));
        let p = publish(json!({"mcp": {"Bad Name": {"type": "remote", "url": "https://a"}}}));
        assert!(matches!(
            check_publish(&p),
            Err(TemplateError::BadMcpName(_))
        ));
        let big = "x".repeat(MAX_CONTENT_LEN);
        let p = publish(json!({"description": big}));
        assert!(matches!(check_publish(&p), Err(TemplateError::TooLarge(_))));
    }

    #[test]
    fn refused_keys_are_named_printable_and_at_most_ten() {
        let keys: serde_json::Map<String, serde_json::Value> = (0..50)
            .map(|i| (format!("k{i:02}\u{1b}[2J"), json!(1)))
            .collect();
        let e = check_publish(&publish(json!({ "opencode": keys }))).unwrap_err();
        let m = e.to_string();
        assert!(!m.contains('\u{1b}'), "{m}");
        assert!(m.contains("k09") && !m.contains("k10"), "{m}");
        assert!(m.contains("and 40 more"), "{m}");
    }

    #[test]
    fn an_operators_long_name_is_cut_in_errors() {
        let long = "a".repeat(10_000);
        assert!(not_found(&long, None, None).to_string().len() < 300);
        assert!(
            not_found("team", Some(9), Some(2))
                .to_string()
                .contains("latest is v2")
        );
    }
}
