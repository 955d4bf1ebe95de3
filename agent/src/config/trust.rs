//! The `[trust]` table of a zero-trust host (issue #20): how old the newest owner-signed
//! revocation list may be before the host refuses new work, and how long a replaced owner root
//! stays trusted after a rotation.

use super::{ConfigError, invalid};
/// Default `revocation_max_age`: how old the newest owner-signed revocation list may be before
/// the host refuses new work (re-exported as `trust::DEFAULT_REVOCATION_MAX_AGE_MS`).
pub const DEFAULT_REVOCATION_MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;
use cm_client::time::parse_duration;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Shortest `revocation_max_age` accepted. Anything under a few minutes refuses work between
/// two refreshes of an owner's laptop; seconds are for drills and tests of the fail-closed
/// path (the malicious-relay harness withholds lists for a few seconds).
pub(super) const MIN_REVOCATION_MAX_AGE: Duration = Duration::from_secs(2);
/// Longest `revocation_max_age` accepted: a withheld revocation stays unseen at most this long.
pub(super) const MAX_REVOCATION_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Default `root_overlap`: how long an owner root replaced by a rotation still verifies the
/// certificates it signed (the owner's laptop re-signs them with the new root meanwhile).
pub const DEFAULT_ROOT_OVERLAP_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Longest `root_overlap` accepted.
const MAX_ROOT_OVERLAP: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// The validated `[trust]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustLimits {
    /// `revocation_max_age`, in ms.
    pub revocation_max_age_ms: u64,
    /// `root_overlap`, in ms.
    pub root_overlap_ms: u64,
}

impl Default for TrustLimits {
    fn default() -> Self {
        Self {
            revocation_max_age_ms: DEFAULT_REVOCATION_MAX_AGE_MS,
            root_overlap_ms: DEFAULT_ROOT_OVERLAP_MS,
        }
    }
}

/// The `[trust]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Refuse new work when the newest owner-signed revocation list is older than this, e.g.
    /// `24h` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_max_age: Option<String>,
    /// After an owner rotates their root (`cm-tui admin trust rotate-owner`), keep trusting the
    /// old root this long, e.g. `7d` (the default; `0s` retires it at once), unless the owner
    /// retires it sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_overlap: Option<String>,
}

impl TrustSection {
    /// The freshness limit and the root overlap.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the accepted range.
    pub fn validate(self, path: &Path) -> Result<TrustLimits, ConfigError> {
        let root_overlap_ms = match self.root_overlap {
            None => DEFAULT_ROOT_OVERLAP_MS,
            Some(text) => {
                let overlap = parse_duration(&text)
                    .map_err(|e| invalid(path, format!("[trust] root_overlap: {e}")))?;
                if overlap > MAX_ROOT_OVERLAP {
                    return Err(invalid(
                        path,
                        format!(
                            "[trust] root_overlap {text:?} is out of range; use between 0s and 90d (default 7d)"
                        ),
                    ));
                }
                u64::try_from(overlap.as_millis()).unwrap_or(u64::MAX)
            }
        };
        let revocation_max_age_ms = Self::max_age(self.revocation_max_age, path)?;
        Ok(TrustLimits {
            revocation_max_age_ms,
            root_overlap_ms,
        })
    }

    fn max_age(text: Option<String>, path: &Path) -> Result<u64, ConfigError> {
        let Some(text) = text else {
            return Ok(DEFAULT_REVOCATION_MAX_AGE_MS);
        };
        let age = parse_duration(&text)
            .map_err(|e| invalid(path, format!("[trust] revocation_max_age: {e}")))?;
        if !(MIN_REVOCATION_MAX_AGE..=MAX_REVOCATION_MAX_AGE).contains(&age) {
            return Err(invalid(
                path,
                format!(
                    "[trust] revocation_max_age {text:?} is out of range; use between 2s and 30d (default 24h)"
                ),
            ));
        }
        Ok(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(v: &str) -> TrustSection {
        TrustSection {
            revocation_max_age: Some(v.into()),
            root_overlap: None,
        }
    }

    fn overlap(v: &str) -> Result<u64, ConfigError> {
        TrustSection {
            revocation_max_age: None,
            root_overlap: Some(v.into()),
        }
        .validate(Path::new("agent.toml"))
        .map(|l| l.root_overlap_ms)
    }

    #[test]
    fn root_overlap_defaults_to_a_week_and_is_bounded() {
        let p = Path::new("agent.toml");
        assert_eq!(
            TrustSection::default().validate(p).unwrap().root_overlap_ms,
            DEFAULT_ROOT_OVERLAP_MS
        );
        assert_eq!(overlap("0s").unwrap(), 0);
        assert_eq!(overlap("2d").unwrap(), 2 * 86_400_000);
        for bad in ["91d", "later"] {
            let err = overlap(bad).unwrap_err().to_string();
            assert!(err.contains("root_overlap"), "{bad}: {err}");
        }
    }

    #[test]
    fn revocation_max_age_defaults_to_a_day_and_parses_durations() {
        let p = Path::new("agent.toml");
        assert_eq!(
            TrustSection::default()
                .validate(p)
                .unwrap()
                .revocation_max_age_ms,
            DEFAULT_REVOCATION_MAX_AGE_MS
        );
        let age = |v| section(v).validate(p).unwrap().revocation_max_age_ms;
        assert_eq!(age("2h"), 2 * 60 * 60 * 1000);
        assert_eq!(age("90s"), 90_000);
    }

    #[test]
    fn revocation_max_age_out_of_range_or_garbage_is_refused_with_the_key() {
        let p = Path::new("agent.toml");
        for bad in ["0s", "1s", "60d", "soon"] {
            let err = section(bad).validate(p).unwrap_err().to_string();
            assert!(err.contains("revocation_max_age"), "{bad}: {err}");
            assert!(err.contains("agent.toml"), "{bad}: {err}");
        }
    }
}
