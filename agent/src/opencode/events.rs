//! OpenCode's `/event` JSON mapped to typed [`proto::event::Event`]s. Pure: no I/O, no clock.
//!
//! Kept: sessions (created, updated, deleted, status, idle, error), messages and parts, text
//! deltas, permission and question requests and answers, edited files. Dropped as noise:
//! `server.connected`, `server.heartbeat`, `plugin.added`, `catalog.updated`,
//! `reference.updated`, `integration.updated`, `file.watcher.updated`, `session.diff` and every
//! type this build does not know.

use super::map::{self, str_at};
use proto::event::Event;
use proto::ops::{PermissionAnswer, SessionStatus};
use serde_json::Value;
use std::collections::HashMap;

/// Maps events, remembering each session's last status so `SessionUpdated` can carry it
/// (OpenCode's session objects do not include it).
#[derive(Debug, Default)]
pub struct EventMapper {
    statuses: HashMap<String, SessionStatus>,
}

/// OpenCode's event type of `v`, if any.
pub fn event_type(v: &Value) -> Option<&str> {
    str_at(v, "type")
}

impl EventMapper {
    /// A mapper that knows no sessions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps one event; `None` for noise and unknown types.
    pub fn map(&mut self, v: &Value) -> Option<Event> {
        let props = v.get("properties").unwrap_or(&Value::Null);
        let session_of = |obj: &Value| {
            str_at(obj, "sessionID")
                .or_else(|| str_at(props, "sessionID"))
                .map(str::to_owned)
        };
        match event_type(v)? {
            "session.created" | "session.updated" => {
                let info = props.get("info")?;
                let id = str_at(info, "id")?;
                let status = self
                    .statuses
                    .get(id)
                    .cloned()
                    .unwrap_or(SessionStatus::Idle);
                Some(Event::SessionUpdated {
                    session: map::session_info(info, status)?,
                })
            }
            "session.deleted" => {
                let id = props
                    .get("info")
                    .and_then(|i| str_at(i, "id"))
                    .or_else(|| str_at(props, "sessionID"))?
                    .to_owned();
                self.statuses.remove(&id);
                Some(Event::SessionDeleted { session: id })
            }
            "session.status" => {
                let session = str_at(props, "sessionID")?.to_owned();
                let status = map::session_status(props.get("status")?);
                self.statuses.insert(session.clone(), status.clone());
                Some(Event::SessionStatus { session, status })
            }
            "session.idle" => {
                let session = str_at(props, "sessionID")?.to_owned();
                self.statuses.insert(session.clone(), SessionStatus::Idle);
                Some(Event::SessionIdle { session })
            }
            "session.error" => {
                let error = props.get("error").unwrap_or(&Value::Null);
                Some(Event::SessionError {
                    session: str_at(props, "sessionID")?.to_owned(),
                    name: str_at(error, "name").unwrap_or("UnknownError").to_owned(),
                    message: error
                        .get("data")
                        .and_then(|d| str_at(d, "message"))
                        .unwrap_or_default()
                        .to_owned(),
                })
            }
            "message.updated" => {
                let info = props.get("info")?;
                Some(Event::MessageUpdated {
                    session: session_of(info)?,
                    message_id: str_at(info, "id")?.to_owned(),
                    role: str_at(info, "role").unwrap_or_default().to_owned(),
                    finish: str_at(info, "finish").map(str::to_owned),
                })
            }
            "message.part.updated" => {
                let part = props.get("part")?;
                Some(Event::PartUpdated {
                    session: session_of(part)?,
                    message_id: str_at(part, "messageID")?.to_owned(),
                    part: map::part(part)?,
                })
            }
            "message.part.delta" if str_at(props, "field") == Some("text") => {
                Some(Event::TextDelta {
                    session: str_at(props, "sessionID")?.to_owned(),
                    message_id: str_at(props, "messageID")?.to_owned(),
                    part_id: str_at(props, "partID")?.to_owned(),
                    delta: str_at(props, "delta")?.to_owned(),
                })
            }
            "permission.asked" => Some(Event::PermissionAsked {
                request: map::permission(props)?,
            }),
            "permission.replied" => Some(Event::PermissionReplied {
                session: str_at(props, "sessionID")?.to_owned(),
                request_id: str_at(props, "requestID")?.to_owned(),
                answer: match str_at(props, "reply")? {
                    "once" => PermissionAnswer::Once,
                    "always" => PermissionAnswer::Always,
                    "reject" => PermissionAnswer::Reject,
                    _ => return None,
                },
            }),
            "question.asked" => Some(Event::QuestionAsked {
                request: map::question(props)?,
            }),
            "question.replied" | "question.rejected" => Some(Event::QuestionReplied {
                session: str_at(props, "sessionID")?.to_owned(),
                request_id: str_at(props, "requestID")?.to_owned(),
            }),
            "file.edited" => Some(Event::FileEdited {
                file: str_at(props, "file")?.to_owned(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ops::Part;
    use std::collections::BTreeMap;

    const EVENTS: &str = include_str!("../../tests/fixtures/opencode/events.jsonl");
    const SAMPLES: &str = include_str!("../../tests/fixtures/opencode/event_samples.json");

    fn all() -> Vec<Value> {
        EVENTS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn kind(e: &Event) -> &'static str {
        match e {
            Event::SessionUpdated { .. } => "session_updated",
            Event::SessionDeleted { .. } => "session_deleted",
            Event::SessionStatus { .. } => "session_status",
            Event::SessionIdle { .. } => "session_idle",
            Event::SessionError { .. } => "session_error",
            Event::MessageUpdated { .. } => "message_updated",
            Event::PartUpdated { .. } => "part_updated",
            Event::TextDelta { .. } => "text_delta",
            Event::PermissionAsked { .. } => "permission_asked",
            Event::PermissionReplied { .. } => "permission_replied",
            Event::QuestionAsked { .. } => "question_asked",
            Event::QuestionReplied { .. } => "question_replied",
            Event::FileEdited { .. } => "file_edited",
            Event::Opencode { .. } => "opencode",
            Event::Resync { .. } => "resync",
        }
    }

    #[test]
    fn captured_stream_maps_with_noise_dropped() {
        let mut m = EventMapper::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
        for v in all() {
            match m.map(&v) {
                Some(e) => *counts.entry(kind(&e)).or_default() += 1,
                None => {
                    *dropped
                        .entry(event_type(&v).unwrap().to_owned())
                        .or_default() += 1
                }
            }
        }
        let expect: BTreeMap<&str, usize> = [
            ("session_updated", 16),
            ("session_status", 20),
            ("session_idle", 5),
            ("session_error", 1),
            ("message_updated", 30),
            ("part_updated", 30),
            ("text_delta", 32),
            ("permission_asked", 2),
            ("permission_replied", 2),
            ("file_edited", 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(counts, expect);
        let noise: Vec<&str> = dropped.keys().map(String::as_str).collect();
        assert_eq!(
            noise,
            [
                "catalog.updated",
                "file.watcher.updated",
                "integration.updated",
                "plugin.added",
                "reference.updated",
                "server.connected",
                "session.diff"
            ]
        );
    }

    #[test]
    fn deltas_concatenate_to_the_final_text_and_the_turn_ends_idle() {
        let mut m = EventMapper::new();
        let events: Vec<Event> = all().iter().filter_map(|v| m.map(v)).collect();
        let target = "msg_2141a0859001DRgJ2I55g5HtsD";
        let streamed: String = events
            .iter()
            .filter_map(|e| match e {
                Event::TextDelta {
                    message_id, delta, ..
                } if message_id == target => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        // The last text update of the message carries the full text (the first one is empty).
        let final_text = events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::PartUpdated {
                    message_id,
                    part: Part::Text { text, .. },
                    ..
                } if message_id == target => Some(text.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(streamed, final_text);
        assert_eq!(final_text, "Hello from mock LLM. You said: Say hello");
        // After that message finishes, the session goes idle.
        let finished = events
            .iter()
            .position(|e| matches!(e, Event::MessageUpdated { message_id, finish: Some(f), .. } if message_id == target && f == "stop"))
            .unwrap();
        assert!(
            events[finished..]
                .iter()
                .any(|e| matches!(e, Event::SessionIdle { .. }))
        );
    }

    #[test]
    fn first_sample_of_each_type() {
        let samples: BTreeMap<String, Value> = serde_json::from_str(SAMPLES).unwrap();
        let mut m = EventMapper::new();
        let get = |m: &mut EventMapper, k: &str| m.map(&samples[k]);
        assert!(get(&mut m, "server.connected").is_none());
        assert!(get(&mut m, "plugin.added").is_none());
        let Some(Event::SessionStatus { status, .. }) = get(&mut m, "session.status") else {
            panic!()
        };
        assert_eq!(status, SessionStatus::Busy);
        // A session update after a busy status carries it.
        let Some(Event::SessionUpdated { session }) = get(&mut m, "session.updated") else {
            panic!()
        };
        assert_eq!(session.status, SessionStatus::Busy);
        assert_eq!(session.id, "ses_debe5fba6ffeqG9YievfadTPxh");
        let Some(Event::PermissionAsked { request }) = get(&mut m, "permission.asked") else {
            panic!()
        };
        assert_eq!(request.id, "per_2141a0e8d001qfvGPOWVP2FMNp");
        assert_eq!(request.permission, "edit");
        assert_eq!(request.patterns, vec!["notes/hello.txt"]);
        assert!(
            request.metadata["diff"]
                .as_str()
                .unwrap()
                .contains("+Written by write tool")
        );
        assert_eq!(
            get(&mut m, "permission.replied"),
            Some(Event::PermissionReplied {
                session: "ses_debe5fba6ffeqG9YievfadTPxh".into(),
                request_id: "per_2141a0e8d001qfvGPOWVP2FMNp".into(),
                answer: PermissionAnswer::Once,
            })
        );
        assert_eq!(
            get(&mut m, "session.error"),
            Some(Event::SessionError {
                session: "ses_debe5fba6ffeqG9YievfadTPxh".into(),
                name: "MessageAbortedError".into(),
                message: "Aborted".into(),
            })
        );
        assert_eq!(
            get(&mut m, "message.part.delta"),
            Some(Event::TextDelta {
                session: "ses_debe5fba6ffeqG9YievfadTPxh".into(),
                message_id: "msg_2141a0859001DRgJ2I55g5HtsD".into(),
                part_id: "prt_2141a0ce1001eHpOKjZt3WUI7s".into(),
                delta: "Hello ".into(),
            })
        );
        assert_eq!(
            get(&mut m, "file.edited"),
            Some(Event::FileEdited {
                file: "/home/dev/ws/notes/hello.txt".into()
            })
        );
        let Some(Event::SessionIdle { .. }) = get(&mut m, "session.idle") else {
            panic!()
        };
        let Some(Event::SessionUpdated { session }) = get(&mut m, "session.updated") else {
            panic!()
        };
        assert_eq!(session.status, SessionStatus::Idle);
    }

    #[test]
    fn questions_and_deletes() {
        let mut m = EventMapper::new();
        let asked = serde_json::json!({"type":"question.asked","properties":{"id":"que_1","sessionID":"ses_1","questions":[{"question":"Which color?"}],"tool":{}}});
        assert!(
            matches!(m.map(&asked), Some(Event::QuestionAsked { request }) if request.id == "que_1")
        );
        let replied = serde_json::json!({"type":"question.replied","properties":{"sessionID":"ses_1","requestID":"que_1","answers":[["Blue"]]}});
        assert_eq!(
            m.map(&replied),
            Some(Event::QuestionReplied {
                session: "ses_1".into(),
                request_id: "que_1".into()
            })
        );
        let deleted = serde_json::json!({"type":"session.deleted","properties":{"sessionID":"ses_1","info":{"id":"ses_1"}}});
        assert_eq!(
            m.map(&deleted),
            Some(Event::SessionDeleted {
                session: "ses_1".into()
            })
        );
        assert!(
            m.map(&serde_json::json!({"type":"server.heartbeat","properties":{}}))
                .is_none()
        );
        assert!(m.map(&serde_json::json!({"no":"type"})).is_none());
    }
}
