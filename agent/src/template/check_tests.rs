use super::*;
use crate::config::ToolPermission;
use proto::template::{TemplateContent, TemplateRef, content_hash};
use serde_json::json;

fn template(content: Value) -> Template {
    let content: TemplateContent = serde_json::from_value(content).unwrap();
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

fn open_policy() -> TemplatePolicy {
    TemplatePolicy {
        enabled: true,
        local_mcp: true,
        mcp_urls: vec!["https://mcp.example.com/*".into()],
        env: vec!["DOCS_TOKEN".into()],
    }
}

/// The violations of `content` on a host with `policy`, models `allowed` and workspace
/// permissions `ws`.
fn refused(
    content: Value,
    policy: &TemplatePolicy,
    allowed: &[String],
    ws: &ToolPermissions,
) -> Vec<String> {
    let t = template(content);
    let host = HostLimits {
        policy,
        allowed_models: allowed,
        permissions: ws,
    };
    match check(&t, &host) {
        Ok(()) => Vec::new(),
        Err(e) => {
            assert_eq!(e.template, "team v3");
            e.violations
        }
    }
}

fn on_default_host(content: Value) -> Vec<String> {
    refused(
        content,
        &TemplatePolicy::default(),
        &[],
        &ToolPermissions::default(),
    )
}

fn on_open_host(content: Value) -> Vec<String> {
    refused(content, &open_policy(), &[], &ToolPermissions::default())
}

fn one(v: &[String], needle: &str) {
    assert!(
        v.len() == 1 && v[0].contains(needle),
        "expected one violation containing {needle:?}, got {v:#?}"
    );
}

#[test]
fn a_template_within_the_host_policy_passes() {
    let v = on_open_host(json!({
        "description": "rust team",
        "opencode": {
            "model": "test/test-model",
            "small_model": "test/test-model",
            "default_agent": "review",
            "instructions": ["AGENTS.md", "docs/rules.md"],
            "permission": {"bash": {"git *": "ask", "*": "deny"}, "edit": "ask", "read": "ask",
                           "external_directory": "deny"},
            "agent": {"review": {"model": "test/test-model", "prompt": "Review.",
                                 "permission": {"edit": "deny"}, "tools": {"bash": false}}}
        },
        "mcp": {
            "docs": {"type": "remote", "url": "https://mcp.example.com/docs",
                     "headers": {"Authorization": "Bearer {env:DOCS_TOKEN}"}},
            "fmt": {"type": "local", "command": ["fmt-mcp"]}
        }
    }));
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn a_host_with_templates_off_refuses_every_template() {
    let off = TemplatePolicy {
        enabled: false,
        ..open_policy()
    };
    let v = refused(
        json!({"description": "x"}),
        &off,
        &[],
        &ToolPermissions::default(),
    );
    one(&v, "templates = false");
}

#[test]
fn an_altered_template_is_refused() {
    let mut t = template(json!({"opencode": {"permission": {"bash": "deny"}}}));
    t.content
        .opencode
        .insert("permission".into(), json!({"bash": "allow"}));
    let policy = open_policy();
    let ws = ToolPermissions::default();
    let e = check(
        &t,
        &HostLimits {
            policy: &policy,
            allowed_models: &[],
            permissions: &ws,
        },
    )
    .unwrap_err();
    one(&e.violations, "does not match its hash");
}

#[test]
fn local_mcp_server_on_a_default_host_is_refused() {
    let v = on_default_host(json!({"mcp": {"fmt": {"type": "local", "command": ["x"]}}}));
    one(&v, "template_local_mcp = false");
}

#[test]
fn remote_mcp_url_not_allowed_by_the_host_is_refused() {
    let v = on_default_host(
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d"}}}),
    );
    one(&v, "template_mcp_urls is empty");
    for (url, why) in [
        ("https://evil.example.net/d", "matches none"),
        ("https://mcp.example.com.evil.net/d", "matches none"),
        ("https://u:p@mcp.example.com/d", "user part"),
        ("https://mcp.example.com/a/../../x", ". or .."),
        ("https://mcp.example.com/\u{e9}", "ASCII"),
        ("ssh://mcp.example.com/d", "https:// or http://"),
    ] {
        let v = on_open_host(json!({"mcp": {"d": {"type": "remote", "url": url}}}));
        one(&v, why);
    }
}

#[test]
fn env_name_the_host_does_not_offer_is_refused() {
    for content in [
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
                             "headers": {"X": "{env:AWS_SECRET_ACCESS_KEY}"}}}}),
        json!({"mcp": {"l": {"type": "local", "command": ["x"],
                             "environment": {"X": "{env:AWS_SECRET_ACCESS_KEY}"}}}}),
    ] {
        let v = on_open_host(content);
        one(&v, "{env:AWS_SECRET_ACCESS_KEY} is not offered");
    }
}

#[test]
fn env_references_outside_mcp_header_and_environment_values_are_refused() {
    for content in [
        json!({"opencode": {"agent": {"a": {"prompt": "key {env:AWS_SECRET_ACCESS_KEY}"}}}}),
        json!({"opencode": {"agent": {"a": {"prompt": "{env:DOCS_TOKEN}"}}}}),
        json!({"mcp": {"l": {"type": "local", "command": ["x", "{env:DOCS_TOKEN}"]}}}),
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/{env:DOCS_TOKEN}"}}}),
        json!({"description": "{env:DOCS_TOKEN}"}),
    ] {
        let v = on_open_host(content.clone());
        assert!(
            v.iter().any(|s| s.contains("only in the values of an MCP server's headers or environment")),
            "{content}: {v:#?}"
        );
    }
}

#[test]
fn file_references_are_refused_anywhere() {
    for content in [
        json!({"opencode": {"agent": {"a": {"prompt": "{file:/etc/passwd}"}}}}),
        json!({"opencode": {"model": "{file:~/.ssh/id_rsa}"}}),
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
                             "headers": {"X": "{file:./secret}"}}}}),
        json!({"opencode": {"agent": {"{file:/etc/shadow}": {}}}}),
        json!({"description": "see {file:notes}"}),
    ] {
        let v = on_open_host(content.clone());
        assert!(
            v.iter().any(|x| x.contains("{file:…} is refused")),
            "{content}: {v:#?}"
        );
    }
}

#[test]
fn loosening_bash_top_level_is_refused() {
    let v = on_default_host(json!({"opencode": {"permission": {"bash": "allow"}}}));
    one(
        &v,
        "opencode.permission.bash = allow would loosen this host's ask",
    );
    // A workspace that denies: even ask loosens.
    let ws = ToolPermissions {
        bash: ToolPermission::Deny,
        ..ToolPermissions::default()
    };
    let v = refused(
        json!({"opencode": {"permission": {"bash": "ask"}}}),
        &TemplatePolicy::default(),
        &[],
        &ws,
    );
    one(&v, "would loosen this host's deny");
    // A workspace that allows: the template may tighten.
    let ws = ToolPermissions {
        edit: ToolPermission::Allow,
        ..ToolPermissions::default()
    };
    let v = refused(
        json!({"opencode": {"permission": {"edit": "ask"}}}),
        &TemplatePolicy::default(),
        &[],
        &ws,
    );
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn loosening_bash_in_a_pattern_map_is_refused() {
    let v = on_default_host(
        json!({"opencode": {"permission": {"bash": {"git *": "allow", "*": "ask"}}}}),
    );
    one(
        &v,
        "opencode.permission.bash[\"git *\"] = allow would loosen",
    );
}

#[test]
fn loosening_in_an_agents_permission_is_refused() {
    let v = on_default_host(
        json!({"opencode": {"agent": {"yolo": {"permission": {"bash": "allow", "webfetch": "deny"}}}}}),
    );
    one(&v, "opencode.agent.yolo.permission.bash = allow");
    let v = on_default_host(json!({"opencode": {"agent": {"yolo": {"tools": {"bash": true}}}}}));
    one(&v, "may only disable tools");
}

#[test]
fn external_directory_other_than_deny_is_refused() {
    for value in [json!("ask"), json!("allow"), json!({"/tmp/*": "allow"})] {
        let v = on_default_host(json!({"opencode": {"permission": {"external_directory": value}}}));
        one(&v, "paths outside the workspace are always denied");
        let v = on_default_host(
            json!({"opencode": {"agent": {"a": {"permission": {"external_directory": value}}}}}),
        );
        one(&v, "paths outside the workspace are always denied");
    }
    // Wildcard permission names would cover external_directory too.
    let v = on_default_host(json!({"opencode": {"permission": {"*": "ask"}}}));
    one(&v, "wildcard");
    // Keys the host does not set: ask or deny only.
    let v = on_default_host(json!({"opencode": {"permission": {"read": "allow"}}}));
    one(&v, "only make it ask or deny");
    let v = on_default_host(json!({"opencode": {"permission": {"bash": "sometimes"}}}));
    one(&v, "must be \"allow\", \"ask\" or \"deny\"");
}

#[test]
fn model_not_allowed_by_the_host_is_refused() {
    let allowed = vec!["test/*".to_owned()];
    let ws = ToolPermissions::default();
    let policy = TemplatePolicy::default();
    for (content, at) in [
        (json!({"opencode": {"model": "paid/big"}}), "opencode.model"),
        (
            json!({"opencode": {"small_model": "paid/small"}}),
            "opencode.small_model",
        ),
        (
            json!({"opencode": {"agent": {"a": {"model": "paid/big"}}}}),
            "opencode.agent.a.model",
        ),
    ] {
        let v = refused(content, &policy, &allowed, &ws);
        one(&v, &format!("{at}: model"));
        assert!(v[0].contains("test/*"), "{v:?}");
    }
    let v = refused(
        json!({"opencode": {"model": "test/test-model"}}),
        &policy,
        &allowed,
        &ws,
    );
    assert!(v.is_empty());
    // No restriction: any model.
    assert!(on_default_host(json!({"opencode": {"model": "paid/big"}})).is_empty());
    one(
        &on_default_host(json!({"opencode": {"model": 3}})),
        "must be a string",
    );
}

#[test]
fn unknown_key_is_refused() {
    let v = on_default_host(json!({"opencode": {"provider": {}, "autoupdate": true}}));
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(
        v.iter()
            .any(|x| x.contains("opencode.provider may not be set"))
    );
    let v = on_default_host(
        json!({"opencode": {"agent": {"a": {"options": {"baseURL": "http://x"}}}}}),
    );
    one(&v, "opencode.agent.a.options may not be set");
}

#[test]
fn instructions_escaping_the_root_are_refused() {
    for (path, why) in [
        ("/etc/passwd", "is absolute"),
        ("~/.ssh/config", "is absolute"),
        ("../other/AGENTS.md", "leaves the workspace"),
        ("docs/../../x", "leaves the workspace"),
        ("https://example.com/rules.md", "is a URL"),
        ("C:/x", "is absolute"),
        ("", "is empty"),
    ] {
        let v = on_default_host(json!({"opencode": {"instructions": [path]}}));
        one(&v, why);
    }
    one(
        &on_default_host(json!({"opencode": {"instructions": "AGENTS.md"}})),
        "must be a list",
    );
    assert!(
        on_default_host(json!({"opencode": {"instructions": ["a..b.md", "docs/x.md"]}})).is_empty()
    );
}

#[test]
fn every_violation_is_listed_in_one_refusal() {
    let t = template(json!({
        "opencode": {"provider": {}, "permission": {"bash": "allow"}},
        "mcp": {"fmt": {"type": "local", "command": ["x"]}}
    }));
    let policy = TemplatePolicy::default();
    let ws = ToolPermissions::default();
    let e = check(
        &t,
        &HostLimits {
            policy: &policy,
            allowed_models: &[],
            permissions: &ws,
        },
    )
    .unwrap_err();
    assert_eq!(e.violations.len(), 3, "{:#?}", e.violations);
    let text = e.to_string();
    for needle in [
        "team v3",
        "opencode.provider",
        "bash = allow",
        "template_local_mcp",
        "agent.toml",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

#[test]
fn an_unterminated_env_reference_that_could_swallow_host_keys_is_refused() {
    // OpenCode substitutes `{env:…}` in its config *text*: an unclosed one in one string and a
    // `}` in a later string would erase everything between (the host's own keys).
    let v = on_open_host(
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
        "headers": {"A": "x {env:", "B": "}"}}}}),
    );
    one(&v, "unterminated {env:");
    let v = on_open_host(
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
        "headers": {"A": "{env:DOCS_TOKEN} {env:"}}}}),
    );
    one(&v, "unterminated {env:");
}

#[test]
fn a_file_reference_split_by_an_env_reference_is_refused() {
    // OpenCode substitutes `{env:…}` in its whole config text first (a variable it is not
    // given becomes ""), then `{file:…}`: the pieces must not form a file reference.
    for content in [
        json!({"opencode": {"agent": {"{fi{env:DOCS_TOKEN}le:/home/agent/secret}": {"prompt": "x"}}}}),
        json!({"opencode": {"agent": {"{fi{env:NOT_OFFERED}le:/home/agent/secret}": {"prompt": "x"}}}}),
        json!({"opencode": {"agent": {"a": {"prompt": "{fi{env:DOCS_TOKEN}le:/home/agent/secret}"}}}}),
    ] {
        let v = on_open_host(content.clone());
        assert!(
            v.iter().any(|s| s.contains("only in the values of an MCP server's headers or environment")),
            "{content}: {v:#?}"
        );
    }
    let v = on_open_host(
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
        "headers": {"X": "{fi{env:DOCS_TOKEN}le:/home/agent/secret}"}}}}),
    );
    one(&v, "may not hold '{' or '}'");
    let v = on_open_host(json!({"mcp": {"l": {"type": "local", "command": ["x"],
        "environment": {"X": "{fi{env:DOCS_TOKEN}le:/home/agent/secret}"}}}}));
    one(&v, "may not hold '{' or '}'");
    // A header name is a key, never a place for a reference.
    let v = on_open_host(
        json!({"mcp": {"d": {"type": "remote", "url": "https://mcp.example.com/d",
        "headers": {"{env:DOCS_TOKEN}": "x"}}}}),
    );
    one(
        &v,
        "only in the values of an MCP server's headers or environment",
    );
}

#[test]
fn env_references_in_mcp_header_and_environment_values_still_pass() {
    let v = on_open_host(json!({"mcp": {
        "d": {"type": "remote", "url": "https://mcp.example.com/d",
              "headers": {"Authorization": "Bearer {env:DOCS_TOKEN}"}},
        "l": {"type": "local", "command": ["x"], "environment": {"TOKEN": "{env:DOCS_TOKEN}"}}
    }}));
    assert!(v.is_empty(), "{v:?}");
}

#[test]
fn instructions_with_glob_patterns_that_could_escape_are_refused() {
    // OpenCode globs instructions: a brace pattern passes the `..` test segment by segment.
    for path in ["{..,a}/x.md", "docs/*.md", "a?.md", "[.][.]/x.md", "x}.md"] {
        let v = on_default_host(json!({"opencode": {"instructions": [path]}}));
        one(&v, "is a glob pattern");
    }
}
