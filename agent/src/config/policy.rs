//! The `[policy]` table: the host owner's own limits.

use super::{ConfigError, DEFAULT_LAUNCH_LEASE, invalid};
use cm_client::time::parse_duration;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The `[policy]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Operation wire names this host refuses, e.g. `["git_push", "fs_rmdir"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_ops: Vec<String>,
    /// Per operation, the least role it needs on this host, e.g. `{ prompt = "admin" }`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub min_role: std::collections::BTreeMap<String, String>,
    /// Must stay `false`: CodeMantle has no shell operation and never proxies OpenCode's
    /// shell or PTY endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_shell: Option<bool>,
    /// How long a launch of OpenCode stays bound to the credential that started it without
    /// being renewed, e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_lease: Option<String>,
    /// Whether relay templates may be applied here (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<bool>,
    /// Whether a template may add an MCP server that runs a program on this host
    /// (`type = "local"`; default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_local_mcp: Option<bool>,
    /// URL patterns a template's remote MCP servers must match, e.g.
    /// `["https://mcp.example.com/*"]` (default: none allowed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_mcp_urls: Vec<String>,
    /// Host variables a template may reference as `{env:NAME}` (passed to OpenCode only when
    /// a template references them; default: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub template_env: Vec<String>,
}

impl PolicySection {
    pub(super) fn validate(
        self,
        path: &Path,
    ) -> Result<(crate::policy::PolicyConfig, Duration), ConfigError> {
        use crate::policy::parse_ops;
        let disabled_ops = parse_ops(self.disabled_ops.iter().map(String::as_str))
            .map_err(|unknown| {
                invalid(
                    path,
                    format!(
                        "[policy] disabled_ops: unknown operation(s) {}; see docs/protocol.md for the names",
                        unknown.join(", ")
                    ),
                )
            })?
            .into_iter()
            .collect();
        let ops = parse_ops(self.min_role.keys().map(String::as_str)).map_err(|unknown| {
            invalid(
                path,
                format!(
                    "[policy] min_role: unknown operation(s) {}; see docs/protocol.md for the names",
                    unknown.join(", ")
                ),
            )
        })?;
        let mut min_role = std::collections::HashMap::new();
        for (op, role) in ops.into_iter().zip(self.min_role.values()) {
            let role = proto::rbac::Role::parse(role).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "[policy] min_role.{}: unknown role {role:?}; use viewer, operator, admin or owner",
                        op.as_str()
                    ),
                )
            })?;
            min_role.insert(op, role);
        }
        if self.allow_shell == Some(true) {
            return Err(invalid(
                path,
                "[policy] allow_shell = true is not supported: CodeMantle has no shell operation \
                 and never proxies OpenCode's shell or terminal endpoints; remove the key",
            ));
        }
        let launch_lease = match self.launch_lease.as_deref() {
            None => DEFAULT_LAUNCH_LEASE,
            Some(s) => parse_duration(s)
                .map_err(|e| invalid(path, format!("[policy] launch_lease: {e}")))?,
        };
        if launch_lease.is_zero() {
            return Err(invalid(path, "[policy] launch_lease must be above zero"));
        }
        if let Some(bad) = self
            .template_mcp_urls
            .iter()
            .find(|p| !crate::template_policy::valid_mcp_url_pattern(p))
        {
            return Err(invalid(
                path,
                format!(
                    "[policy] template_mcp_urls: {bad:?} is not an https:// or http:// URL pattern \
                     (e.g. \"https://mcp.example.com/*\")"
                ),
            ));
        }
        if let Some(bad) = self
            .template_env
            .iter()
            .find(|n| !crate::template_policy::valid_env_name(n))
        {
            return Err(invalid(
                path,
                format!(
                    "[policy] template_env: {bad:?} is not a variable a template may use \
                     (a plain name; not HOME, TMPDIR, XDG_*, OPENCODE_* or CM_*, which the agent \
                     sets for OpenCode)"
                ),
            ));
        }
        let templates = crate::template_policy::TemplatePolicy {
            enabled: self.templates.unwrap_or(true),
            local_mcp: self.template_local_mcp.unwrap_or(false),
            mcp_urls: self.template_mcp_urls,
            env: self.template_env,
        };
        Ok((
            crate::policy::PolicyConfig {
                disabled_ops,
                min_role,
                templates,
            },
            launch_lease,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigFile;

    fn load(policy: &str) -> Result<crate::config::AgentConfig, String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let p = tmp.path().join("agent.toml");
        let text =
            format!("relay = \"a:1\"\npin = \"blake3:00\"\nhost = \"box\"\n[policy]\n{policy}");
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        ConfigFile::load(&p)
            .and_then(|f| f.validate(&p))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn template_keys_default_to_templates_without_local_mcp_urls_or_env() {
        let t = load("").unwrap().policy.templates;
        assert_eq!(t, crate::template_policy::TemplatePolicy::default());
        assert!(t.enabled && !t.local_mcp && t.mcp_urls.is_empty() && t.env.is_empty());
        let t = load(
            "templates = false\ntemplate_local_mcp = true\ntemplate_mcp_urls = [\"https://mcp.example.com/*\"]\ntemplate_env = [\"DOCS_TOKEN\"]\n",
        )
        .unwrap()
        .policy
        .templates;
        assert!(!t.enabled && t.local_mcp);
        assert_eq!(t.mcp_urls, ["https://mcp.example.com/*"]);
        assert_eq!(t.env, ["DOCS_TOKEN"]);
    }

    #[test]
    fn template_keys_that_could_leak_or_reach_anything_are_refused() {
        for (bad, needle) in [
            ("template_mcp_urls = [\"file:///*\"]\n", "template_mcp_urls"),
            ("template_mcp_urls = [\"ssh://h/*\"]\n", "template_mcp_urls"),
            (
                "template_env = [\"OPENCODE_SERVER_PASSWORD\"]\n",
                "template_env",
            ),
            ("template_env = [\"CM_AGENT_LAUNCH\"]\n", "template_env"),
            ("template_env = [\"A-B\"]\n", "template_env"),
            ("templates = \"yes\"\n", "templates"),
        ] {
            let err = load(bad).unwrap_err();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
