//! The `[git]` table: clone URL policy and limits.

use super::{ConfigError, invalid};
use cm_client::time::parse_duration;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[git]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitSection {
    /// URL patterns clones may use (`*` at the end matches the rest, elsewhere one host or
    /// path segment), e.g. `["https://github.com/*", "ssh://git@host/*"]`. Default: any
    /// `https://` or `ssh://` URL (and scp-like `user@host:path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_from: Option<Vec<String>>,
    /// Fetch submodules when cloning (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submodules: Option<bool>,
    /// Stop a clone after this long, e.g. `10m` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_timeout: Option<String>,
    /// Stop a clone whose folder grows past this, e.g. `2GiB` (the default), `500MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_max_size: Option<String>,
    /// An SSH private key file (absolute path) used for ssh remotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
}

impl GitSection {
    pub(super) fn validate(
        self,
        path: &Path,
    ) -> Result<crate::git::policy::GitSettings, ConfigError> {
        use crate::git::policy::{GitSettings, valid_pattern};
        let mut s = GitSettings::default();
        if let Some(patterns) = self.clone_from {
            if let Some(bad) = patterns.iter().find(|p| !valid_pattern(p)) {
                return Err(invalid(
                    path,
                    format!(
                        "[git] clone_from: {bad:?} is not a network URL pattern; use https://, \
                         http://, ssh://, git:// or user@host: patterns (never file:// or a \
                         local path)"
                    ),
                ));
            }
            s.clone_from = patterns;
        }
        s.submodules = self.submodules.unwrap_or(false);
        if let Some(t) = self.clone_timeout.as_deref() {
            s.clone_timeout = parse_duration(t)
                .map_err(|e| invalid(path, format!("[git] clone_timeout: {e}")))?;
            if s.clone_timeout.is_zero() {
                return Err(invalid(path, "[git] clone_timeout must be above zero"));
            }
        }
        if let Some(m) = self.clone_max_size.as_deref() {
            s.clone_max_bytes = parse_size(m).ok_or_else(|| {
                invalid(
                    path,
                    format!("[git] clone_max_size: {m:?}: use a size such as 500MiB or 2GiB"),
                )
            })?;
        }
        if let Some(k) = self.ssh_key {
            if !k.is_absolute() {
                return Err(invalid(
                    path,
                    format!("[git] ssh_key: {} must be an absolute path", k.display()),
                ));
            }
            s.ssh_key = Some(k);
        }
        Ok(s)
    }
}

/// `1024`, `64KiB`, `500MiB`, `2GiB` (also `KB`/`MB`/`GB` as powers of 1000) → bytes; zero
/// is refused.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}
