//! The `[trust]` table of a zero-trust host (issue #20): how old the newest owner-signed
//! revocation list may be before the host refuses new work.

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

/// The `[trust]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSection {
    /// Refuse new work when the newest owner-signed revocation list is older than this, e.g.
    /// `24h` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_max_age: Option<String>,
}

impl TrustSection {
    /// The freshness limit in milliseconds.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key and the accepted range.
    pub fn validate(self, path: &Path) -> Result<u64, ConfigError> {
        let Some(text) = self.revocation_max_age else {
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
        }
    }

    #[test]
    fn revocation_max_age_defaults_to_a_day_and_parses_durations() {
        let p = Path::new("agent.toml");
        assert_eq!(
            TrustSection::default().validate(p).unwrap(),
            DEFAULT_REVOCATION_MAX_AGE_MS
        );
        assert_eq!(section("2h").validate(p).unwrap(), 2 * 60 * 60 * 1000);
        assert_eq!(section("90s").validate(p).unwrap(), 90_000);
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
