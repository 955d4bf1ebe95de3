//! `mcp_list`'s answer (pure): OpenCode's `GET /mcp` status map joined with the applied
//! template's definitions.

use proto::template::{McpServerInfo, Template};
use serde_json::Value;

/// The servers: every one OpenCode reports (`status`: its `GET /mcp` answer, `None` when it is
/// not running) and every one the template defines (`stopped` when OpenCode is not running),
/// sorted by name.
pub fn mcp_servers(status: Option<&Value>, template: Option<&Template>) -> Vec<McpServerInfo> {
    let defined = template.map(|t| &t.content.mcp);
    let mut out: Vec<McpServerInfo> = Vec::new();
    if let Some(map) = status.and_then(Value::as_object) {
        for (name, s) in map {
            let def = defined.and_then(|d| d.get(name));
            out.push(McpServerInfo {
                name: name.clone(),
                kind: def.map_or("unknown", |d| d.kind()).to_owned(),
                status: s
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                error: s.get("error").and_then(Value::as_str).map(str::to_owned),
                template: def.and(template).map(|t| t.id.clone()),
            });
        }
    }
    if let (Some(t), Some(defs)) = (template, defined) {
        for (name, def) in defs {
            if out.iter().any(|s| &s.name == name) {
                continue;
            }
            out.push(McpServerInfo {
                name: name.clone(),
                kind: def.kind().to_owned(),
                status: if status.is_some() {
                    "unknown"
                } else {
                    "stopped"
                }
                .to_owned(),
                error: None,
                template: Some(t.id.clone()),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::{TemplateContent, TemplateRef, content_hash};
    use serde_json::json;

    fn template() -> Template {
        let content: TemplateContent = serde_json::from_value(json!({
            "mcp": {"docs": {"type": "remote", "url": "https://mcp.example.com/d"},
                    "fmt": {"type": "local", "command": ["x"]}}
        }))
        .unwrap();
        Template {
            id: TemplateRef {
                name: "team".into(),
                version: 1,
                hash: content_hash(&content),
            },
            author: "a".into(),
            published_ms: 0,
            content,
        }
    }

    #[test]
    fn running_opencodes_status_is_joined_with_the_templates_definitions() {
        let t = template();
        let status = json!({"docs": {"status": "failed", "error": "connection refused"},
                            "other": {"status": "connected"}});
        let got = mcp_servers(Some(&status), Some(&t));
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["docs", "fmt", "other"]);
        assert_eq!(got[0].kind, "remote");
        assert_eq!(got[0].status, "failed");
        assert_eq!(got[0].error.as_deref(), Some("connection refused"));
        assert_eq!(got[0].template, Some(t.id.clone()));
        assert_eq!(got[1].status, "unknown");
        assert_eq!(got[2].kind, "unknown");
        assert_eq!(got[2].template, None);
    }

    #[test]
    fn without_opencode_the_templates_servers_are_stopped() {
        let t = template();
        let got = mcp_servers(None, Some(&t));
        assert_eq!(got.len(), 2);
        assert!(
            got.iter()
                .all(|s| s.status == "stopped" && s.template.is_some())
        );
        assert!(mcp_servers(None, None).is_empty());
    }
}
