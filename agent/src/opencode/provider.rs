//! The model provider a prompt goes to, as `[opencode]` in agent.toml configures it, and
//! whether its endpoint can be reached. OpenCode 1.18.33 retries a provider it cannot connect
//! to for about 70 s before it reports an error that does not name the cause, so the agent
//! checks first: `cm-agent doctor` says which provider, model and URL, and a prompt whose
//! provider is unreachable fails within seconds naming the provider and the fix.
//!
//! Resolving the target is pure; only [`probe`] touches the network (one TCP connect).

use crate::config::OpencodeConfig;
use crate::env_refs::env_refs;
use serde_json::Value;
use std::time::Duration;

/// Bound on one reachability probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Proxy variables: with any of them set, OpenCode may reach the provider through a proxy that
/// a direct connect would not, so the endpoint is not probed.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Where prompts go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Provider id (the part of `model` before `/`).
    pub provider: String,
    /// Model id (after `/`).
    pub model: String,
    /// `options.baseURL` of the provider's table, with `{env:NAME}` substituted; `None` for a
    /// provider without one (OpenCode's built-in default URL, not checked).
    pub base_url: Option<String>,
}

/// What is wrong with the model settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// No `model`.
    #[error(
        "no model is configured: add `model = \"provider/model\"` under [opencode] and the provider's [opencode.provider.<provider>] table (npm, options.baseURL, options.apiKey, models); without them the first prompt hangs and fails"
    )]
    NoModel,
    /// The model's provider is not among `enabled_providers`.
    #[error(
        "model {provider}/{model}: provider {provider} is not enabled (enabled: {enabled}); add an [opencode.provider.{provider}] table or list it in enabled_providers"
    )]
    NotEnabled {
        /// Provider id.
        provider: String,
        /// Model id.
        model: String,
        /// The enabled providers.
        enabled: String,
    },
    /// The provider's table lists models, but not this one.
    #[error(
        "model {provider}/{model}: [opencode.provider.{provider}] models has no {model:?} (it has: {listed}); add it there or fix model"
    )]
    NotListed {
        /// Provider id.
        provider: String,
        /// Model id.
        model: String,
        /// The listed model ids.
        listed: String,
    },
}

/// Why a provider's endpoint cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The base URL is not an `http(s)://host[:port]/…` URL.
    #[error("its base URL {url:?} is not an http:// or https:// URL")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// Connecting failed.
    #[error("{host}:{port} refuses or drops connections ({source})")]
    Connect {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// Connecting took too long.
    #[error("{host}:{port} did not answer within {after:?}")]
    Timeout {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The bound.
        after: Duration,
    },
}

/// The provider and model prompts go to; `lookup` reads an environment variable (for
/// `{env:NAME}` in the base URL).
///
/// # Errors
/// [`TargetError`] says what to add or fix.
pub fn target(
    cfg: &OpencodeConfig,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Target, TargetError> {
    let Some((provider, model)) = cfg.model.as_deref().and_then(|m| m.split_once('/')) else {
        return Err(TargetError::NoModel);
    };
    let (provider, model) = (provider.to_owned(), model.to_owned());
    if let Some(enabled) = &cfg.enabled_providers
        && !enabled.contains(&provider)
    {
        return Err(TargetError::NotEnabled {
            provider,
            model,
            enabled: enabled.join(", "),
        });
    }
    let table = cfg.provider.as_ref().and_then(|p| p.get(&provider));
    if let Some(models) = table
        .and_then(|t| t.get("models"))
        .and_then(Value::as_object)
        && !models.contains_key(&model)
    {
        return Err(TargetError::NotListed {
            provider,
            model,
            listed: models.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    let base_url = table
        .and_then(|t| t.get("options"))
        .and_then(|o| o.get("baseURL"))
        .and_then(Value::as_str)
        .map(|u| substitute_env(u, &lookup));
    Ok(Target {
        provider,
        model,
        base_url,
    })
}

/// `s` with each `{env:NAME}` replaced by the variable (empty when unset), as OpenCode does.
fn substitute_env(s: &str, lookup: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = s.to_owned();
    for name in env_refs(s) {
        let value = lookup(&name).unwrap_or_default();
        out = out.replace(&format!("{{env:{name}}}"), &value);
    }
    out
}

/// Host and port of an `http(s)://` URL (default ports 80 and 443).
pub fn endpoint(url: &str) -> Option<(String, u16)> {
    let (default_port, rest) = if let Some(r) = url.strip_prefix("http://") {
        (80, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (443, r)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse().ok()?),
            None if after.is_empty() => (host, default_port),
            None => return None,
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, default_port),
        }
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

/// Whether a proxy variable is set (then OpenCode's route to the provider is not ours to test).
pub fn proxy_configured(lookup: impl Fn(&str) -> Option<String>) -> bool {
    PROXY_VARS
        .iter()
        .any(|v| lookup(v).is_some_and(|x| !x.is_empty()))
}

/// One TCP connect to the URL's host and port, bounded by `timeout`.
///
/// # Errors
/// [`ProbeError`] says why it cannot be reached.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), ProbeError> {
    let (host, port) = endpoint(url).ok_or_else(|| ProbeError::BadUrl {
        url: url.to_owned(),
    })?;
    match tokio::time::timeout(
        timeout,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ProbeError::Connect { host, port, source }),
        Err(_) => Err(ProbeError::Timeout {
            host,
            port,
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(model: Option<&str>, provider: Value) -> OpencodeConfig {
        let provider = provider.as_object().cloned();
        OpencodeConfig {
            model: model.map(str::to_owned),
            enabled_providers: provider.as_ref().map(|p| p.keys().cloned().collect()),
            provider,
            ..OpencodeConfig::default()
        }
    }

    #[test]
    fn the_target_names_provider_model_and_url() {
        let c = cfg(
            Some("mock/m1"),
            json!({"mock": {"options": {"baseURL": "http://{env:MOCK_HOST}:4101/v1"}, "models": {"m1": {}}}}),
        );
        let t = target(&c, |k| (k == "MOCK_HOST").then(|| "127.0.0.1".to_owned())).unwrap();
        assert_eq!(t.provider, "mock");
        assert_eq!(t.model, "m1");
        assert_eq!(t.base_url.as_deref(), Some("http://127.0.0.1:4101/v1"));
    }

    #[test]
    fn missing_or_inconsistent_model_settings_say_what_to_add() {
        let none = target(&cfg(None, json!({})), |_| None).unwrap_err();
        assert_eq!(none, TargetError::NoModel);
        assert!(none.to_string().contains("model = \"provider/model\""));
        let c = cfg(Some("openai/gpt"), json!({"mock": {"models": {"m1": {}}}}));
        let e = target(&c, |_| None).unwrap_err().to_string();
        assert!(
            e.contains("provider openai is not enabled (enabled: mock)"),
            "{e}"
        );
        let c = cfg(Some("mock/m2"), json!({"mock": {"models": {"m1": {}}}}));
        let e = target(&c, |_| None).unwrap_err().to_string();
        assert!(e.contains("has no \"m2\" (it has: m1)"), "{e}");
        // A built-in provider without a table: no URL to check.
        let c = OpencodeConfig {
            model: Some("anthropic/claude".into()),
            ..OpencodeConfig::default()
        };
        assert_eq!(target(&c, |_| None).unwrap().base_url, None);
    }

    #[test]
    fn endpoints_of_urls() {
        let e = |u: &str| endpoint(u);
        assert_eq!(
            e("http://127.0.0.1:4101/v1"),
            Some(("127.0.0.1".into(), 4101))
        );
        assert_eq!(
            e("https://api.example.com/v1"),
            Some(("api.example.com".into(), 443))
        );
        assert_eq!(e("http://host"), Some(("host".into(), 80)));
        assert_eq!(e("http://u:p@host:8080?x"), Some(("host".into(), 8080)));
        assert_eq!(e("http://[::1]:9/v1"), Some(("::1".into(), 9)));
        assert_eq!(e("http://[::1]/"), Some(("::1".into(), 80)));
        assert_eq!(e("ftp://host"), None);
        assert_eq!(e("http://:80/"), None);
        assert_eq!(e("http://host:port/"), None);
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_an_open_one_reachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = format!("http://{}/v1", listener.local_addr().unwrap());
        probe(&open, PROBE_TIMEOUT).await.unwrap();
        drop(listener);
        let e = probe(&open, PROBE_TIMEOUT).await.unwrap_err();
        assert!(matches!(e, ProbeError::Connect { .. }), "{e}");
        let e = probe("nonsense", PROBE_TIMEOUT).await.unwrap_err();
        assert!(matches!(e, ProbeError::BadUrl { .. }), "{e}");
    }
}
