//! Plain HTTP/1.1 to one OpenCode server on 127.0.0.1, with HTTP Basic auth and a timeout on
//! every request (a request OpenCode accepts during its first half second is never answered,
//! so nothing here may wait without a bound).

use super::client::ClientError;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// The user name OpenCode expects with `OPENCODE_SERVER_PASSWORD`.
pub(crate) const USER: &str = "opencode";
/// Largest response body read into memory (a long session's messages can be several MB).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest error body quoted in logs.
const MAX_ERROR_BODY: usize = 512;

/// One server's address and credentials; cheap to clone.
#[derive(Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("Http")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A completed response.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Http {
    pub(crate) fn new(port: u16, password: &str) -> Self {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        let auth = HeaderValue::from_str(&format!("Basic {token}"))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            client,
            base: format!("http://127.0.0.1:{port}"),
            auth,
        }
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let what = || format!("{method} {}", strip_query(path));
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(header::AUTHORIZATION, self.auth.clone())
            .header(header::ACCEPT, "application/json");
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(serde_json::to_vec(v).map_err(|e| {
                    ClientError::Decode {
                        what: what(),
                        reason: e.to_string(),
                    }
                })?))
            }
            None => Full::new(Bytes::new()),
        };
        req.body(body).map_err(|e| ClientError::Transport {
            what: what(),
            reason: e.to_string(),
        })
    }

    /// Sends a request and reads the whole answer, all within `timeout`.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let what = format!("{method} {}", strip_query(path));
        let req = self.build(method, path, body)?;
        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ClientError::Transport {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| ClientError::Transport {
                    what: what.clone(),
                    reason: e.to_string(),
                })?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ClientError::Timeout {
                what: what.clone(),
                after: timeout,
            })?
    }

    /// Sends a request and parses a 2xx JSON answer; other statuses become errors.
    pub(crate) async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let what = format!("{method} {}", strip_query(path));
        let answer = self.send(method, path, body, timeout).await?;
        check(&what, &answer)?;
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&answer.body).map_err(|e| ClientError::Decode {
            what,
            reason: e.to_string(),
        })
    }

    /// Opens a streaming GET (SSE); `timeout` bounds only the wait for the response head.
    pub(crate) async fn stream(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<hyper::body::Incoming, ClientError> {
        let what = format!("GET {}", strip_query(path));
        let mut req = self.build(Method::GET, path, None)?;
        req.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let resp = tokio::time::timeout(timeout, self.client.request(req))
            .await
            .map_err(|_| ClientError::Timeout {
                what: what.clone(),
                after: timeout,
            })?
            .map_err(|e| ClientError::Transport {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(ClientError::Status {
                what,
                status: resp.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(resp.into_body())
    }
}

/// Maps non-2xx answers to errors.
pub(crate) fn check(what: &str, answer: &Answer) -> Result<(), ClientError> {
    if answer.status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(&answer.body);
    let body: String = body.chars().take(MAX_ERROR_BODY).collect();
    Err(if answer.status == StatusCode::NOT_FOUND {
        ClientError::NotFound {
            what: what.to_owned(),
            body,
        }
    } else {
        ClientError::Status {
            what: what.to_owned(),
            status: answer.status.as_u16(),
            body,
        }
    })
}

fn strip_query(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// Percent-encodes a query value: everything but unreserved characters and `/`.
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("/tmp/ws"), "/tmp/ws");
        assert_eq!(encode_query("/tmp/my ws&x=1"), "/tmp/my%20ws%26x%3D1");
        assert_eq!(encode_query("/tmp/é"), "/tmp/%C3%A9");
    }

    #[test]
    fn statuses_map_to_errors() {
        let a = Answer {
            status: StatusCode::NOT_FOUND,
            body: Bytes::from_static(b"{\"_tag\":\"PermissionNotFoundError\"}"),
        };
        assert!(matches!(check("x", &a), Err(ClientError::NotFound { .. })));
        let a = Answer {
            status: StatusCode::BAD_REQUEST,
            body: Bytes::new(),
        };
        assert!(matches!(
            check("x", &a),
            Err(ClientError::Status { status: 400, .. })
        ));
        let a = Answer {
            status: StatusCode::NO_CONTENT,
            body: Bytes::new(),
        };
        assert!(check("x", &a).is_ok());
    }
}
