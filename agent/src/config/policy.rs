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
        Ok((
            crate::policy::PolicyConfig {
                disabled_ops,
                min_role,
            },
            launch_lease,
        ))
    }
}
