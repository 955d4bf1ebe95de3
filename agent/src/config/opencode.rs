//! The `[opencode]` table: how OpenCode is found and configured.

use super::{ConfigError, DEFAULT_IDLE_STOP, DEFAULT_READY_TIMEOUT, invalid};
use cm_client::time::parse_duration;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `[opencode]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpencodeSection {
    /// The `opencode` binary (absolute path). Else `CM_OPENCODE_BIN`, the project's
    /// `tools/opencode`, then `PATH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// Model as `provider/model`, e.g. `anthropic/claude-sonnet-4-5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Model for titles and summaries; defaults to `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub small_model: Option<String>,
    /// Providers OpenCode may use; defaults to the keys of `provider` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_providers: Option<Vec<String>>,
    /// Passed verbatim as `provider` in the generated `opencode.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<toml::Table>,
    /// Stop OpenCode after this long without use, e.g. `30m`; `0` never stops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop: Option<String>,
    /// Give up on a launch that is not ready after this long, e.g. `20s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<String>,
    /// Models operators may pick per prompt, as `provider/model` patterns where `*` matches
    /// anything, e.g. `["anthropic/*", "mock/mock-model"]`; default: all OpenCode offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
}

/// The validated `[opencode]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OpencodeConfig {
    /// Configured binary, if any.
    pub binary: Option<PathBuf>,
    /// `provider/model`.
    pub model: Option<String>,
    /// `provider/model` for titles.
    pub small_model: Option<String>,
    /// Providers OpenCode may use (`None`: all).
    pub enabled_providers: Option<Vec<String>>,
    /// The `provider` object of `opencode.json`.
    pub provider: Option<serde_json::Map<String, serde_json::Value>>,
    /// Idle time before OpenCode is stopped (`None`: never).
    pub idle_stop: Option<Duration>,
    /// Start-up bound.
    pub ready_timeout: Duration,
    /// Patterns of the models operators may pick per prompt (empty: all OpenCode offers).
    pub allowed_models: Vec<String>,
}

impl Default for OpencodeConfig {
    fn default() -> Self {
        Self {
            binary: None,
            model: None,
            small_model: None,
            enabled_providers: None,
            provider: None,
            idle_stop: Some(DEFAULT_IDLE_STOP),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            allowed_models: Vec::new(),
        }
    }
}

impl OpencodeSection {
    pub(super) fn validate(self, path: &Path) -> Result<OpencodeConfig, ConfigError> {
        let key = |k: &str| format!("[opencode] {k}");
        if let Some(b) = &self.binary
            && !b.is_absolute()
        {
            return Err(invalid(
                path,
                format!(
                    "{}: {} must be an absolute path",
                    key("binary"),
                    b.display()
                ),
            ));
        }
        for (k, v) in [("model", &self.model), ("small_model", &self.small_model)] {
            if let Some(m) = v
                && !is_model_ref(m)
            {
                return Err(invalid(
                    path,
                    format!("{}: {m:?} must look like provider/model", key(k)),
                ));
            }
        }
        let idle_stop = match self.idle_stop.as_deref() {
            None => Some(DEFAULT_IDLE_STOP),
            Some(s) => {
                let d = parse_duration(s)
                    .map_err(|e| invalid(path, format!("{}: {e}", key("idle_stop"))))?;
                (!d.is_zero()).then_some(d)
            }
        };
        let ready_timeout = match self.ready_timeout.as_deref() {
            None => DEFAULT_READY_TIMEOUT,
            Some(s) => parse_duration(s)
                .map_err(|e| invalid(path, format!("{}: {e}", key("ready_timeout"))))?,
        };
        if ready_timeout.is_zero() {
            return Err(invalid(
                path,
                format!("{} must be above zero", key("ready_timeout")),
            ));
        }
        let provider = match self.provider {
            None => None,
            Some(table) => match serde_json::to_value(&table) {
                Ok(serde_json::Value::Object(map)) => Some(map),
                Ok(_) | Err(_) => {
                    return Err(invalid(
                        path,
                        format!("{}: cannot be expressed as JSON", key("provider")),
                    ));
                }
            },
        };
        let enabled_providers = self
            .enabled_providers
            .or_else(|| provider.as_ref().map(|p| p.keys().cloned().collect()));
        let small_model = self.small_model.or_else(|| self.model.clone());
        let allowed_models = self.allowed_models.unwrap_or_default();
        if let Some(bad) = allowed_models.iter().find(|p| !is_model_ref(p)) {
            return Err(invalid(
                path,
                format!(
                    "{}: {bad:?} must look like provider/model (`*` matches anything, e.g. \"mock/*\")",
                    key("allowed_models")
                ),
            ));
        }
        Ok(OpencodeConfig {
            binary: self.binary,
            model: self.model,
            small_model,
            enabled_providers,
            provider,
            idle_stop,
            ready_timeout,
            allowed_models,
        })
    }
}

/// `provider/model`, both parts non-empty.
fn is_model_ref(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty())
}
