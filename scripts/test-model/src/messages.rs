//! Read-only helpers over the `messages` array of an OpenAI chat-completions request.
//!
//! OpenCode sends `content` as a plain string; other clients send an array of parts
//! (`{"type":"text","text":…}`). Both forms are accepted everywhere here. Nothing in this module
//! panics on unexpected JSON: missing or mistyped fields read as "absent".

use serde_json::Value;

/// The start of the system prompt OpenCode uses for its title-generation request.
pub(crate) const TITLE_PROMPT_PREFIX: &str = "You are a title generator";

/// The line prefix of OpenCode's `<env>` system block that names the session's directory.
const WORKING_DIRECTORY_PREFIX: &str = "Working directory:";

/// The text of a message `content`: a string as-is, or the `text` of every text part joined
/// with newlines. `None` for `null`, other types, or an array without text parts.
pub(crate) fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// The role of a message, if it is a string.
pub(crate) fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// The text of a message's `content` (see [`content_text`]).
pub(crate) fn text(message: &Value) -> Option<String> {
    message.get("content").and_then(content_text)
}

/// The last message with the given role.
pub(crate) fn last_with_role<'a>(messages: &'a [Value], wanted: &str) -> Option<&'a Value> {
    messages.iter().rev().find(|m| role(m) == Some(wanted))
}

/// The texts of all system messages, in order.
fn system_texts(messages: &[Value]) -> impl Iterator<Item = String> + '_ {
    messages
        .iter()
        .filter(|m| role(m) == Some("system"))
        .filter_map(text)
}

/// Whether this is OpenCode's title-generation request (a system prompt starting with
/// [`TITLE_PROMPT_PREFIX`]).
pub(crate) fn is_title_request(messages: &[Value]) -> bool {
    system_texts(messages).any(|t| t.trim_start().starts_with(TITLE_PROMPT_PREFIX))
}

/// The directory from the first `Working directory: <dir>` line in a system message.
pub(crate) fn working_directory(messages: &[Value]) -> Option<String> {
    system_texts(messages).find_map(|t| {
        t.lines().find_map(|line| {
            let dir = line.trim().strip_prefix(WORKING_DIRECTORY_PREFIX)?.trim();
            (!dir.is_empty()).then(|| dir.to_owned())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_text_reads_strings_and_text_parts() {
        assert_eq!(content_text(&json!("hi")).as_deref(), Some("hi"));
        let parts = json!([
            {"type": "text", "text": "a"},
            {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "b"}
        ]);
        assert_eq!(content_text(&parts).as_deref(), Some("a\nb"));
        assert_eq!(content_text(&json!([{"type": "image_url"}])), None);
        assert_eq!(content_text(&Value::Null), None);
        assert_eq!(content_text(&json!(5)), None);
    }

    #[test]
    fn working_directory_comes_from_the_env_block() {
        let system = "You are opencode.\nHere is some useful information:\n<env>\n  \
                      Working directory: /home/dev/ws\n  Workspace root folder: /home/dev/ws\n</env>";
        let messages = [json!({"role": "system", "content": system})];
        assert_eq!(
            working_directory(&messages).as_deref(),
            Some("/home/dev/ws")
        );
        assert_eq!(
            working_directory(&[json!({"role": "user", "content": system})]),
            None
        );
    }

    #[test]
    fn title_request_is_recognised_by_its_system_prompt() {
        let title = [
            json!({"role": "system", "content": "You are a title generator. You output ONLY a thread title."}),
        ];
        assert!(is_title_request(&title));
        let normal = [json!({"role": "system", "content": "You are opencode"})];
        assert!(!is_title_request(&normal));
    }
}
