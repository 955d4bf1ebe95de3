//! One delivery: the HTTP request a channel gets for a rendered notification (ntfy's JSON
//! publish, or a webhook's JSON body signed with HMAC-SHA256), and its POST.

use super::http;
use super::policy::Notice;
use super::targets::TargetPolicy;
use super::text::Rendered;
use proto::notify::{AttentionKind, ChannelSpec, ChannelTarget};
use std::time::Duration;

/// The webhook signature header: `sha256=` and the hex HMAC-SHA256 of the body under the
/// channel's secret.
pub const SIGNATURE_HEADER: &str = "X-CodeMantle-Signature";
/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A request ready to POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where.
    pub url: String,
    /// Headers besides Host, Content-Length and Connection.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        hex::encode(ring::hmac::sign(&key, body).as_ref())
    )
}

/// The request `spec` gets for `rendered` (about `notice`, standing for `count`; `None` for
/// a test), sent at `now_ms`. `None` for a kind this relay cannot deliver to.
pub fn request(
    spec: &ChannelSpec,
    rendered: &Rendered,
    notice: Option<&Notice>,
    count: u32,
    now_ms: u64,
) -> Option<Request> {
    Some(match &spec.target {
        ChannelTarget::Ntfy { server, topic } => {
            let urgent = notice.is_some_and(|n| {
                matches!(
                    n.what,
                    super::policy::What::Attention(
                        AttentionKind::PermissionWaiting | AttentionKind::QuestionWaiting
                    )
                )
            });
            let body = serde_json::json!({
                "topic": topic,
                "title": rendered.title,
                "message": rendered.message,
                "priority": if urgent { 4 } else { 3 },
                "tags": [rendered.event],
            });
            let mut headers = vec![("Content-Type", "application/json".to_owned())];
            if let Some(token) = spec.secret.as_deref().filter(|t| !t.is_empty()) {
                headers.push(("Authorization", format!("Bearer {token}")));
            }
            Request {
                url: format!("{}/", server.trim_end_matches('/')),
                headers,
                body: body.to_string().into_bytes(),
            }
        }
        ChannelTarget::Webhook { url } => {
            let body = serde_json::json!({
                "type": "codemantle.notification",
                "event": rendered.event,
                "kind": notice.map(|n| match n.what {
                    super::policy::What::Attention(k) => serde_json::to_value(k).unwrap_or_default(),
                    super::policy::What::HostOffline { .. } => "host_offline".into(),
                }),
                "host": notice.map(|n| n.host.as_str()),
                "workspace": notice.map(|n| n.workspace.as_str()).filter(|w| !w.is_empty()),
                "session": notice.and_then(|n| n.session.as_deref()),
                "title": notice.and_then(|n| n.title.as_deref()),
                "request": notice.and_then(|n| n.request.as_deref()),
                "count": count,
                "summary": rendered.title,
                "text": rendered.message,
                "command": rendered.command,
                "ts_ms": now_ms,
            })
            .to_string()
            .into_bytes();
            let mut headers = vec![("Content-Type", "application/json".to_owned())];
            if let Some(secret) = spec.secret.as_deref() {
                headers.push((SIGNATURE_HEADER, signature(secret, &body)));
            }
            Request {
                url: url.clone(),
                headers,
                body,
            }
        }
        ChannelTarget::Unknown => return None,
    })
}

/// POSTs `req` to an address `policy` allows: `Ok` on a 2xx answer, else what went wrong
/// (for `notify list`).
///
/// # Errors
/// The status, the refusal or the transport failure, in words.
pub async fn send(req: &Request, policy: &TargetPolicy) -> Result<(), String> {
    let headers: Vec<(&str, String)> = req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    match http::post(&req.url, &headers, &req.body, DELIVERY_TIMEOUT, policy).await {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) => Err(format!("the receiver answered HTTP {status}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::policy::What;

    fn notice() -> Notice {
        Notice {
            host: "box".into(),
            workspace: "api".into(),
            session: Some("ses_1".into()),
            title: None,
            what: What::Attention(AttentionKind::PermissionWaiting),
            request: Some("per_1".into()),
        }
    }

    #[test]
    fn a_webhook_body_is_signed_with_hmac_sha256_of_the_exact_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let spec = ChannelSpec {
            name: "hook".into(),
            target: ChannelTarget::Webhook {
                url: "http://127.0.0.1:9/h".into(),
            },
            secret: Some("k".into()),
            events: vec![],
            quiet: None,
            ignore_presence: false,
        };
        let n = notice();
        let rendered = crate::notify::text::render(&n, 3);
        let req = request(&spec, &rendered, Some(&n), 3, 7).unwrap();
        let sig = req
            .headers
            .iter()
            .find(|(k, _)| *k == SIGNATURE_HEADER)
            .unwrap();
        assert_eq!(sig.1, signature("k", &req.body));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["count"], 3);
        assert_eq!(body["kind"], "permission_waiting");
        assert_eq!(body["request"], "per_1");
    }

    #[test]
    fn an_ntfy_request_publishes_json_with_the_token_as_bearer() {
        let spec = ChannelSpec {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "https://ntfy.example/".into(),
                topic: "cm".into(),
            },
            secret: Some("tk_1".into()),
            events: vec![],
            quiet: None,
            ignore_presence: false,
        };
        let n = notice();
        let req = request(&spec, &crate::notify::text::render(&n, 1), Some(&n), 1, 0).unwrap();
        assert_eq!(req.url, "https://ntfy.example/");
        assert!(
            req.headers
                .contains(&("Authorization", "Bearer tk_1".into()))
        );
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["topic"], "cm");
        assert_eq!(body["priority"], 4);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("cm-tui approve box api per_1")
        );
    }
}
