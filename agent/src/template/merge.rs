//! Lays a checked template over the host's generated `opencode.json` (pure). The host's config
//! stays the base: only [`OPENCODE_KEYS`] are laid over it, `permission` is merged key by key
//! (a value can only get stricter, and a pattern map keeps the host's value as its catch-all
//! `*`, so nothing falls back to OpenCode's permissive defaults), and `mcp` is added. The
//! host's safety keys (`autoupdate`, `share`, providers, `external_directory`) never change.

use proto::template::{OPENCODE_KEYS, TemplateContent};
use serde_json::{Map, Value};

/// Merges `template` into `base` (the output of `opencode::launch::opencode_json`). The
/// template must have passed [`super::check`]; the merge is still defensive about permissions.
pub fn merge(base: &mut Value, template: &TemplateContent) {
    let Some(obj) = base.as_object_mut() else {
        return;
    };
    for (key, value) in &template.opencode {
        if !OPENCODE_KEYS.contains(&key.as_str()) {
            continue;
        }
        if key == "permission" {
            let host = obj
                .entry("permission")
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(host), Some(t)) = (host.as_object_mut(), value.as_object()) {
                merge_permission(host, t);
            }
            continue;
        }
        obj.insert(key.clone(), value.clone());
    }
    if !template.mcp.is_empty() {
        let servers: Map<String, Value> = template
            .mcp
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), serde_json::to_value(s).ok()?)))
            .collect();
        obj.insert("mcp".into(), Value::Object(servers));
    }
}

fn rank(action: &str) -> Option<u8> {
    match action {
        "allow" => Some(0),
        "ask" => Some(1),
        "deny" => Some(2),
        _ => None,
    }
}

/// The stricter of two actions (an unknown one counts as `deny`).
fn stricter<'a>(a: &'a str, b: &'a str) -> &'a str {
    if rank(a).unwrap_or(2) >= rank(b).unwrap_or(2) {
        a
    } else {
        b
    }
}

fn merge_permission(host: &mut Map<String, Value>, template: &Map<String, Value>) {
    for (key, t) in template {
        if key == "external_directory" {
            // Always the host's `deny`.
            continue;
        }
        let merged = match (host.get(key), t) {
            (None, t) => t.clone(),
            (Some(Value::String(h)), Value::String(t)) => Value::String(stricter(h, t).to_owned()),
            (Some(Value::String(h)), Value::Object(patterns)) => {
                // The host's value first, as the catch-all; every pattern at least as strict.
                let mut m = Map::new();
                m.insert("*".into(), Value::String(h.clone()));
                for (p, a) in patterns {
                    let a = a.as_str().unwrap_or("deny");
                    m.insert(p.clone(), Value::String(stricter(a, h).to_owned()));
                }
                Value::Object(m)
            }
            // The host only writes plain actions; anything else keeps the host's.
            (Some(h), _) => h.clone(),
        };
        host.insert(key.clone(), merged);
    }
}

/// The `{env:NAME}` names the template references: the host passes exactly these (all in its
/// `template_env`, which the check made sure of) to OpenCode's environment.
pub fn env_names(template: &TemplateContent) -> Vec<String> {
    let mut names = serde_json::to_value(template)
        .map(|v| crate::env_refs::env_refs_in(&v))
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

// Tested over the host's generated config in `opencode/template_merge_tests.rs`.
