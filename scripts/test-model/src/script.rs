//! The script: which [`Reply`] the test model gives to a chat-completions request.
//!
//! [`plan`] is a pure function of the request JSON. Rules, first match wins:
//!
//! | request | reply |
//! | --- | --- |
//! | a system prompt starts with `You are a title generator` | text `Mock session title` |
//! | the last message has role `tool` | text `Tool finished: <tool output>` |
//! | last user text `RUN_BASH: <cmd>` | tool call `bash {"command":cmd,"description":"Run mock command"}` |
//! | `WRITE_FILE: <path> <content>` | tool call `write {"filePath":abs,"content":content+"\n"}`; a relative path is joined to the `Working directory:` line of the system prompt |
//! | `TOOL: <name> <json object>` | tool call `<name>` with those arguments (`{}` if omitted) |
//! | `SLOW` or `SLOW <n> <ms>` | `n` (default 40) text deltas `chunk 0 `, `chunk 1 `, … sent `ms` (default 250) ms apart; other words after `SLOW` are ignored |
//! | `FAIL400` | HTTP 400 `invalid_request_error` `mock bad request requested` (OpenCode does not retry) |
//! | `FAIL500` | HTTP 500 `server_error` (OpenCode retries with backoff until aborted) |
//! | `ECHO_DELTAS: <n>` | text `delta-0 delta-1 … delta-<n-1>` in exactly `n` deltas |
//! | anything else | `Hello from mock LLM. You said: <text>`, one delta per word |
//!
//! "User text" is the content of the last message with role `user`, trimmed. A request the
//! script cannot answer (no `messages`, no user message, a malformed command) is a
//! [`ScriptError`], which the server turns into HTTP 400.

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::messages;

/// The answer to OpenCode's title-generation request.
pub const TITLE: &str = "Mock session title";
/// The prefix of the default answer; the user's text follows it.
pub const ECHO_PREFIX: &str = "Hello from mock LLM. You said: ";
/// The prefix of the answer to a tool result; the tool's output follows it.
pub const TOOL_FINISHED_PREFIX: &str = "Tool finished: ";
/// The `description` argument of tool calls made by `RUN_BASH:`.
pub const BASH_DESCRIPTION: &str = "Run mock command";
/// The error message of the `FAIL400` reply.
pub const FAIL400_MESSAGE: &str = "mock bad request requested";
/// Default number of chunks of a `SLOW` reply.
pub const SLOW_DEFAULT_CHUNKS: usize = 40;
/// Default interval between the chunks of a `SLOW` reply, in milliseconds.
pub const SLOW_DEFAULT_INTERVAL_MS: u64 = 250;
/// Upper bound for `SLOW <n>` and `ECHO_DELTAS: <n>`, so a typo cannot stream forever.
pub const MAX_SCRIPTED_DELTAS: usize = 10_000;

/// What the test model answers to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    /// Assistant text, streamed as these deltas (their concatenation is the full text), with
    /// `interval_ms` between consecutive deltas.
    Text {
        /// The content deltas, in order.
        deltas: Vec<String>,
        /// Pause between two deltas, in milliseconds (0 = send at once).
        interval_ms: u64,
    },
    /// One tool call, finishing with `finish_reason: "tool_calls"`.
    ToolCall {
        /// The tool (function) name, e.g. `bash`.
        name: String,
        /// The arguments object; it is sent as a JSON string.
        arguments: Value,
    },
    /// An HTTP error response with an OpenAI-style `{"error":{…}}` body.
    Error {
        /// The HTTP status code.
        status: u16,
        /// `error.type`, e.g. `invalid_request_error`.
        error_type: String,
        /// `error.message`.
        message: String,
    },
}

impl Reply {
    /// A text reply split on spaces: every delta but the last ends with its space, so the
    /// deltas concatenate to `text` exactly.
    pub fn text(text: &str) -> Self {
        Self::Text {
            deltas: text.split_inclusive(' ').map(str::to_owned).collect(),
            interval_ms: 0,
        }
    }

    /// The full assistant text of a [`Reply::Text`]; `None` for other replies.
    pub fn full_text(&self) -> Option<String> {
        match self {
            Self::Text { deltas, .. } => Some(deltas.concat()),
            Self::ToolCall { .. } | Self::Error { .. } => None,
        }
    }

    fn tool_call(name: &str, arguments: Value) -> Self {
        Self::ToolCall {
            name: name.to_owned(),
            arguments,
        }
    }
}

/// Why a request could not be scripted. The server answers these with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The request body is not an object with a `messages` array.
    #[error("request has no \"messages\" array")]
    NoMessages,
    /// No message has role `user` (and the request is neither a title request nor a tool result).
    #[error("request has no message with role \"user\"")]
    NoUserMessage,
    /// The last user (or tool) message has no text content.
    #[error("the last {0} message has no text content")]
    NoText(&'static str),
    /// A scripted command is incomplete or malformed.
    #[error("bad mock command {command}: {reason}")]
    BadCommand {
        /// The command keyword, e.g. `WRITE_FILE:`.
        command: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Decides the reply to a chat-completions request body.
///
/// # Errors
/// [`ScriptError`] when the request has no messages, no user text, or a malformed command.
pub fn plan(request: &Value) -> Result<Reply, ScriptError> {
    let history = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(ScriptError::NoMessages)?;

    if messages::is_title_request(history) {
        return Ok(Reply::text(TITLE));
    }
    if let Some(last) = history.last().filter(|m| messages::role(m) == Some("tool")) {
        let output = messages::text(last).ok_or(ScriptError::NoText("tool"))?;
        return Ok(Reply::text(&format!("{TOOL_FINISHED_PREFIX}{output}")));
    }
    let user = messages::last_with_role(history, "user").ok_or(ScriptError::NoUserMessage)?;
    let text = messages::text(user).ok_or(ScriptError::NoText("user"))?;
    plan_user_text(text.trim(), history)
}

/// The script for the last user message's (trimmed) text.
fn plan_user_text(text: &str, history: &[Value]) -> Result<Reply, ScriptError> {
    if let Some(rest) = text.strip_prefix("RUN_BASH:") {
        return run_bash(rest.trim());
    }
    if let Some(rest) = text.strip_prefix("WRITE_FILE:") {
        return write_file(rest.trim(), messages::working_directory(history).as_deref());
    }
    if let Some(rest) = text.strip_prefix("TOOL:") {
        return any_tool(rest.trim());
    }
    if let Some(rest) = text.strip_prefix("ECHO_DELTAS:") {
        return echo_deltas(rest.trim());
    }
    if let Some(rest) = keyword(text, "SLOW") {
        return Ok(slow(rest));
    }
    if keyword(text, "FAIL400").is_some() {
        return Ok(Reply::Error {
            status: 400,
            error_type: "invalid_request_error".to_owned(),
            message: FAIL400_MESSAGE.to_owned(),
        });
    }
    if keyword(text, "FAIL500").is_some() {
        return Ok(Reply::Error {
            status: 500,
            error_type: "server_error".to_owned(),
            message: "mock server error requested".to_owned(),
        });
    }
    Ok(Reply::text(&format!("{ECHO_PREFIX}{text}")))
}

/// `Some(rest)` if `text` is `word` alone or `word` followed by whitespace.
fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(word)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

fn bad(command: &'static str, reason: impl Into<String>) -> ScriptError {
    ScriptError::BadCommand {
        command,
        reason: reason.into(),
    }
}

/// Splits `text` at its first whitespace into a word and the (trimmed) rest.
fn split_word(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

fn run_bash(command: &str) -> Result<Reply, ScriptError> {
    if command.is_empty() {
        return Err(bad("RUN_BASH:", "expected a command"));
    }
    Ok(Reply::tool_call(
        "bash",
        json!({"command": command, "description": BASH_DESCRIPTION}),
    ))
}

fn write_file(rest: &str, working_directory: Option<&str>) -> Result<Reply, ScriptError> {
    let (path, content) = split_word(rest);
    if path.is_empty() {
        return Err(bad("WRITE_FILE:", "expected <path> <content>"));
    }
    let file_path = if Path::new(path).is_absolute() {
        path.to_owned()
    } else {
        let dir = working_directory.ok_or_else(|| {
            bad(
                "WRITE_FILE:",
                format!(
                    "relative path {path:?} but no \"Working directory:\" line in the system prompt"
                ),
            )
        })?;
        Path::new(dir).join(path).to_string_lossy().into_owned()
    };
    Ok(Reply::tool_call(
        "write",
        json!({"filePath": file_path, "content": format!("{content}\n")}),
    ))
}

fn any_tool(rest: &str) -> Result<Reply, ScriptError> {
    let (name, arguments) = split_word(rest);
    if name.is_empty() {
        return Err(bad("TOOL:", "expected <name> <json object>"));
    }
    let arguments = if arguments.is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str::<Value>(arguments)
            .map_err(|e| bad("TOOL:", format!("arguments are not valid JSON ({e})")))?
    };
    if !arguments.is_object() {
        return Err(bad("TOOL:", "arguments must be a JSON object"));
    }
    Ok(Reply::tool_call(name, arguments))
}

fn echo_deltas(rest: &str) -> Result<Reply, ScriptError> {
    let count = parse_count(rest).ok_or_else(|| {
        bad(
            "ECHO_DELTAS:",
            format!("expected a count from 1 to {MAX_SCRIPTED_DELTAS}"),
        )
    })?;
    let deltas = (0..count)
        .map(|i| {
            let separator = if i + 1 < count { " " } else { "" };
            format!("delta-{i}{separator}")
        })
        .collect();
    Ok(Reply::Text {
        deltas,
        interval_ms: 0,
    })
}

/// `SLOW`, `SLOW <n>` or `SLOW <n> <ms>` (`<ms>` may end in `ms`). Words that are not
/// numbers (as in `SLOW stream please`) leave the defaults in place.
fn slow(rest: &str) -> Reply {
    let mut words = rest.split_whitespace();
    let count = words.next().and_then(parse_count);
    let interval_ms = count
        .and(words.next())
        .and_then(|w| w.strip_suffix("ms").unwrap_or(w).parse::<u64>().ok());
    let count = count.unwrap_or(SLOW_DEFAULT_CHUNKS);
    Reply::Text {
        deltas: (0..count).map(|i| format!("chunk {i} ")).collect(),
        interval_ms: interval_ms.unwrap_or(SLOW_DEFAULT_INTERVAL_MS),
    }
}

fn parse_count(word: &str) -> Option<usize> {
    word.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_SCRIPTED_DELTAS).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "You are opencode.\n<env>\n  Working directory: /home/dev/ws\n  \
                       Workspace root folder: /home/dev/ws\n</env>";

    fn request(user: Value) -> Value {
        json!({
            "model": "mock-model",
            "messages": [
                {"role": "system", "content": ENV},
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "Hello from mock LLM. You said: earlier"},
                {"role": "user", "content": user}
            ],
            "stream": true
        })
    }

    fn plan_for(user: &str) -> Reply {
        plan(&request(json!(user))).expect("script answers")
    }

    fn tool(name: &str, arguments: Value) -> Reply {
        Reply::tool_call(name, arguments)
    }

    #[test]
    fn default_echo_is_split_on_words() {
        let reply = plan_for("Say hello");
        assert_eq!(
            reply,
            Reply::Text {
                deltas: [
                    "Hello ", "from ", "mock ", "LLM. ", "You ", "said: ", "Say ", "hello"
                ]
                .map(String::from)
                .to_vec(),
                interval_ms: 0
            }
        );
        assert_eq!(
            reply.full_text().as_deref(),
            Some("Hello from mock LLM. You said: Say hello")
        );
    }

    #[test]
    fn user_text_may_be_an_array_of_parts() {
        let reply = plan(&request(json!([{"type": "text", "text": "Say hello"}]))).unwrap();
        assert_eq!(
            reply.full_text().as_deref(),
            Some("Hello from mock LLM. You said: Say hello")
        );
    }

    #[test]
    fn title_request_wins_over_the_user_text() {
        let req = json!({"messages": [
            {"role": "system", "content": "You are a title generator. You output ONLY a thread title."},
            {"role": "user", "content": "Generate a title for this conversation:\n"},
            {"role": "user", "content": "RUN_BASH: ls"}
        ]});
        assert_eq!(plan(&req).unwrap(), Reply::text(TITLE));
    }

    #[test]
    fn tool_result_ends_the_loop() {
        let req = json!({"messages": [
            {"role": "system", "content": ENV},
            {"role": "user", "content": "WRITE_FILE: a.txt hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "write", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Wrote file successfully."}
        ]});
        assert_eq!(
            plan(&req).unwrap().full_text().as_deref(),
            Some("Tool finished: Wrote file successfully.")
        );
    }

    #[test]
    fn run_bash_calls_the_bash_tool() {
        assert_eq!(
            plan_for("RUN_BASH: echo hi > out.txt"),
            tool(
                "bash",
                json!({"command": "echo hi > out.txt", "description": "Run mock command"})
            )
        );
        assert!(matches!(
            plan(&request(json!("RUN_BASH:   "))),
            Err(ScriptError::BadCommand { .. })
        ));
    }

    #[test]
    fn write_file_resolves_relative_paths_against_the_working_directory() {
        assert_eq!(
            plan_for("WRITE_FILE: notes/hello.txt Written by write tool"),
            tool(
                "write",
                json!({"filePath": "/home/dev/ws/notes/hello.txt", "content": "Written by write tool\n"})
            )
        );
        assert_eq!(
            plan_for("WRITE_FILE: /tmp/x.txt"),
            tool("write", json!({"filePath": "/tmp/x.txt", "content": "\n"}))
        );
    }

    #[test]
    fn write_file_with_a_relative_path_needs_a_working_directory() {
        let req = json!({"messages": [{"role": "user", "content": "WRITE_FILE: a.txt hi"}]});
        let err = plan(&req).unwrap_err();
        assert!(err.to_string().contains("Working directory"), "{err}");
    }

    #[test]
    fn tool_passes_any_arguments_through() {
        assert_eq!(
            plan_for(r#"TOOL: grep {"pattern":"hello"}"#),
            tool("grep", json!({"pattern": "hello"}))
        );
        assert_eq!(plan_for("TOOL: todowrite"), tool("todowrite", json!({})));
        for bad_args in [r"TOOL: grep {nope", "TOOL: grep [1]", "TOOL:"] {
            assert!(
                matches!(
                    plan(&request(json!(bad_args))),
                    Err(ScriptError::BadCommand { .. })
                ),
                "{bad_args}"
            );
        }
    }

    #[test]
    fn slow_defaults_and_overrides() {
        let Reply::Text {
            deltas,
            interval_ms,
        } = plan_for("SLOW stream please")
        else {
            panic!("expected text");
        };
        assert_eq!(deltas.len(), SLOW_DEFAULT_CHUNKS);
        assert_eq!(deltas[0], "chunk 0 ");
        assert_eq!(deltas[39], "chunk 39 ");
        assert_eq!(interval_ms, SLOW_DEFAULT_INTERVAL_MS);

        assert_eq!(
            plan_for("SLOW 3 50ms"),
            Reply::Text {
                deltas: vec!["chunk 0 ".into(), "chunk 1 ".into(), "chunk 2 ".into()],
                interval_ms: 50
            }
        );
        let Reply::Text { interval_ms, .. } = plan_for("SLOW 2 10") else {
            panic!("expected text");
        };
        assert_eq!(interval_ms, 10);
        // Not the keyword: echoed.
        assert_eq!(
            plan_for("SLOWLY").full_text().as_deref(),
            Some("Hello from mock LLM. You said: SLOWLY")
        );
    }

    #[test]
    fn fail400_body_is_not_retryable() {
        let Reply::Error {
            status,
            error_type,
            message,
        } = plan_for("FAIL400")
        else {
            panic!("expected error");
        };
        assert_eq!(status, 400);
        assert_eq!(error_type, "invalid_request_error");
        assert_eq!(message, FAIL400_MESSAGE);
    }

    #[test]
    fn fail500_is_a_server_error() {
        assert!(matches!(
            plan_for("FAIL500"),
            Reply::Error { status: 500, .. }
        ));
    }

    #[test]
    fn echo_deltas_gives_exactly_n_deltas() {
        assert_eq!(
            plan_for("ECHO_DELTAS: 3"),
            Reply::Text {
                deltas: vec!["delta-0 ".into(), "delta-1 ".into(), "delta-2".into()],
                interval_ms: 0
            }
        );
        for bad_count in ["ECHO_DELTAS: 0", "ECHO_DELTAS: x", "ECHO_DELTAS: 99999"] {
            assert!(plan(&request(json!(bad_count))).is_err(), "{bad_count}");
        }
    }

    #[test]
    fn malformed_requests_are_errors_not_panics() {
        assert_eq!(plan(&json!(null)), Err(ScriptError::NoMessages));
        assert_eq!(plan(&json!({"messages": 3})), Err(ScriptError::NoMessages));
        assert_eq!(
            plan(&json!({"messages": [{"role": "system", "content": "x"}]})),
            Err(ScriptError::NoUserMessage)
        );
        assert_eq!(
            plan(&json!({"messages": [{"role": "user", "content": null}]})),
            Err(ScriptError::NoText("user"))
        );
        assert_eq!(
            plan(&json!({"messages": [{"role": "user"}, {"role": "tool", "content": 1}]})),
            Err(ScriptError::NoText("tool"))
        );
    }

    #[test]
    fn plans_every_captured_opencode_request() {
        // First user turns of the captured samples (see README §3) and their answers.
        let cases = [
            ("Say hello", "text"),
            (
                "WRITE_FILE: notes/hello.txt Written by write tool",
                "tool_call",
            ),
            ("RUN_BASH: touch should_not_exist", "tool_call"),
            ("SLOW stream please", "text"),
            (r#"TOOL: grep {"pattern":"hello"}"#, "tool_call"),
        ];
        for (text, kind) in cases {
            let reply = serde_json::to_value(plan_for(text)).unwrap();
            assert_eq!(reply["kind"], kind, "{text}");
        }
    }
}
