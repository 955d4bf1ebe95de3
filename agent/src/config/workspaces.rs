//! The `[[workspace]]` tables and their tool permissions.

use super::{ConfigError, invalid};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One `[[workspace]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    /// Name operators use.
    pub name: String,
    /// Root folder on this host.
    pub path: PathBuf,
    /// Relaxes OpenCode's tool permissions in this workspace, e.g. `{ edit = "allow" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<PermissionEntry>,
    /// This workspace's sandbox settings on top of `[sandbox]`, e.g. `{ allow_bind_ports = [8080] }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<crate::sandbox::SandboxSection>,
    /// Lets operators make this root's immediate subfolders workspaces of their own, with this
    /// workspace's permissions and sandbox (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subworkspaces: Option<bool>,
}

/// A workspace's `permission` table: `edit`, `bash`, `webfetch`, each `"ask"` (the default:
/// every use waits for an operator's answer), `"allow"` or `"deny"`. Paths outside the
/// workspace (`external_directory`) are always denied and cannot be relaxed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionEntry {
    /// File edits and writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
    /// Shell commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bash: Option<String>,
    /// Web fetches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webfetch: Option<String>,
}

/// What OpenCode does when a tool is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolPermission {
    /// Ask an operator each time.
    #[default]
    Ask,
    /// Run without asking.
    Allow,
    /// Refuse.
    Deny,
}

impl ToolPermission {
    /// Parses `ask`, `allow` or `deny`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ask" => Some(Self::Ask),
            "allow" => Some(Self::Allow),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    /// The value in OpenCode's config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

/// OpenCode's tool permissions in one workspace (all `ask` unless relaxed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToolPermissions {
    /// File edits and writes.
    pub edit: ToolPermission,
    /// Shell commands.
    pub bash: ToolPermission,
    /// Web fetches.
    pub webfetch: ToolPermission,
}

impl PermissionEntry {
    pub(super) fn validate(
        &self,
        path: &Path,
        workspace: &str,
    ) -> Result<ToolPermissions, ConfigError> {
        let one = |key: &str, v: &Option<String>| {
            match v.as_deref() {
            None => Ok(ToolPermission::Ask),
            Some(s) => ToolPermission::parse(s).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "workspace {workspace:?}: permission.{key} = {s:?}: use \"ask\", \"allow\" or \"deny\""
                    ),
                )
            }),
        }
        };
        Ok(ToolPermissions {
            edit: one("edit", &self.edit)?,
            bash: one("bash", &self.bash)?,
            webfetch: one("webfetch", &self.webfetch)?,
        })
    }
}

/// A validated workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Name operators use.
    pub name: String,
    /// Canonical root (symlinks resolved at load).
    pub root: PathBuf,
    /// OpenCode's tool permissions here.
    pub permissions: ToolPermissions,
    /// The kernel sandbox of this workspace's OpenCode (`[sandbox]` plus the override).
    pub sandbox: crate::sandbox::SandboxConfig,
}
