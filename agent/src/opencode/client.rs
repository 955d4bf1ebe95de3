//! The typed OpenCode client: one method per call the agent is allowed to make, each scoped to
//! one workspace (`?directory=<root>`), each with a timeout. There is deliberately no generic
//! pass-through: an operator can only cause the calls listed here.

use super::http::{Http, encode_query};
use super::ids::is_id;
use super::map;
use super::sse::EventStream;
use http::Method;
use proto::ops::{
    FileDiff, Message, PermissionAnswer, PermissionRequest, QuestionRequest, SessionInfo,
    SessionStatus,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// A prompt's model (`provider`, `model`) and agent; `None` leaves OpenCode's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct PromptChoice<'a> {
    /// Provider and model ids, already checked against what OpenCode offers.
    pub model: Option<(&'a str, &'a str)>,
    /// Agent name, already checked against OpenCode's agents.
    pub agent: Option<&'a str>,
}

/// Bound on ordinary calls.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one health probe (requests sent in OpenCode's first half second are never
/// answered; a short timeout and a retry get past that).
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on `POST /global/dispose` while stopping.
pub const DISPOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on opening the event stream.
pub const EVENTS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call failed. Messages are for logs; operators get [`crate::ops`]'s public form.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No complete answer in time.
    #[error("OpenCode did not answer {what} within {after:?}")]
    Timeout {
        /// The call.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// Connection-level failure.
    #[error("cannot reach OpenCode for {what}: {reason}")]
    Transport {
        /// The call.
        what: String,
        /// The cause.
        reason: String,
    },
    /// HTTP 404: the session or request does not exist.
    #[error("OpenCode answered 404 to {what}: {body}")]
    NotFound {
        /// The call.
        what: String,
        /// Start of OpenCode's body.
        body: String,
    },
    /// Any other non-2xx status.
    #[error("OpenCode answered {status} to {what}: {body}")]
    Status {
        /// The call.
        what: String,
        /// HTTP status.
        status: u16,
        /// Start of OpenCode's body.
        body: String,
    },
    /// The answer did not have the expected shape.
    #[error("unexpected answer from OpenCode to {what}: {reason}")]
    Decode {
        /// The call.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// An id that is not of OpenCode's form (it would not be safe in a URL path).
    #[error("{id:?} is not a valid {kind} id")]
    BadId {
        /// `session`, `message`, `permission request`, `question`.
        kind: &'static str,
        /// The id as given.
        id: String,
    },
}

/// `GET /global/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `healthy`.
    pub healthy: bool,
    /// OpenCode's version.
    pub version: Option<String>,
}

/// A client for one workspace on one running OpenCode.
#[derive(Debug, Clone)]
pub struct OpencodeClient {
    http: Http,
    directory: String,
}

fn checked<'a>(id: &'a str, prefix: &str, kind: &'static str) -> Result<&'a str, ClientError> {
    if is_id(id, prefix) {
        Ok(id)
    } else {
        Err(ClientError::BadId {
            kind,
            id: id.to_owned(),
        })
    }
}

fn shape(what: &str, expected: &str) -> ClientError {
    ClientError::Decode {
        what: what.to_owned(),
        reason: format!("expected {expected}"),
    }
}

impl OpencodeClient {
    /// A client for the server on `127.0.0.1:port` with `password`, scoped to `directory`.
    pub fn new(port: u16, password: &str, directory: &Path) -> Self {
        Self {
            http: Http::new(port, password),
            directory: encode_query(&directory.to_string_lossy()),
        }
    }

    /// `path?directory=…` plus `extra` (already encoded `k=v` pairs).
    fn at(&self, path: &str, extra: &[String]) -> String {
        let mut s = format!("{path}?directory={}", self.directory);
        for e in extra {
            s.push('&');
            s.push_str(e);
        }
        s
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.http
            .json(method, &path, body.as_ref(), CALL_TIMEOUT)
            .await
    }

    /// `GET /global/health` with the short probe timeout.
    ///
    /// # Errors
    /// Not answering within [`HEALTH_TIMEOUT`], or not 2xx.
    pub async fn health(&self) -> Result<Health, ClientError> {
        let v = self
            .http
            .json(Method::GET, "/global/health", None, HEALTH_TIMEOUT)
            .await?;
        Ok(Health {
            healthy: v.get("healthy").and_then(Value::as_bool).unwrap_or(false),
            version: map::str_at(&v, "version").map(str::to_owned),
        })
    }

    /// `POST /global/dispose`: aborts every session and kills tool processes.
    ///
    /// # Errors
    /// As any call.
    pub async fn dispose(&self) -> Result<bool, ClientError> {
        let v = self
            .http
            .json(Method::POST, "/global/dispose", None, DISPOSE_TIMEOUT)
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `GET /session`: the workspace's sessions, newest first (statuses not filled in: see
    /// [`Self::session_status`]).
    ///
    /// # Errors
    /// As any call.
    pub async fn list_sessions(&self) -> Result<Vec<SessionInfo>, ClientError> {
        let v = self
            .call(Method::GET, self.at("/session", &[]), None)
            .await?;
        map::list(&v, |s| map::session_info(s, SessionStatus::Idle))
            .ok_or_else(|| shape("GET /session", "an array"))
    }

    /// `POST /session`.
    ///
    /// # Errors
    /// As any call.
    pub async fn create_session(&self, title: Option<&str>) -> Result<SessionInfo, ClientError> {
        let body = match title {
            Some(t) => json!({ "title": t }),
            None => json!({}),
        };
        let v = self
            .call(Method::POST, self.at("/session", &[]), Some(body))
            .await?;
        map::session_info(&v, SessionStatus::Idle)
            .ok_or_else(|| shape("POST /session", "a session"))
    }

    /// `DELETE /session/{id}`.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown session.
    pub async fn delete_session(&self, id: &str) -> Result<bool, ClientError> {
        let id = checked(id, "ses", "session")?;
        let v = self
            .call(
                Method::DELETE,
                self.at(&format!("/session/{id}"), &[]),
                None,
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `PATCH /session/{id}` with a new title.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown session.
    pub async fn rename_session(&self, id: &str, title: &str) -> Result<SessionInfo, ClientError> {
        let id = checked(id, "ses", "session")?;
        let v = self
            .call(
                Method::PATCH,
                self.at(&format!("/session/{id}"), &[]),
                Some(json!({ "title": title })),
            )
            .await?;
        map::session_info(&v, SessionStatus::Idle)
            .ok_or_else(|| shape("PATCH /session/{id}", "a session"))
    }

    /// `GET /session/status`: busy and retrying sessions (idle ones are omitted).
    ///
    /// # Errors
    /// As any call.
    pub async fn session_status(&self) -> Result<HashMap<String, SessionStatus>, ClientError> {
        let v = self
            .call(Method::GET, self.at("/session/status", &[]), None)
            .await?;
        let obj = v
            .as_object()
            .ok_or_else(|| shape("GET /session/status", "an object"))?;
        Ok(obj
            .iter()
            .map(|(k, s)| (k.clone(), map::session_status(s)))
            .collect())
    }

    /// `POST /session/{id}/prompt_async` with one text part and the given user message id;
    /// returns as soon as OpenCode accepted it (the answer streams as events).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown session.
    pub async fn prompt_async(
        &self,
        id: &str,
        text: &str,
        message_id: &str,
        choice: &PromptChoice<'_>,
    ) -> Result<(), ClientError> {
        let id = checked(id, "ses", "session")?;
        let message_id = checked(message_id, "msg", "message")?;
        let mut body = json!({
            "messageID": message_id,
            "parts": [{ "type": "text", "text": text }],
        });
        if let Some((provider, model)) = choice.model {
            body["model"] = json!({ "providerID": provider, "modelID": model });
        }
        if let Some(agent) = choice.agent {
            body["agent"] = json!(agent);
        }
        self.call(
            Method::POST,
            self.at(&format!("/session/{id}/prompt_async"), &[]),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `GET /config/providers`: the providers and models this OpenCode offers, and its
    /// default model per provider (OpenCode's JSON, read by [`super::models::catalog`]).
    ///
    /// # Errors
    /// As any call.
    pub async fn providers(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, self.at("/config/providers", &[]), None)
            .await
    }

    /// `GET /mcp`: the status of each MCP server, by name (OpenCode's `MCPStatus` map).
    ///
    /// # Errors
    /// As any call.
    pub async fn mcp_status(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, self.at("/mcp", &[]), None).await
    }

    /// `GET /agent`: the agents this OpenCode offers (OpenCode's JSON array).
    ///
    /// # Errors
    /// As any call.
    pub async fn agents(&self) -> Result<Value, ClientError> {
        self.call(Method::GET, self.at("/agent", &[]), None).await
    }

    /// `POST /session/{id}/abort`, after `GET /session/{id}`: OpenCode answers `true` to an
    /// abort of a session that does not exist, so the lookup is what reports it.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown session.
    pub async fn abort(&self, id: &str) -> Result<bool, ClientError> {
        let id = checked(id, "ses", "session")?;
        self.call(Method::GET, self.at(&format!("/session/{id}"), &[]), None)
            .await?;
        let v = self
            .call(
                Method::POST,
                self.at(&format!("/session/{id}/abort"), &[]),
                None,
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `GET /session/{id}/message`, oldest first (`limit`: at most that many of the newest).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown session.
    pub async fn messages(
        &self,
        id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, ClientError> {
        let id = checked(id, "ses", "session")?;
        let extra: Vec<String> = limit.map(|l| format!("limit={l}")).into_iter().collect();
        let v = self
            .call(
                Method::GET,
                self.at(&format!("/session/{id}/message"), &extra),
                None,
            )
            .await?;
        map::list(&v, map::message).ok_or_else(|| shape("GET /session/{id}/message", "an array"))
    }

    /// `GET /session/{id}/diff?messageID=<user message>`: the changes of one turn. (Without a
    /// message id OpenCode 1.18.33 always answers `[]`, so one is required here.)
    ///
    /// # Errors
    /// As any call.
    pub async fn session_diff(
        &self,
        id: &str,
        user_message_id: &str,
    ) -> Result<Vec<FileDiff>, ClientError> {
        let id = checked(id, "ses", "session")?;
        let mid = checked(user_message_id, "msg", "message")?;
        let v = self
            .call(
                Method::GET,
                self.at(
                    &format!("/session/{id}/diff"),
                    &[format!("messageID={mid}")],
                ),
                None,
            )
            .await?;
        map::list(&v, map::file_diff).ok_or_else(|| shape("GET /session/{id}/diff", "an array"))
    }

    /// `GET /vcs/diff?mode=git`: everything uncommitted in the working tree.
    ///
    /// # Errors
    /// As any call.
    pub async fn worktree_diff(&self) -> Result<Vec<FileDiff>, ClientError> {
        let v = self
            .call(
                Method::GET,
                self.at("/vcs/diff", &["mode=git".to_owned()]),
                None,
            )
            .await?;
        map::list(&v, map::file_diff).ok_or_else(|| shape("GET /vcs/diff", "an array"))
    }

    /// `GET /permission`: pending permission requests.
    ///
    /// # Errors
    /// As any call.
    pub async fn permissions(&self) -> Result<Vec<PermissionRequest>, ClientError> {
        let v = self
            .call(Method::GET, self.at("/permission", &[]), None)
            .await?;
        map::list(&v, map::permission).ok_or_else(|| shape("GET /permission", "an array"))
    }

    /// `POST /permission/{id}/reply`.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when the request is unknown or already answered.
    pub async fn reply_permission(
        &self,
        id: &str,
        answer: PermissionAnswer,
        message: Option<&str>,
    ) -> Result<bool, ClientError> {
        let id = checked(id, "per", "permission request")?;
        // OpenCode is never told "always": it would approve matching calls in every session
        // of the project with no way to list or revoke that. The agent keeps standing grants
        // itself (crate::grants) and answers each covered request "once".
        let reply = match answer {
            PermissionAnswer::Once | PermissionAnswer::Always => "once",
            PermissionAnswer::Reject => "reject",
        };
        let mut body = json!({ "reply": reply });
        if let (Some(m), Some(obj)) = (message, body.as_object_mut()) {
            obj.insert("message".into(), json!(m));
        }
        let v = self
            .call(
                Method::POST,
                self.at(&format!("/permission/{id}/reply"), &[]),
                Some(body),
            )
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// `GET /question`: pending questions.
    ///
    /// # Errors
    /// As any call.
    pub async fn questions(&self) -> Result<Vec<QuestionRequest>, ClientError> {
        let v = self
            .call(Method::GET, self.at("/question", &[]), None)
            .await?;
        map::list(&v, map::question).ok_or_else(|| shape("GET /question", "an array"))
    }

    /// `POST /question/{id}/reply` with one list of chosen labels per question.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when the question is unknown or already answered.
    pub async fn reply_question(
        &self,
        id: &str,
        answers: &[Vec<String>],
    ) -> Result<bool, ClientError> {
        let id = checked(id, "que", "question")?;
        let v = self
            .call(
                Method::POST,
                self.at(&format!("/question/{id}/reply"), &[]),
                Some(json!({ "answers": answers })),
            )
            .await?;
        Ok(v.as_bool().unwrap_or(true))
    }

    /// `POST /question/{id}/reject`.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] when the question is unknown or already answered.
    pub async fn reject_question(&self, id: &str) -> Result<bool, ClientError> {
        let id = checked(id, "que", "question")?;
        let v = self
            .call(
                Method::POST,
                self.at(&format!("/question/{id}/reject"), &[]),
                None,
            )
            .await?;
        Ok(v.as_bool().unwrap_or(true))
    }

    /// `GET /event`: the workspace's event stream (server-sent events).
    ///
    /// # Errors
    /// Not connected within [`EVENTS_CONNECT_TIMEOUT`].
    pub async fn events(&self) -> Result<EventStream, ClientError> {
        let body = self
            .http
            .stream(&self.at("/event", &[]), EVENTS_CONNECT_TIMEOUT)
            .await?;
        Ok(EventStream::new(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_are_checked_before_any_request() {
        // Port 9 (discard) is never contacted: the id check comes first.
        let c = OpencodeClient::new(9, "pw", Path::new("/tmp"));
        let err = c.abort("ses_../../global/dispose").await.unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::BadId {
                    kind: "session",
                    ..
                }
            ),
            "{err}"
        );
        let err = c
            .reply_permission("../x", PermissionAnswer::Once, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::BadId { .. }), "{err}");
    }

    #[test]
    fn every_call_is_scoped_to_the_workspace() {
        let c = OpencodeClient::new(9, "pw", Path::new("/tmp/my ws"));
        assert_eq!(c.at("/session", &[]), "/session?directory=/tmp/my%20ws");
        assert_eq!(
            c.at("/vcs/diff", &["mode=git".into()]),
            "/vcs/diff?directory=/tmp/my%20ws&mode=git"
        );
    }
}
