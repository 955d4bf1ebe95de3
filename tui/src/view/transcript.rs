//! The transcript as rows: one header per message, markdown for the model's text, tool calls
//! with their state (output collapsible), reasoning collapsed, changed files and errors.

use crate::app::transcript::{Transcript, part_id};
use crate::view::markdown;
use crate::view::text::{Look, Row, Span, Tone, sanitize, truncate, wrap};
use proto::ops::{Message, Part};

/// Most output lines of one tool call shown when expanded.
pub const OUTPUT_MAX_LINES: usize = 200;
/// Indent of a message's body under its header.
const BODY: usize = 2;

/// The transcript as rows `width` columns wide; `selected` is the highlighted block's index
/// (in [`Transcript::blocks`] order).
pub fn rows(t: &Transcript, selected: Option<usize>, width: usize) -> Vec<Row> {
    let mut out = Vec::new();
    let mut block = 0;
    for (i, m) in t.messages().iter().enumerate() {
        if i > 0 {
            out.push(Row::blank());
        }
        message_rows(&mut out, t, m, selected, &mut block, width);
    }
    out
}

fn indented(lines: Vec<Vec<Span>>, indent: usize) -> impl Iterator<Item = Row> {
    lines.into_iter().map(move |mut spans| {
        if indent > 0 {
            spans.insert(0, Span::plain(" ".repeat(indent)));
        }
        Row::new(spans)
    })
}

fn message_rows(
    out: &mut Vec<Row>,
    t: &Transcript,
    m: &Message,
    selected: Option<usize>,
    block: &mut usize,
    width: usize,
) {
    let user = m.role == "user";
    let (label, tone) = if user {
        ("you", Tone::User)
    } else {
        ("assistant", Tone::Assistant)
    };
    out.push(Row::new(vec![
        Span::tone("▍", tone),
        Span::new(label, Look::tone(tone).bold()),
    ]));
    let body = width.saturating_sub(BODY).max(1);
    for part in &m.parts {
        match part {
            Part::Text { text, .. } if user => {
                for line in text.lines() {
                    let spans = [Span::plain(sanitize(line))];
                    out.extend(indented(wrap(&spans, body, 0, false), BODY));
                }
            }
            Part::Text { text, .. } => {
                out.extend(indented(markdown::render(text, body), BODY));
            }
            Part::Reasoning { text, .. } => {
                let index = *block;
                *block += 1;
                let open = t.is_expanded(part_id(part));
                let words = text.split_whitespace().count();
                let mut header = block_header(open, selected == Some(index), index);
                header.spans.push(Span::new(
                    format!("thinking · {words} words"),
                    Look::tone(Tone::Reasoning).italic(),
                ));
                out.push(header);
                if open {
                    let look = Look::tone(Tone::Reasoning).italic();
                    for line in text.lines() {
                        let spans = [Span::new(sanitize(line), look)];
                        out.extend(indented(
                            wrap(&spans, width.saturating_sub(6).max(1), 0, false),
                            6,
                        ));
                    }
                }
            }
            Part::Tool {
                id,
                tool,
                status,
                title,
                input,
                output,
                error,
            } => {
                let index = *block;
                *block += 1;
                let open = t.is_expanded(id);
                let mut header = block_header(open, selected == Some(index), index);
                let (symbol, tone) = tool_state(status);
                let summary = tool_summary(title.as_deref(), input);
                header.spans.extend([
                    Span::tone(format!("{symbol} "), tone),
                    Span::new(sanitize(tool), Look::tone(Tone::Tool).bold()),
                    Span::tone(format!(" {status}"), tone),
                ]);
                let room = width.saturating_sub(header.text().chars().count() + 3);
                if !summary.is_empty() && room > 4 {
                    header.spans.push(Span::tone(
                        format!(" · {}", truncate(&summary, room)),
                        Tone::Muted,
                    ));
                }
                out.push(header);
                if open {
                    tool_details(out, input, output.as_deref(), error.as_deref(), width);
                }
            }
            Part::Patch { files, .. } => {
                let spans = [Span::tone(
                    format!("✎ changed {}", sanitize(&files.join(", "))),
                    Tone::Muted,
                )];
                out.extend(indented(wrap(&spans, body, 2, false), BODY));
            }
            Part::Other { .. } => {}
        }
    }
    if let Some(error) = &m.error {
        let spans = [Span::tone(format!("✗ {}", sanitize(error)), Tone::Failed)];
        out.extend(indented(wrap(&spans, body, 2, false), BODY));
    }
}

/// The start of a block's header row: indent, highlight, and the open/closed arrow.
fn block_header(open: bool, highlight: bool, index: usize) -> Row {
    Row {
        spans: vec![
            Span::plain(" ".repeat(BODY)),
            Span::tone(if open { "▾ " } else { "▸ " }, Tone::Muted),
        ],
        block: Some(index),
        highlight,
    }
}

/// The symbol and tone of a tool state.
fn tool_state(status: &str) -> (&'static str, Tone) {
    match status {
        "pending" => ("○", Tone::Pending),
        "running" => ("◐", Tone::Running),
        "completed" => ("✓", Tone::Done),
        "error" => ("✗", Tone::Failed),
        _ => ("·", Tone::Muted),
    }
}

/// One line saying what a tool call does: OpenCode's title, else the command, path, pattern
/// or URL from its input.
pub fn tool_summary(title: Option<&str>, input: &serde_json::Value) -> String {
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        return sanitize(t.lines().next().unwrap_or_default());
    }
    input_summary(input)
}

fn input_summary(input: &serde_json::Value) -> String {
    let field = |k: &str| input.get(k).and_then(serde_json::Value::as_str);
    if let Some(cmd) = field("command") {
        return format!("$ {}", sanitize(cmd.lines().next().unwrap_or_default()));
    }
    for k in ["filePath", "file_path", "path", "pattern", "url", "query"] {
        if let Some(v) = field(k) {
            return sanitize(v);
        }
    }
    match input {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Object(o) if o.is_empty() => String::new(),
        other => sanitize(&other.to_string()),
    }
}

fn tool_details(
    out: &mut Vec<Row>,
    input: &serde_json::Value,
    output: Option<&str>,
    error: Option<&str>,
    width: usize,
) {
    let inner = width.saturating_sub(6).max(1);
    let bar = |tone| Span::tone("│ ", tone);
    let input_text = match input.get("command").and_then(serde_json::Value::as_str) {
        Some(cmd) => format!("$ {cmd}"),
        None => input_summary(input),
    };
    for line in input_text.lines() {
        let spans = [bar(Tone::Muted), Span::tone(sanitize(line), Tone::Muted)];
        out.extend(indented(wrap(&spans, inner + 2, 2, true), 4));
    }
    if let Some(output) = output {
        let lines: Vec<&str> = output.lines().collect();
        for line in lines.iter().take(OUTPUT_MAX_LINES) {
            let spans = [bar(Tone::Muted), Span::plain(sanitize(line))];
            out.extend(indented(wrap(&spans, inner + 2, 2, true), 4));
        }
        if lines.len() > OUTPUT_MAX_LINES {
            out.push(Row::new(vec![Span::tone(
                format!("    … {} more lines", lines.len() - OUTPUT_MAX_LINES),
                Tone::Muted,
            )]));
        }
    }
    if let Some(error) = error {
        for line in error.lines() {
            let spans = [bar(Tone::Failed), Span::tone(sanitize(line), Tone::Failed)];
            out.extend(indented(wrap(&spans, inner + 2, 2, true), 4));
        }
    }
}

/// The index of the row that heads block `index`.
pub fn block_row(rows: &[Row], index: usize) -> Option<usize> {
    rows.iter().position(|r| r.block == Some(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::event::Event;

    fn tool(status: &str, output: Option<&str>) -> Part {
        Part::Tool {
            id: "prt_t".into(),
            tool: "bash".into(),
            status: status.into(),
            title: None,
            input: serde_json::json!({"command": "cargo test"}),
            output: output.map(str::to_owned),
            error: None,
        }
    }

    fn with_parts(parts: Vec<Part>) -> Transcript {
        let mut t = Transcript::default();
        for part in parts {
            t.apply(&Event::PartUpdated {
                session: "s".into(),
                message_id: "m".into(),
                part,
            });
        }
        t
    }

    fn texts(rows: &[Row]) -> Vec<String> {
        rows.iter().map(Row::text).collect()
    }

    #[test]
    fn tool_calls_show_state_and_collapse_their_output() {
        let mut t = with_parts(vec![tool("completed", Some("ok 1\nok 2"))]);
        let collapsed = texts(&rows(&t, None, 60));
        assert_eq!(
            collapsed,
            ["▍assistant", "  ▸ ✓ bash completed · $ cargo test"]
        );
        t.toggle("prt_t");
        let open = rows(&t, Some(0), 60);
        assert_eq!(
            texts(&open),
            [
                "▍assistant",
                "  ▾ ✓ bash completed · $ cargo test",
                "    │ $ cargo test",
                "    │ ok 1",
                "    │ ok 2",
            ]
        );
        assert!(open[1].highlight);
        assert_eq!(block_row(&open, 0), Some(1));
    }

    #[test]
    fn remote_escape_sequences_never_reach_the_rows() {
        let mut t = with_parts(vec![tool("running", Some("\u{1b}[2Jgone"))]);
        t.toggle("prt_t");
        let all = texts(&rows(&t, None, 60)).join("\n");
        assert!(!all.contains('\u{1b}'), "{all:?}");
        assert!(all.contains("◐ bash running"), "{all}");
    }
}
