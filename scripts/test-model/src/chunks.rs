//! Renders a [`Reply`] as OpenAI wire JSON: the SSE `chat.completion.chunk` stream, the
//! non-streaming `chat.completion` object, and error bodies. Pure; no I/O, no clock.
//!
//! Stream layout (what OpenCode 1.18.33 accepts): a role chunk, the content or tool-call
//! chunks, a finish chunk (`stop` or `tool_calls`), a usage chunk with `choices: []`, then
//! `data: [DONE]`. Every event is `data: <json>\n\n`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::script::Reply;

/// Token counts reported in every reply (the values of the captured OpenCode run).
const USAGE: (u64, u64) = (12, 7);

/// The identifiers and metadata one response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkMeta {
    /// `id` of every chunk, e.g. `chatcmpl-1`.
    pub(crate) id: String,
    /// `created`, in Unix seconds.
    pub(crate) created: u64,
    /// `model`, echoed from the request.
    pub(crate) model: String,
    /// The id given to a tool call, e.g. `call_1`.
    pub(crate) tool_call_id: String,
}

/// One SSE event and how long to wait before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// Pause before this event.
    pub(crate) delay: Duration,
    /// The complete event text, `data: …\n\n`.
    pub(crate) data: String,
}

impl SseEvent {
    fn now(data: &Value) -> Self {
        Self::after(Duration::ZERO, data)
    }

    fn after(delay: Duration, data: &Value) -> Self {
        Self {
            delay,
            data: format!("data: {data}\n\n"),
        }
    }
}

/// The `data: [DONE]` terminator.
pub(crate) const DONE: &str = "data: [DONE]\n\n";

fn usage() -> Value {
    let (prompt, completion) = USAGE;
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

fn chunk(meta: &ChunkMeta, delta: &Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    })
}

/// The SSE events for a text or tool-call reply. Error replies are not streamed; they give an
/// empty list.
pub(crate) fn stream_events(reply: &Reply, meta: &ChunkMeta) -> Vec<SseEvent> {
    let finish_reason = match reply {
        Reply::Text { .. } => "stop",
        Reply::ToolCall { .. } => "tool_calls",
        Reply::Error { .. } => return Vec::new(),
    };
    let mut events = vec![SseEvent::now(&chunk(
        meta,
        &json!({"role": "assistant", "content": ""}),
        None,
    ))];
    match reply {
        Reply::Text {
            deltas,
            interval_ms,
        } => {
            let interval = Duration::from_millis(*interval_ms);
            events.extend(deltas.iter().enumerate().map(|(i, delta)| {
                let delay = if i == 0 { Duration::ZERO } else { interval };
                SseEvent::after(delay, &chunk(meta, &json!({"content": delta}), None))
            }));
        }
        Reply::ToolCall { name, arguments } => {
            let header = json!({"tool_calls": [{"index": 0, "id": meta.tool_call_id, "type": "function",
                "function": {"name": name, "arguments": ""}}]});
            let body = json!({"tool_calls": [{"index": 0,
                "function": {"arguments": arguments.to_string()}}]});
            events.push(SseEvent::now(&chunk(meta, &header, None)));
            events.push(SseEvent::now(&chunk(meta, &body, None)));
        }
        Reply::Error { .. } => {}
    }
    events.push(SseEvent::now(&chunk(meta, &json!({}), Some(finish_reason))));
    events.push(SseEvent::now(&json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": [],
        "usage": usage(),
    })));
    events.push(SseEvent {
        delay: Duration::ZERO,
        data: DONE.to_owned(),
    });
    events
}

/// The non-streaming `chat.completion` object for a text or tool-call reply (delays are
/// ignored). `None` for error replies.
pub(crate) fn completion(reply: &Reply, meta: &ChunkMeta) -> Option<Value> {
    let (message, finish_reason) = match reply {
        Reply::Text { deltas, .. } => (
            json!({"role": "assistant", "content": deltas.concat()}),
            "stop",
        ),
        Reply::ToolCall { name, arguments } => (
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": meta.tool_call_id,
                "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]}),
            "tool_calls",
        ),
        Reply::Error { .. } => return None,
    };
    Some(json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage(),
    }))
}

/// An OpenAI-style error body. For 4xx statuses keep `message` free of words OpenCode treats as
/// retryable (`server_error`, `500`, `429`, `overloaded`, `rate limit`).
pub(crate) fn error_body(error_type: &str, message: &str) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": null, "code": null}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ChunkMeta {
        ChunkMeta {
            id: "chatcmpl-7".into(),
            created: 1_700_000_000,
            model: "mock-model".into(),
            tool_call_id: "call_3".into(),
        }
    }

    fn payloads(events: &[SseEvent]) -> Vec<Value> {
        events
            .iter()
            .filter(|e| e.data != DONE)
            .map(|e| {
                let json = e
                    .data
                    .strip_prefix("data: ")
                    .unwrap()
                    .strip_suffix("\n\n")
                    .unwrap();
                serde_json::from_str(json).unwrap()
            })
            .collect()
    }

    #[test]
    fn text_stream_has_role_deltas_finish_usage_done() {
        let events = stream_events(&Reply::text("Hello there"), &meta());
        assert_eq!(events.len(), 6);
        assert_eq!(events.last().unwrap().data, DONE);
        let p = payloads(&events);
        assert_eq!(
            p[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(p[1]["choices"][0]["delta"]["content"], "Hello ");
        assert_eq!(p[2]["choices"][0]["delta"]["content"], "there");
        assert_eq!(p[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(p[4]["choices"], json!([]));
        assert_eq!(p[4]["usage"]["total_tokens"], 19);
        for chunk in &p {
            assert_eq!(chunk["id"], "chatcmpl-7");
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["created"], 1_700_000_000);
            assert_eq!(chunk["model"], "mock-model");
        }
    }

    #[test]
    fn text_deltas_are_spaced_by_the_interval() {
        let reply = Reply::Text {
            deltas: vec!["a".into(), "b".into(), "c".into()],
            interval_ms: 250,
        };
        let delays: Vec<u64> = stream_events(&reply, &meta())
            .iter()
            .map(|e| u64::try_from(e.delay.as_millis()).unwrap())
            .collect();
        assert_eq!(delays, [0, 0, 250, 250, 0, 0, 0]);
    }

    #[test]
    fn tool_call_stream_sends_header_then_arguments() {
        let reply = Reply::ToolCall {
            name: "bash".into(),
            arguments: json!({"command": "ls"}),
        };
        let p = payloads(&stream_events(&reply, &meta()));
        let header = &p[1]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(header["id"], "call_3");
        assert_eq!(header["function"]["name"], "bash");
        let args = p[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(args).unwrap(),
            json!({"command": "ls"})
        );
        assert_eq!(p[3]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn errors_are_not_streamed() {
        let reply = Reply::Error {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "m".into(),
        };
        assert!(stream_events(&reply, &meta()).is_empty());
        assert!(completion(&reply, &meta()).is_none());
    }

    #[test]
    fn completion_object_carries_the_full_text() {
        let c = completion(&Reply::text("Hello there"), &meta()).unwrap();
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(c["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn fail400_body_has_no_retry_words() {
        let body = error_body("invalid_request_error", crate::script::FAIL400_MESSAGE).to_string();
        for word in ["server_error", "500", "429", "overloaded", "rate limit"] {
            assert!(
                !body.to_lowercase().contains(word),
                "{body} contains {word}"
            );
        }
    }
}
