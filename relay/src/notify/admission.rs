//! What `notify_add` checks before it stores a channel: the spec's own rules
//! (`proto::notify::check_spec`: names, topic, secret, quiet hours), a URL this relay's
//! client can POST to, and a target the operator's `[notify]` settings allow. Delivery checks
//! the target again on the address it connects to; this check is for a clear error now.

use super::http::{self, HttpError, Url};
use super::targets::TargetPolicy;
use proto::notify::{ChannelSpec, ChannelTarget, check_spec};
use std::time::Duration;

/// How long the lookup of a new channel's host may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL a channel POSTs to (`None` for a kind this relay does not know).
pub fn target_url(target: &ChannelTarget) -> Option<&str> {
    match target {
        ChannelTarget::Ntfy { server, .. } => Some(server),
        ChannelTarget::Webhook { url } => Some(url),
        ChannelTarget::Unknown => None,
    }
}

/// Checks a channel a user subscribes.
///
/// # Errors
/// What is wrong and what to do, naming the `relay.toml` setting for a refused target.
pub async fn check_channel(spec: &ChannelSpec, policy: &TargetPolicy) -> Result<(), String> {
    check_spec(spec)?;
    let Some(text) = target_url(&spec.target) else {
        return Err("unknown channel kind: use ntfy or webhook".into());
    };
    let url = Url::parse(text).map_err(|e| e.to_string())?;
    if url.tls && rustls_pki_types::ServerName::try_from(url.host.as_str()).is_err() {
        return Err(format!(
            "{text:?}: {:?} is not a host name https can verify",
            url.host
        ));
    }
    if policy.check_literal(&url.host).map_err(|e| e.to_string())? {
        return Ok(());
    }
    // A name: refused now if it resolves only to addresses the relay may not reach. A lookup
    // that fails is not a refusal (the name may resolve later); delivery checks again.
    match tokio::time::timeout(LOOKUP_TIMEOUT, http::resolve(&url, policy)).await {
        Ok(Err(HttpError::Refused(refused))) => Err(refused.to_string()),
        Ok(Ok(_) | Err(_)) | Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str) -> ChannelSpec {
        ChannelSpec {
            name: "hook".into(),
            target: ChannelTarget::Webhook { url: url.into() },
            secret: Some("k".into()),
            events: vec![],
            quiet: None,
            ignore_presence: false,
        }
    }

    #[tokio::test]
    async fn urls_are_parsed_and_local_targets_refused_with_the_setting_to_change() {
        let policy = TargetPolicy::default();
        for (url, says) in [
            ("http://h:notaport/", "bad URL"),
            ("http://user:pw@h/", "bad URL"),
            ("https://[::1/", "bad URL"),
            ("http://127.0.0.1:8080/h", "allow_hosts"),
            ("http://[::1]/", "loopback"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://localhost:9/", "allow_private_targets"),
        ] {
            let err = check_channel(&hook(url), &policy).await.unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        assert_eq!(
            check_channel(&hook("https://8.8.8.8/h"), &policy).await,
            Ok(())
        );
        let open = TargetPolicy {
            allow_private: true,
            allow_hosts: vec![],
        };
        assert_eq!(
            check_channel(&hook("http://127.0.0.1:8080/h"), &open).await,
            Ok(())
        );
    }
}
