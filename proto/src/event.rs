//! Typed workspace events: what the agent makes of OpenCode's `/event` stream (heartbeats and
//! noise dropped) plus the agent's own OpenCode process events. Each carries a per-workspace
//! sequence number so a watcher can detect gaps and resume.

use crate::ops::{
    OpencodeInfo, Part, PermissionAnswer, PermissionRequest, QuestionRequest, SessionInfo,
    SessionStatus,
};
use serde::{Deserialize, Serialize};

/// One event on a `watch_events` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFrame {
    /// Per-workspace sequence number, strictly increasing by one.
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// A workspace event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A session was created or changed (title, times).
    SessionUpdated {
        /// The session.
        session: SessionInfo,
    },
    /// A session was deleted.
    SessionDeleted {
        /// Session id.
        session: String,
    },
    /// A session's status changed.
    SessionStatus {
        /// Session id.
        session: String,
        /// New status.
        status: SessionStatus,
    },
    /// A turn ended: the session is idle.
    SessionIdle {
        /// Session id.
        session: String,
    },
    /// A turn failed (includes aborts: `MessageAbortedError`).
    SessionError {
        /// Session id.
        session: String,
        /// Error name.
        name: String,
        /// Error message.
        message: String,
    },
    /// A message was created or finished.
    MessageUpdated {
        /// Session id.
        session: String,
        /// Message id.
        message_id: String,
        /// `user` or `assistant`.
        role: String,
        /// Finish reason, once finished.
        #[serde(default)]
        finish: Option<String>,
    },
    /// A part was created or changed (tool state, the final text).
    PartUpdated {
        /// Session id.
        session: String,
        /// Message id.
        message_id: String,
        /// The part.
        part: Part,
    },
    /// Streamed text.
    TextDelta {
        /// Session id.
        session: String,
        /// Message id.
        message_id: String,
        /// Part id.
        part_id: String,
        /// The new text.
        delta: String,
    },
    /// OpenCode asks permission for a tool call.
    PermissionAsked {
        /// The request.
        request: PermissionRequest,
    },
    /// A permission request was answered.
    PermissionReplied {
        /// Session id.
        session: String,
        /// Request id.
        request_id: String,
        /// The answer.
        answer: PermissionAnswer,
    },
    /// The model asks the operator a question.
    QuestionAsked {
        /// The question.
        request: QuestionRequest,
    },
    /// A question was answered or rejected.
    QuestionReplied {
        /// Session id.
        session: String,
        /// Request id.
        request_id: String,
    },
    /// A file in the workspace was edited by a tool.
    FileEdited {
        /// Path (as OpenCode reports it).
        file: String,
    },
    /// The workspace's OpenCode process changed state (started, crashed, restarted, stopped).
    Opencode {
        /// The new state.
        info: OpencodeInfo,
    },
    /// The watcher fell behind or resumed beyond the replay buffer: re-read the history.
    Resync {
        /// Why.
        reason: String,
    },
}

impl Event {
    /// The session an event belongs to, if any.
    pub fn session(&self) -> Option<&str> {
        match self {
            Self::SessionUpdated { session } => Some(&session.id),
            Self::SessionDeleted { session }
            | Self::SessionStatus { session, .. }
            | Self::SessionIdle { session }
            | Self::SessionError { session, .. }
            | Self::MessageUpdated { session, .. }
            | Self::PartUpdated { session, .. }
            | Self::TextDelta { session, .. }
            | Self::PermissionReplied { session, .. }
            | Self::QuestionReplied { session, .. } => Some(session),
            Self::PermissionAsked { request } => Some(&request.session),
            Self::QuestionAsked { request } => Some(&request.session),
            Self::FileEdited { .. } | Self::Opencode { .. } | Self::Resync { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_event_json() {
        let f = EventFrame {
            seq: 3,
            event: Event::TextDelta {
                session: "ses_1".into(),
                message_id: "msg_1".into(),
                part_id: "prt_1".into(),
                delta: "Hello ".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"seq":3,"event":{"type":"text_delta","session":"ses_1","message_id":"msg_1","part_id":"prt_1","delta":"Hello "}}"#
        );
        assert_eq!(f.event.session(), Some("ses_1"));
    }
}
