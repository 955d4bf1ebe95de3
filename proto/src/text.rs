//! Peer-supplied text made safe to print: one sanitizer shared by the relay, the agent and the
//! TUI, so escape sequences, control characters and bidi overrides from the network never
//! reach a terminal or a log, and ids that do not look like ids are never printed at all.

/// Whether `c` reorders the text around it (bidi embeddings, overrides and isolates): printed
/// raw, they make a log line or a file name read differently from what it is.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Makes one line of remote text safe and flat: tabs become four spaces; ANSI escape sequences
/// (CSI, OSC), every other C0/C1 control character (so CR and LF too) and bidi overrides are
/// dropped.
pub fn sanitize_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push_str("    "),
            '\u{1b}' => {
                // CSI `ESC [ … final` and OSC `ESC ] … BEL|ESC \`; anything else: drop ESC + 1.
                match chars.next() {
                    Some('[') => {
                        for n in chars.by_ref() {
                            if ('@'..='~').contains(&n) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(n) = chars.next() {
                            if n == '\u{7}' || (n == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
                            {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            }
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Text that came from a peer (a title, an error message, a file name), sanitized when it was
/// made: every constructor runs [`sanitize_line`] (or [`sanitize_text`] for [`RemoteText::multiline`]),
/// and the field is private, so code that stores and prints only `RemoteText` cannot forget to
/// sanitize. Serde decodes it through the same sanitizer.
///
/// ```
/// let t = cm_proto::text::RemoteText::new("\u{1b}[2Jhi");
/// assert_eq!(t.as_str(), "hi");
/// ```
///
/// There is no raw constructor (the same crate path, the tuple field is private):
///
/// ```compile_fail
/// let t = cm_proto::text::RemoteText(String::from("\u{1b}[2J"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RemoteText(String);

impl RemoteText {
    /// One line of remote text, flattened ([`sanitize_line`]).
    pub fn new(text: &str) -> Self {
        Self(sanitize_line(text))
    }

    /// Multi-line remote text: each line sanitized, the line breaks kept ([`sanitize_text`]).
    pub fn multiline(text: &str) -> Self {
        Self(sanitize_text(text))
    }

    /// The safe text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The safe text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl From<String> for RemoteText {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

impl From<&str> for RemoteText {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<&String> for RemoteText {
    fn from(text: &String) -> Self {
        Self::new(text)
    }
}

impl std::ops::Deref for RemoteText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RemoteText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RemoteText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RemoteText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for RemoteText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RemoteText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// [`sanitize_line`] for multi-line remote text (a diff, git's output): each line is made safe,
/// the line breaks stay.
pub fn sanitize_text(text: &str) -> String {
    text.split('\n')
        .map(sanitize_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// [`sanitize_line`], then [`cap_chars`].
pub fn sanitize_capped(line: &str, max: usize) -> String {
    cap_chars(&sanitize_line(line), max)
}

/// `text` cut to `max` characters, with a marker saying how much was cut.
pub fn cap_chars(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push_str(&format!("… [{} more characters cut]", total - max));
    out
}

/// Whether `s` looks like an id the protocol issues or accepts (a user, host or credential
/// name): see [`crate::ids::is_valid_name`].
pub fn is_printable_id(s: &str) -> bool {
    crate::ids::is_valid_name(s)
}

/// An id from a peer, ready to log or print: itself when it looks like an id, else a
/// placeholder that only says how long it was (its content is attacker-chosen and never shown).
pub fn printable_id(s: &str) -> String {
    if is_printable_id(s) {
        s.to_owned()
    } else {
        format!("<invalid id, {} bytes>", s.len())
    }
}

/// Escapes the control characters `serde_json` leaves raw, DEL (U+007F) and the C1 controls
/// (U+0080–U+009F), as `\u007f`, `\u0080`…
/// Apply to serialized JSON text before printing it: such characters can only occur inside
/// JSON strings, where the escape means the same character, so the JSON stays equal.
pub fn escape_c1_in_json(json: &str) -> String {
    if !json.chars().any(is_c1) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_c1(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// `value` as pretty JSON for printing, C1 controls escaped ([`escape_c1_in_json`]).
///
/// # Errors
/// `value` cannot be serialized.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(|s| escape_c1_in_json(&s))
}

/// `value` as one line of JSON for printing, C1 controls escaped ([`escape_c1_in_json`]).
///
/// # Errors
/// `value` cannot be serialized.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).map(|s| escape_c1_in_json(&s))
}

/// DEL and the C1 controls: the controls `serde_json` does not escape.
fn is_c1(c: char) -> bool {
    ('\u{7f}'..='\u{9f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sanitize_drops_escapes_and_controls() {
        assert_eq!(sanitize_line("\u{1b}[31mred\u{1b}[0m\tx\u{7}"), "red    x");
        assert_eq!(sanitize_line("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize_line("a\rb\nc"), "abc");
        assert_eq!(sanitize_line("a\u{9b}2Jb\u{85}"), "a2Jb");
        assert_eq!(sanitize_text("a\u{1b}[2J\nb\r"), "a\nb");
    }

    #[test]
    fn sanitize_removes_bidi_overrides() {
        assert_eq!(sanitize_line("evil\u{202e}txt.exe"), "eviltxt.exe");
        assert_eq!(sanitize_text("\u{2066}a\u{2069}\n\u{202a}b"), "a\nb");
    }

    #[test]
    fn remote_text_is_sanitized_by_every_constructor() {
        let raw = "\u{1b}]0;pwned\u{7}ok\u{1b}[2J\u{202e}\tx";
        assert_eq!(RemoteText::new(raw), "ok    x");
        assert_eq!(RemoteText::from(raw.to_owned()).as_str(), "ok    x");
        assert_eq!(RemoteText::multiline("a\u{1b}[1m\nb\r").as_str(), "a\nb");
        let decoded: RemoteText = serde_json::from_str("\"\\u001b[31mred\"").unwrap();
        assert_eq!(decoded.to_string(), "red");
        assert_eq!(serde_json::to_string(&decoded).unwrap(), "\"red\"");
    }

    #[test]
    fn capped_text_says_how_much_was_cut() {
        assert_eq!(sanitize_capped("short", 10), "short");
        assert_eq!(
            sanitize_capped(&"x".repeat(250), 200),
            format!("{}… [50 more characters cut]", "x".repeat(200))
        );
    }

    #[test]
    fn ids_that_do_not_look_like_ids_are_replaced() {
        assert_eq!(printable_id("c0123abcd"), "c0123abcd");
        assert_eq!(
            printable_id("\u{1b}]0;pwned\u{7}"),
            "<invalid id, 10 bytes>"
        );
        assert_eq!(printable_id(&"x".repeat(200)), "<invalid id, 200 bytes>");
    }

    #[test]
    fn json_c1_escapes_keep_the_value() {
        let v = serde_json::json!({ "reason": "a\u{9b}2J\u{85}b\u{7f}" });
        let raw = serde_json::to_string(&v).unwrap();
        assert!(raw.contains('\u{9b}'), "serde_json leaves C1 raw: {raw:?}");
        let escaped = escape_c1_in_json(&raw);
        assert_eq!(escaped, r#"{"reason":"a\u009b2J\u0085b\u007f"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back, v);
    }

    /// Text rich in what the sanitizer must remove: C0/C1 controls, escape sequence starts,
    /// bidi overrides, mixed with any printable text.
    const HOSTILE: &str =
        "(\\PC|[\u{0}-\u{9f}]|[\u{202a}-\u{202e}]|[\u{2066}-\u{2069}]|\u{1b}\\[|\u{1b}\\])*";

    fn forbidden_in_line(c: char) -> bool {
        c.is_control() || is_bidi_control(c)
    }

    proptest! {
        #[test]
        fn sanitized_lines_hold_no_controls_escapes_or_bidi(s in HOSTILE) {
            let out = sanitize_line(&s);
            prop_assert!(!out.chars().any(forbidden_in_line), "{out:?}");
        }

        #[test]
        fn sanitized_text_keeps_only_newlines(s in HOSTILE) {
            let out = sanitize_text(&s);
            prop_assert!(!out.chars().any(|c| c != '\n' && forbidden_in_line(c)), "{out:?}");
            prop_assert_eq!(out.matches('\n').count(), s.matches('\n').count());
        }

        #[test]
        fn escaped_json_holds_no_raw_controls(s in HOSTILE) {
            let json = escape_c1_in_json(&serde_json::to_string(&s).unwrap());
            prop_assert!(!json.chars().any(char::is_control), "{json:?}");
            prop_assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
        }

        #[test]
        fn remote_text_never_holds_controls_escapes_or_bidi(s in HOSTILE) {
            for text in [
                RemoteText::new(&s),
                RemoteText::from(s.clone()),
                serde_json::from_value(serde_json::Value::String(s.clone())).unwrap(),
            ] {
                prop_assert!(!text.chars().any(forbidden_in_line), "{text:?}");
                prop_assert_eq!(RemoteText::new(&text), text.clone(), "sanitizing is idempotent");
            }
            let multi = RemoteText::multiline(&s);
            prop_assert!(!multi.chars().any(|c| c != '\n' && forbidden_in_line(c)), "{multi:?}");
        }

        #[test]
        fn printable_ids_are_safe(s in HOSTILE) {
            let out = printable_id(&s);
            prop_assert!(!out.chars().any(forbidden_in_line), "{out:?}");
        }
    }
}
