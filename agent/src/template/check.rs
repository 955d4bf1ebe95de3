//! The host's check of a resolved template (pure): every rule is checked and every violation
//! named, so the operator learns all of them in one refusal.

use super::TemplatePolicy;
use crate::config::{ToolPermission, ToolPermissions};
use proto::template::{McpServer, OPENCODE_KEYS, Template};
use serde_json::Value;
use std::collections::BTreeMap;

/// The keys a template's agent may set. Others (provider `options`, …) stay out.
pub const AGENT_KEYS: &[&str] = &[
    "description",
    "mode",
    "model",
    "prompt",
    "temperature",
    "top_p",
    "permission",
    "tools",
    "disable",
    "hidden",
    "color",
    "steps",
    "maxSteps",
];

/// What the host allows a template in one workspace.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits<'a> {
    /// The `[policy]` template keys.
    pub policy: &'a TemplatePolicy,
    /// `[opencode] allowed_models` (empty: any model).
    pub allowed_models: &'a [String],
    /// The workspace's own tool permissions: the loosest a template may set.
    pub permissions: &'a ToolPermissions,
}

/// A template the host refuses, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "template {template} is refused by this host: {}. The host's agent.toml decides \
     ([policy] template keys, [opencode] allowed_models, the workspace's permission): publish a \
     version within it, or ask the host's owner",
    .violations.join("; ")
)]
pub struct Refused {
    /// `name vN`.
    pub template: String,
    /// Each violation, for operators.
    pub violations: Vec<String>,
}

/// Checks `t` against the host's limits.
///
/// # Errors
/// [`Refused`] listing every violation.
pub fn check(t: &Template, host: &HostLimits<'_>) -> Result<(), Refused> {
    let violations = violations(t, host);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Refused {
            template: format!("{} v{}", t.id.name, t.id.version),
            violations,
        })
    }
}

/// Every violation of `t`, in a stable order, each once.
pub fn violations(t: &Template, host: &HostLimits<'_>) -> Vec<String> {
    if !host.policy.enabled {
        return vec!["this host does not accept templates ([policy] templates = false)".into()];
    }
    if !t.hash_matches() {
        return vec![format!(
            "its content does not match its hash {} (it was altered on its way)",
            t.id.hash
        )];
    }
    let mut out = Vec::new();
    let c = &t.content;
    for k in c.unknown_keys() {
        out.push(format!(
            "opencode.{k} may not be set by a template (only {})",
            OPENCODE_KEYS.join(", ")
        ));
    }
    match serde_json::to_value(c) {
        Ok(v) => strings("", &mut Vec::new(), &v, host.policy, &mut out),
        Err(e) => out.push(format!("its content cannot be read: {e}")),
    }
    for key in ["model", "small_model"] {
        if let Some(m) = c.opencode.get(key) {
            model(&format!("opencode.{key}"), m, host.allowed_models, &mut out);
        }
    }
    if let Some(a) = c.opencode.get("default_agent")
        && !a.is_string()
    {
        out.push("opencode.default_agent must be an agent name (a string)".into());
    }
    if let Some(i) = c.opencode.get("instructions") {
        instructions(i, &mut out);
    }
    if let Some(p) = c.opencode.get("permission") {
        permission("opencode.permission", p, host.permissions, &mut out);
    }
    if let Some(a) = c.opencode.get("agent") {
        agents(a, host, &mut out);
    }
    mcp(&c.mcp, host.policy, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out
}

/// Every key and string: `{file:…}` never; `{env:NAME}` only in the values of an MCP server's
/// `headers` and `environment` ([`env_allowed`]), only for names the host offers, and with no
/// brace around it (OpenCode substitutes `{env:…}` anywhere in its config text first, a
/// variable it is not given becoming "", then `{file:…}`: `{fi{env:X}le:…}` would become a file
/// reference).
fn strings<'a>(
    path: &str,
    keys: &mut Vec<&'a str>,
    v: &'a Value,
    policy: &TemplatePolicy,
    out: &mut Vec<String>,
) {
    match v {
        Value::String(s) => one_string(path, s, env_allowed(keys), policy, out),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                keys.push("[]");
                strings(&format!("{path}[{i}]"), keys, x, policy, out);
                keys.pop();
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                one_string(&at, k, false, policy, out);
                keys.push(k);
                strings(&at, keys, x, policy, out);
                keys.pop();
            }
        }
        _ => {}
    }
}

/// Whether a string value at `keys` (object keys from the template's top, `[]` for list
/// items) may reference `{env:NAME}`: an MCP server's header or environment value.
fn env_allowed(keys: &[&str]) -> bool {
    matches!(keys, ["mcp", _, "headers" | "environment", _])
}

fn one_string(at: &str, s: &str, env_ok: bool, policy: &TemplatePolicy, out: &mut Vec<String>) {
    if s.contains("{file:") {
        out.push(format!(
            "{at}: {{file:…}} is refused (OpenCode would read a file of the host)"
        ));
    }
    if !s.contains("{env:") {
        return;
    }
    if !env_ok {
        out.push(format!(
            "{at}: {{env:…}} may appear only in the values of an MCP server's headers or \
             environment (OpenCode substitutes it anywhere in its config text)"
        ));
    }
    // As OpenCode reads them (`{env:` up to the next `}`), and never left open: an unclosed
    // one would run on into the following strings of the config text.
    let mut rest = s;
    let mut around = String::new();
    while let Some(start) = rest.find("{env:") {
        around.push_str(&rest[..start]);
        let after = &rest[start + 5..];
        let Some(end) = after.find('}') else {
            out.push(format!(
                "{at}: unterminated {{env:…}} (OpenCode would substitute across the config text)"
            ));
            return;
        };
        let name = &after[..end];
        if env_ok && !policy.env.iter().any(|n| n == name) {
            out.push(format!(
                "{at}: {{env:{name}}} is not offered by this host ([policy] template_env: {})",
                list_or_none(&policy.env)
            ));
        }
        rest = &after[end + 1..];
    }
    around.push_str(rest);
    if env_ok && around.contains(['{', '}']) {
        out.push(format!(
            "{at}: the text around {{env:…}} may not hold '{{' or '}}' (OpenCode substitutes \
             {{env:…}} before {{file:…}}: the pieces could form a file reference)"
        ));
    }
}

fn model(at: &str, v: &Value, allowed: &[String], out: &mut Vec<String>) {
    let Some(m) = v.as_str() else {
        out.push(format!("{at} must be a string provider/model"));
        return;
    };
    if let Err(e) = crate::model_choice::check_host_allows(allowed, m) {
        out.push(format!("{at}: {e}"));
    }
}

fn instructions(v: &Value, out: &mut Vec<String>) {
    let Some(list) = v.as_array() else {
        out.push("opencode.instructions must be a list of paths inside the workspace".into());
        return;
    };
    for (i, x) in list.iter().enumerate() {
        let at = format!("opencode.instructions[{i}]");
        let Some(s) = x.as_str() else {
            out.push(format!("{at} must be a path (a string)"));
            continue;
        };
        if let Some(why) = instruction_problem(s) {
            out.push(format!(
                "{at} {s:?} {why} (only relative paths inside the workspace)"
            ));
        }
    }
}

fn instruction_problem(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    if s.is_empty() {
        Some("is empty")
    } else if s.contains("://") || lower.starts_with("http:") || lower.starts_with("https:") {
        Some("is a URL")
    } else if s.starts_with(['/', '\\', '~']) || s.get(1..2) == Some(":") {
        Some("is absolute")
    } else if s.split(['/', '\\']).any(|seg| seg == "..") {
        Some("leaves the workspace (..)")
    } else if s.chars().any(char::is_control) {
        Some("holds control characters")
    } else if s.contains(['{', '}', '[', ']', '*', '?']) {
        // OpenCode globs instructions: `{..,a}/x` would leave the workspace.
        Some("is a glob pattern (no '{', '}', '[', ']', '*' or '?')")
    } else {
        None
    }
}

fn rank(p: ToolPermission) -> u8 {
    match p {
        ToolPermission::Allow => 0,
        ToolPermission::Ask => 1,
        ToolPermission::Deny => 2,
    }
}

/// The loosest value a template may give permission `key` here, and why.
fn floor(key: &str, ws: &ToolPermissions) -> (ToolPermission, &'static str) {
    match key {
        "edit" => (ws.edit, "the workspace's own value"),
        "bash" => (ws.bash, "the workspace's own value"),
        "webfetch" => (ws.webfetch, "the workspace's own value"),
        "external_directory" => (
            ToolPermission::Deny,
            "paths outside the workspace are always denied",
        ),
        k if k.contains(['*', '?', '[', '{']) => (
            ToolPermission::Deny,
            "a wildcard permission would also cover the host's own settings",
        ),
        _ => (
            ToolPermission::Ask,
            "the host does not set it, so a template may only make it ask or deny",
        ),
    }
}

/// A permission table (top level or an agent's): each value, or each value of a pattern map,
/// at least as strict as the host's.
fn permission(at: &str, v: &Value, ws: &ToolPermissions, out: &mut Vec<String>) {
    let Some(table) = v.as_object() else {
        out.push(format!(
            "{at} must be a table of tool permissions (e.g. {{\"bash\": \"deny\"}})"
        ));
        return;
    };
    for (key, value) in table {
        let (least, why) = floor(key, ws);
        let actions: Vec<(String, &Value)> = match value {
            Value::Object(patterns) => patterns
                .iter()
                .map(|(p, a)| (format!("{at}.{key}[{p:?}]"), a))
                .collect(),
            other => vec![(format!("{at}.{key}"), other)],
        };
        for (here, a) in actions {
            let Some(action) = a.as_str().and_then(ToolPermission::parse) else {
                out.push(format!("{here} must be \"allow\", \"ask\" or \"deny\""));
                continue;
            };
            if rank(action) < rank(least) {
                out.push(format!(
                    "{here} = {} would loosen this host's {} ({why}); a template can only tighten permissions",
                    action.as_str(),
                    least.as_str()
                ));
            }
        }
    }
}

fn agents(v: &Value, host: &HostLimits<'_>, out: &mut Vec<String>) {
    let Some(agents) = v.as_object() else {
        out.push("opencode.agent must be a table of agents".into());
        return;
    };
    for (name, a) in agents {
        let at = format!("opencode.agent.{name}");
        let Some(a) = a.as_object() else {
            out.push(format!("{at} must be a table"));
            continue;
        };
        for (k, x) in a {
            match k.as_str() {
                "model" => model(&format!("{at}.model"), x, host.allowed_models, out),
                "permission" => permission(&format!("{at}.permission"), x, host.permissions, out),
                // OpenCode turns `tools = { bash = true }` into an allow.
                "tools" => match x.as_object() {
                    Some(tools) => {
                        for (tool, on) in tools {
                            if on != &Value::Bool(false) {
                                out.push(format!(
                                    "{at}.tools.{tool} = {on}: a template may only disable tools (false)"
                                ));
                            }
                        }
                    }
                    None => out.push(format!("{at}.tools must be a table of tool = false")),
                },
                k if AGENT_KEYS.contains(&k) => {}
                k => out.push(format!(
                    "{at}.{k} may not be set by a template (an agent may set {})",
                    AGENT_KEYS.join(", ")
                )),
            }
        }
    }
}

fn mcp(servers: &BTreeMap<String, McpServer>, policy: &TemplatePolicy, out: &mut Vec<String>) {
    for (name, s) in servers {
        match s {
            McpServer::Local { .. } if !policy.local_mcp => out.push(format!(
                "mcp.{name}: a local MCP server runs a program on the host, which this host \
                 refuses ([policy] template_local_mcp = false)"
            )),
            McpServer::Local { command, .. } if command.is_empty() => {
                out.push(format!("mcp.{name}: command is empty"));
            }
            McpServer::Local { .. } => {}
            McpServer::Remote { url, .. } => {
                if let Some(why) = mcp_url_problem(url, &policy.mcp_urls) {
                    out.push(format!("mcp.{name}: url {url:?} {why}"));
                }
            }
        }
    }
}

/// Why a remote MCP URL is refused (the git URL rules: ASCII, a plain host, no dot segments;
/// plus no user part), or `None`.
fn mcp_url_problem(url: &str, patterns: &[String]) -> Option<String> {
    if patterns.is_empty() {
        return Some(
            "is refused: this host allows no remote MCP server ([policy] template_mcp_urls is empty)"
                .into(),
        );
    }
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    if authority.is_some_and(|a| a.contains('@')) {
        return Some("has a user part; credentials go in headers from {env:NAME}".into());
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("https://") && !lower.starts_with("http://") {
        return Some("must be an https:// or http:// URL".into());
    }
    let settings = crate::git::policy::GitSettings {
        clone_from: patterns.to_vec(),
        ..crate::git::policy::GitSettings::default()
    };
    match settings.check_url("url", url) {
        Ok(_) => None,
        Err(crate::git::GitError::Rule { rule, .. }) => Some(match rule {
            "url_not_allowed" => format!(
                "matches none of this host's [policy] template_mcp_urls ({})",
                patterns.join(", ")
            ),
            "url_path" => "has a . or .. path segment".into(),
            "url_format" => "must be ASCII without spaces or control characters".into(),
            other => format!("is refused ({other})"),
        }),
        Err(e) => Some(format!("is refused ({e})")),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
