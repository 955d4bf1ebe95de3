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

pub use crate::template_policy::{TemplatePolicy, valid_env_name, valid_mcp_url_pattern};

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
