//! The template merge laid over the host's generated config (`template/merge.rs`).

use super::opencode_json;
use crate::config::{OpencodeConfig, ToolPermission, ToolPermissions};
use crate::template::merge::*;
use proto::template::TemplateContent;
use serde_json::{Value, json};

fn host() -> Value {
    let cfg = OpencodeConfig {
        model: Some("mock/mock-model".into()),
        provider: json!({"mock": {"options": {"apiKey": "{env:MOCK_KEY}"}}})
            .as_object()
            .cloned(),
        ..OpencodeConfig::default()
    };
    let perms = ToolPermissions {
        edit: ToolPermission::Allow,
        ..ToolPermissions::default()
    };
    opencode_json(&cfg, &perms)
}

fn content(v: Value) -> TemplateContent {
    serde_json::from_value(v).unwrap()
}

#[test]
fn template_keys_are_laid_over_the_host_config_and_mcp_added() {
    let mut v = host();
    merge(
        &mut v,
        &content(json!({
            "description": "team",
            "opencode": {"model": "test/test-model", "default_agent": "review",
                         "instructions": ["AGENTS.md"],
                         "agent": {"review": {"prompt": "Review."}}},
            "mcp": {"docs": {"type": "remote", "url": "https://mcp.example.com/d",
                             "headers": {"A": "{env:DOCS_TOKEN}"}}}
        })),
    );
    assert_eq!(v["model"], "test/test-model");
    assert_eq!(v["default_agent"], "review");
    assert_eq!(v["instructions"], json!(["AGENTS.md"]));
    assert_eq!(v["agent"]["review"]["prompt"], "Review.");
    assert_eq!(
        v["mcp"],
        json!({"docs": {"type": "remote", "url": "https://mcp.example.com/d", "headers": {"A": "{env:DOCS_TOKEN}"}}})
    );
    assert!(v.get("description").is_none());
}

#[test]
fn the_hosts_safety_settings_stay_intact() {
    let before = host();
    let mut v = before.clone();
    // Even unchecked, the merge keeps what the host owns.
    let mut c = content(json!({
        "opencode": {"permission": {"external_directory": "allow", "edit": "allow",
                                    "bash": {"git *": "allow", "rm *": "deny"}, "read": "ask"}}
    }));
    c.opencode.insert("autoupdate".into(), json!(true));
    c.opencode.insert("share".into(), json!("auto"));
    c.opencode.insert("provider".into(), json!({}));
    merge(&mut v, &c);
    for key in ["$schema", "autoupdate", "share", "provider", "model"] {
        assert_eq!(v[key], before[key], "{key}");
    }
    let p = &v["permission"];
    assert_eq!(p["external_directory"], "deny");
    assert_eq!(p["edit"], "allow", "the host's allow, no looser");
    assert_eq!(p["webfetch"], "ask");
    // The host's value stays the catch-all; no pattern ends up looser than it.
    assert_eq!(
        p["bash"],
        json!({"*": "ask", "git *": "ask", "rm *": "deny"})
    );
    assert_eq!(p["read"], "ask");
}

#[test]
fn permissions_only_get_tighter() {
    let mut v = host();
    merge(
        &mut v,
        &content(
            json!({"opencode": {"permission": {"edit": "ask", "bash": "deny",
                                                   "webfetch": {"*": "deny"}}}}),
        ),
    );
    let p = &v["permission"];
    assert_eq!(p["edit"], "ask");
    assert_eq!(p["bash"], "deny");
    assert_eq!(p["webfetch"], json!({"*": "deny"}));
}

#[test]
fn env_names_are_the_referenced_ones() {
    let c = content(json!({
        "opencode": {"agent": {"a": {"prompt": "{env:B} {env:A}"}}},
        "mcp": {"d": {"type": "remote", "url": "https://x/", "headers": {"h": "{env:A}"}}}
    }));
    assert_eq!(env_names(&c), ["A", "B"]);
}
