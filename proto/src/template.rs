//! OpenCode configuration templates kept by the relay, and the MCP servers they define.
//!
//! An admin publishes a named template ([`TemplatePublish`]); the relay stores every version
//! with its author and [`content_hash`]. An operator applies a version to a workspace
//! ([`TemplateApply`]): the relay resolves the name to the stored version and hands the whole
//! [`Template`] to the agent (the operator cannot send content of its own), and the agent merges
//! it into the OpenCode config it generates **under the host's policy** (see
//! `docs/security-model.md`): local MCP servers, remote MCP URLs, `{env:NAME}` references and
//! permission presets are each the host's decision, and a template can only tighten
//! permissions.
//!
//! | op | body | answer `T` in `Reply<T>` |
//! | --- | --- | --- |
//! | `template_list` | none | `Vec<`[`TemplateSummary`]`>` |
//! | `template_show` | required [`TemplateQuery`] | [`Template`] |
//! | `template_publish` | required [`TemplatePublish`] | [`TemplateSummary`] |
//! | `template_apply` | required [`TemplateApply`] | [`TemplateApplied`], then [`TemplateApplyEvent`]s |
//! | `mcp_list` | none | `Vec<`[`McpServerInfo`]`>` |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Longest template name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Largest template content, as JSON, in bytes.
pub const MAX_CONTENT_LEN: usize = 64 * 1024;
/// The OpenCode config keys a template may set. Everything else (providers and their keys,
/// servers, plugins, sharing, autoupdate, …) stays the host's.
pub const OPENCODE_KEYS: &[&str] = &[
    "model",
    "small_model",
    "default_agent",
    "agent",
    "instructions",
    "permission",
];

/// Whether `name` is a template name: 1 to [`MAX_NAME_LEN`] bytes of `a-z`, `0-9`, `.`, `_`,
/// `-`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// What a template says: an OpenCode config fragment and MCP server definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateContent {
    /// One line for operators.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// OpenCode config keys (only [`OPENCODE_KEYS`]), in OpenCode's own format.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub opencode: Map<String, Value>,
    /// MCP servers by name, in OpenCode's own format.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp: BTreeMap<String, McpServer>,
}

impl TemplateContent {
    /// The [`OPENCODE_KEYS`] violations: keys a template may not set.
    pub fn unknown_keys(&self) -> Vec<String> {
        self.opencode
            .keys()
            .filter(|k| !OPENCODE_KEYS.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

/// One MCP server definition (OpenCode's `McpLocalConfig` / `McpRemoteConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpServer {
    /// A program OpenCode starts on the host (refused unless the host allows it).
    Local {
        /// Program and arguments.
        command: Vec<String>,
        /// Variables for it; values may reference the host's `{env:NAME}`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        environment: BTreeMap<String, String>,
        /// Whether OpenCode connects it at start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
        /// Milliseconds OpenCode waits for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
    /// A server OpenCode reaches over HTTP (its URL must match the host's allowed URLs).
    Remote {
        /// Its URL.
        url: String,
        /// Request headers; values may reference the host's `{env:NAME}`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// Whether OpenCode connects it at start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
        /// Milliseconds OpenCode waits for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
}

impl McpServer {
    /// `local` or `remote`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local { .. } => "local",
            Self::Remote { .. } => "remote",
        }
    }
}

/// The hash that names a template's content: `blake3:` and the hex digest of its JSON
/// serialization (keys sorted: `serde_json`'s map is ordered).
pub fn content_hash(content: &TemplateContent) -> String {
    let bytes = serde_json::to_vec(content).unwrap_or_default();
    format!("blake3:{}", blake3::hash(&bytes).to_hex())
}

/// Which template version a workspace runs (or an operator means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    /// Template name.
    pub name: String,
    /// Version, from 1.
    pub version: u32,
    /// [`content_hash`] of that version.
    pub hash: String,
}

/// One stored version of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    /// Name, version and hash.
    #[serde(flatten)]
    pub id: TemplateRef,
    /// Who published it.
    pub author: String,
    /// When, in milliseconds since the Unix epoch.
    pub published_ms: u64,
    /// What it says.
    pub content: TemplateContent,
}

impl Template {
    /// Whether the stored hash is the hash of the content (a template altered on its way is
    /// refused).
    pub fn hash_matches(&self) -> bool {
        self.id.hash == content_hash(&self.content)
    }
}

/// A template's latest version, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSummary {
    /// Name, latest version and its hash.
    #[serde(flatten)]
    pub latest: TemplateRef,
    /// Who published the latest version.
    pub author: String,
    /// When the latest version was published (ms since the epoch).
    pub published_ms: u64,
    /// The latest version's description.
    #[serde(default)]
    pub description: String,
    /// Names of the MCP servers the latest version defines.
    #[serde(default)]
    pub mcp: Vec<String>,
}

/// `template_show`: one version of a template (the latest when `version` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateQuery {
    /// Template name.
    pub name: String,
    /// Version; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// `template_publish`: a new version of `name` (version 1 when new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatePublish {
    /// Template name ([`valid_name`]).
    pub name: String,
    /// What it says.
    pub content: TemplateContent,
}

/// `template_apply`: apply a template version to the workspace named in the stream header.
///
/// The operator sends `name` (and optionally `version`); the relay refuses a body that already
/// carries `resolved`, looks the version up in its store and forwards the body with
/// `resolved` set. The agent refuses a body without `resolved`, or whose hash does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateApply {
    /// Template name.
    pub name: String,
    /// Version; the latest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The stored version, filled in by the relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Template>,
}

/// The first answer to `template_apply`: the host accepted the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateApplied {
    /// What the workspace runs from now on.
    pub template: TemplateRef,
    /// Whether the workspace's OpenCode is restarted to take it (it was running).
    pub restart: bool,
}

/// Progress of a `template_apply` after its first answer; the stream ends after `Done` or
/// `Failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateApplyEvent {
    /// OpenCode is being stopped.
    Stopping,
    /// OpenCode is being started with the new config.
    Starting,
    /// Finished: the workspace runs the template (OpenCode ready when it was restarted).
    Done,
    /// The template is recorded but OpenCode did not come back.
    Failed {
        /// Why, for operators.
        message: String,
    },
}

/// One MCP server of a workspace's OpenCode, as `mcp_list` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpServerInfo {
    /// Its name in the config.
    pub name: String,
    /// `local` or `remote`.
    pub kind: String,
    /// OpenCode's status: `connected`, `disabled`, `failed`, `needs_auth`, … or `stopped` when
    /// OpenCode is not running.
    pub status: String,
    /// OpenCode's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The template that defined it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateRef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_plain_lowercase_words() {
        for ok in ["team", "rust-2024", "a", "web.v2", "x_y"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "-x",
            ".hidden",
            "Team",
            "a/b",
            "a b",
            "../x",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn content_in_opencodes_own_format_parses_and_hashes_stably() {
        let raw = json!({
            "description": "rust team defaults",
            "opencode": {"model": "test/test-model", "permission": {"bash": "deny"}},
            "mcp": {
                "docs": {"type": "remote", "url": "https://mcp.example.com/docs",
                          "headers": {"Authorization": "Bearer {env:DOCS_TOKEN}"}},
                "fmt": {"type": "local", "command": ["rustfmt-mcp"]}
            }
        });
        let content: TemplateContent = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(content.mcp["docs"].kind(), "remote");
        assert_eq!(content.mcp["fmt"].kind(), "local");
        assert!(content.unknown_keys().is_empty());
        let again: TemplateContent = serde_json::from_value(raw).unwrap();
        assert_eq!(content_hash(&content), content_hash(&again));
        let mut changed = again;
        changed.description.push('!');
        assert_ne!(content_hash(&content), content_hash(&changed));
        assert!(content_hash(&content).starts_with("blake3:"));
    }

    #[test]
    fn keys_outside_the_template_set_are_named() {
        let content: TemplateContent = serde_json::from_value(json!({
            "opencode": {"model": "a/b", "provider": {}, "autoupdate": true}
        }))
        .unwrap();
        let mut bad = content.unknown_keys();
        bad.sort();
        assert_eq!(bad, ["autoupdate", "provider"]);
    }

    #[test]
    fn unknown_fields_and_mcp_types_are_refused() {
        assert!(serde_json::from_value::<TemplateContent>(json!({"extra": 1})).is_err());
        assert!(
            serde_json::from_value::<TemplateContent>(json!({
                "mcp": {"x": {"type": "sse", "url": "https://a"}}
            }))
            .is_err()
        );
        assert!(
            serde_json::from_value::<TemplateContent>(json!({
                "mcp": {"x": {"type": "local", "command": ["a"], "cwd": "/"}}
            }))
            .is_err(),
            "a local server's cwd is not settable"
        );
    }

    #[test]
    fn an_altered_template_no_longer_matches_its_hash() {
        let content = TemplateContent {
            description: "d".into(),
            ..TemplateContent::default()
        };
        let mut t = Template {
            id: TemplateRef {
                name: "t".into(),
                version: 1,
                hash: content_hash(&content),
            },
            author: "alice".into(),
            published_ms: 1,
            content,
        };
        assert!(t.hash_matches());
        t.content
            .opencode
            .insert("permission".into(), json!({"bash": "allow"}));
        assert!(!t.hash_matches());
    }
}
