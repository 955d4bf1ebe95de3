//! OpenCode's JSON (sessions, messages, parts, permission requests, questions, diffs) mapped
//! into the `proto::ops` types operators see. Pure and lenient: a missing optional field gets
//! its default, and an item without an id is skipped rather than failing a whole list.

use proto::ops::{
    FileDiff, Message, Part, PermissionRequest, QuestionRequest, SessionInfo, SessionStatus,
};
use serde_json::Value;

/// `v[key]` as a string.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn string_at(v: &Value, key: &str) -> String {
    str_at(v, key).unwrap_or_default().to_owned()
}

/// A millisecond time (OpenCode sends integers; tolerate floats).
fn ms_at(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|t| t.as_u64().or_else(|| t.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0)
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Maps every element of a JSON array with `f`, skipping the ones it rejects.
pub(crate) fn list<T>(v: &Value, f: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    v.as_array().map(|a| a.iter().filter_map(f).collect())
}

/// A session status object (`{"type":"busy"}`, `{"type":"retry","attempt":2,…}`).
pub fn session_status(v: &Value) -> SessionStatus {
    match str_at(v, "type") {
        Some("busy") => SessionStatus::Busy,
        Some("retry") => SessionStatus::Retry {
            attempt: u32::try_from(v.get("attempt").and_then(Value::as_u64).unwrap_or(0))
                .unwrap_or(u32::MAX),
            message: string_at(v, "message"),
        },
        _ => SessionStatus::Idle,
    }
}

/// A session object, with the status known from elsewhere.
pub fn session_info(v: &Value, status: SessionStatus) -> Option<SessionInfo> {
    let time = v.get("time").unwrap_or(&Value::Null);
    let mut title = string_at(v, "title");
    proto::message::truncate_utf8(&mut title, proto::ops::MAX_TITLE_LEN);
    Some(SessionInfo {
        id: str_at(v, "id")?.to_owned(),
        title,
        parent: str_at(v, "parentID").map(str::to_owned),
        created_ms: ms_at(time, "created"),
        updated_ms: ms_at(time, "updated"),
        status,
    })
}

/// One part of a message.
pub fn part(v: &Value) -> Option<Part> {
    let id = str_at(v, "id")?.to_owned();
    let kind = str_at(v, "type").unwrap_or("unknown");
    Some(match kind {
        "text" => Part::Text {
            id,
            text: string_at(v, "text"),
        },
        "reasoning" => Part::Reasoning {
            id,
            text: string_at(v, "text"),
        },
        "tool" => {
            let state = v.get("state").unwrap_or(&Value::Null);
            Part::Tool {
                id,
                tool: string_at(v, "tool"),
                status: str_at(state, "status").unwrap_or("pending").to_owned(),
                title: str_at(state, "title").map(str::to_owned),
                input: state.get("input").cloned().unwrap_or(Value::Null),
                output: str_at(state, "output").map(str::to_owned),
                error: str_at(state, "error").map(str::to_owned),
            }
        }
        "patch" => Part::Patch {
            id,
            files: strings_at(v, "files"),
        },
        other => Part::Other {
            id,
            kind: other.to_owned(),
        },
    })
}

/// One message with its parts (`{"info":{…},"parts":[…]}`).
pub fn message(v: &Value) -> Option<Message> {
    let info = v.get("info")?;
    Some(Message {
        id: str_at(info, "id")?.to_owned(),
        role: string_at(info, "role"),
        created_ms: ms_at(info.get("time").unwrap_or(&Value::Null), "created"),
        finish: str_at(info, "finish").map(str::to_owned),
        error: info
            .get("error")
            .and_then(|e| str_at(e, "name"))
            .map(str::to_owned),
        parts: list(v.get("parts").unwrap_or(&Value::Null), part).unwrap_or_default(),
    })
}

/// A pending permission request.
pub fn permission(v: &Value) -> Option<PermissionRequest> {
    Some(PermissionRequest {
        id: str_at(v, "id")?.to_owned(),
        session: str_at(v, "sessionID")?.to_owned(),
        permission: string_at(v, "permission"),
        patterns: strings_at(v, "patterns"),
        metadata: v.get("metadata").cloned().unwrap_or(Value::Null),
        always: strings_at(v, "always"),
    })
}

/// A pending question.
pub fn question(v: &Value) -> Option<QuestionRequest> {
    Some(QuestionRequest {
        id: str_at(v, "id")?.to_owned(),
        session: str_at(v, "sessionID")?.to_owned(),
        questions: v.get("questions").cloned().unwrap_or(Value::Null),
    })
}

/// One changed file.
pub fn file_diff(v: &Value) -> Option<FileDiff> {
    Some(FileDiff {
        file: str_at(v, "file")?.to_owned(),
        patch: string_at(v, "patch"),
        additions: v.get("additions").and_then(Value::as_u64).unwrap_or(0),
        deletions: v.get("deletions").and_then(Value::as_u64).unwrap_or(0),
        status: str_at(v, "status").unwrap_or("modified").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_session_title_is_cut() {
        let mut v = sample("session.json");
        v["title"] = Value::String("t".repeat(1 << 20));
        let info = session_info(&v, SessionStatus::Idle).unwrap();
        assert_eq!(info.title.len(), proto::ops::MAX_TITLE_LEN);
    }

    fn sample(name: &str) -> Value {
        let text = match name {
            "messages.json" => include_str!("../../tests/fixtures/opencode/messages.json"),
            "session.json" => include_str!("../../tests/fixtures/opencode/session.json"),
            "session_diff.json" => include_str!("../../tests/fixtures/opencode/session_diff.json"),
            other => panic!("no sample {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn messages_sample_maps_every_message_and_part() {
        let v = sample("messages.json");
        let msgs = list(&v, message).unwrap();
        assert_eq!(msgs.len(), 10);
        assert_eq!(msgs[0].role, "user");
        assert_eq!(msgs[0].created_ms, 1_795_633_579_130);
        assert_eq!(
            msgs[0].parts,
            vec![Part::Text {
                id: "prt_2141a0481001mEeOPdXA1jz6YV".into(),
                text: "Say hello".into()
            }]
        );
        assert_eq!(msgs[1].finish.as_deref(), Some("stop"));
        assert!(
            matches!(&msgs[1].parts[1], Part::Text { text, .. } if text == "Hello from mock LLM. You said: Say hello")
        );
        assert!(matches!(&msgs[1].parts[0], Part::Other { kind, .. } if kind == "step-start"));
        // The write tool call, completed.
        let Part::Tool {
            tool,
            status,
            title,
            input,
            output,
            error,
            ..
        } = &msgs[3].parts[1]
        else {
            panic!("{:?}", msgs[3].parts[1]);
        };
        assert_eq!((tool.as_str(), status.as_str()), ("write", "completed"));
        assert_eq!(title.as_deref(), Some("notes/hello.txt"));
        assert_eq!(input["content"], "Written by write tool\n");
        assert_eq!(output.as_deref(), Some("Wrote file successfully."));
        assert_eq!(error, &None);
        assert!(matches!(&msgs[3].parts[3], Part::Patch { files, .. } if files.len() == 1));
        // The rejected bash call.
        assert!(
            matches!(&msgs[6].parts[1], Part::Tool { status, error: Some(e), .. } if status == "error" && e.contains("rejected"))
        );
        // The aborted turn.
        assert_eq!(msgs[9].error.as_deref(), Some("MessageAbortedError"));
        assert_eq!(msgs[9].finish, None);
    }

    #[test]
    fn session_and_diff_samples() {
        let s = session_info(&sample("session.json"), SessionStatus::Busy).unwrap();
        assert_eq!(s.id, "ses_debe5fba6ffeqG9YievfadTPxh");
        assert_eq!(s.title, "New session - 2026-11-25T19:06:19.097Z");
        assert_eq!(
            (s.created_ms, s.updated_ms),
            (1_795_633_579_097, 1_795_633_579_097)
        );
        assert_eq!(s.status, SessionStatus::Busy);
        let d = list(&sample("session_diff.json"), file_diff).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].file, "notes/hello.txt");
        assert_eq!((d[0].additions, d[0].deletions), (1, 0));
        assert_eq!(d[0].status, "added");
        assert!(d[0].patch.contains("+Written by write tool"));
    }

    #[test]
    fn statuses_and_requests() {
        assert_eq!(
            session_status(&serde_json::json!({"type":"busy"})),
            SessionStatus::Busy
        );
        assert_eq!(
            session_status(&serde_json::json!({"type":"retry","attempt":3,"message":"m","next":5})),
            SessionStatus::Retry {
                attempt: 3,
                message: "m".into()
            }
        );
        assert_eq!(
            session_status(&serde_json::json!({"type":"idle"})),
            SessionStatus::Idle
        );
        let p = permission(&serde_json::json!({"id":"per_1","sessionID":"ses_1","permission":"bash","patterns":["ls"],"metadata":{"command":"ls"},"always":["ls *"]})).unwrap();
        assert_eq!(p.patterns, vec!["ls"]);
        assert_eq!(p.always, vec!["ls *"]);
        assert_eq!(p.metadata["command"], "ls");
        assert!(permission(&serde_json::json!({"id":"per_1"})).is_none());
        let q = question(&serde_json::json!({"id":"que_1","sessionID":"ses_1","questions":[{"question":"Which?"}]})).unwrap();
        assert_eq!(q.questions[0]["question"], "Which?");
    }
}
