//! Relay templates on this host: the host's rules for them ([`TemplatePolicy`], from
//! `[policy]`), the pure check of a resolved template against those rules ([`check`]), its
//! merge into the generated `opencode.json` ([`merge`]), and the applied template of each
//! workspace kept in the state folder ([`store`]).
//!
//! A template can only tighten what the host allows: it sets a few OpenCode keys
//! ([`proto::template::OPENCODE_KEYS`]), its permissions must be at least as strict as the
//! workspace's, its MCP servers pass the host's veto (local programs refused by default, remote
//! URLs only from the host's patterns), and it may reference only the host variables the host
//! lists (`{env:NAME}`), never files (`{file:…}`).

pub mod check;
pub mod mcp_status;
pub mod merge;
pub mod store;

pub use check::{HostLimits, Refused, check};
pub use mcp_status::mcp_servers;
pub use merge::{env_names, merge};
pub use store::AppliedTemplates;

/// The `[policy]` keys about templates, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatePolicy {
    /// `templates`: whether this host accepts templates at all.
    pub enabled: bool,
    /// `template_local_mcp`: whether a template may add an MCP server that runs a program here.
    pub local_mcp: bool,
    /// `template_mcp_urls`: URL patterns a template's remote MCP servers must match (none: no
    /// remote server is allowed).
    pub mcp_urls: Vec<String>,
    /// `template_env`: host variables a template may reference as `{env:NAME}`; the host
    /// passes exactly the referenced ones to OpenCode.
    pub env: Vec<String>,
}

impl Default for TemplatePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            local_mcp: false,
            mcp_urls: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// Whether `p` is a well-formed `template_mcp_urls` pattern: an `https://` or `http://` URL
/// pattern (the git URL pattern rules: no whitespace, no option, a host).
pub fn valid_mcp_url_pattern(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && p.is_ascii()
        && crate::git::policy::valid_pattern(p)
}

/// Whether `name` may be listed in `template_env`: a plain variable name, and not one of the
/// variables the agent sets for OpenCode itself (`OPENCODE_*`, `CM_*`: the server password and
/// the launch marker would leak to a remote MCP server).
pub fn valid_env_name(name: &str) -> bool {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let upper = name.to_ascii_uppercase();
    plain
        && !upper.starts_with("OPENCODE_")
        && !upper.starts_with("CM_")
        && !matches!(
            upper.as_str(),
            "HOME"
                | "TMPDIR"
                | "XDG_CONFIG_HOME"
                | "XDG_DATA_HOME"
                | "XDG_STATE_HOME"
                | "XDG_CACHE_HOME"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_url_patterns_are_http_urls() {
        for ok in ["https://mcp.example.com/*", "http://127.0.0.1:9000/*"] {
            assert!(valid_mcp_url_pattern(ok), "{ok}");
        }
        for bad in [
            "ssh://h/*",
            "file:///x",
            "",
            "https://a b/",
            "git@h:*",
            "/srv/*",
        ] {
            assert!(!valid_mcp_url_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn env_names_the_agent_sets_for_opencode_cannot_be_offered() {
        for ok in ["DOCS_TOKEN", "_X", "a1"] {
            assert!(valid_env_name(ok), "{ok}");
        }
        for bad in [
            "",
            "1A",
            "A-B",
            "OPENCODE_SERVER_PASSWORD",
            "CM_AGENT_LAUNCH",
            "HOME",
            "A B",
        ] {
            assert!(!valid_env_name(bad), "{bad}");
        }
    }
}
