//! The host's `[policy]` rules for relay templates, as data (a leaf: the config loader and the
//! template check both read it).

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
