//! The transcript as rows: one header per message, markdown for the model's text, tool calls
//! with their state (output collapsible), reasoning collapsed, changed files and errors.

use crate::transcript::{Transcript, part_id};
use crate::view::markdown;
use crate::view::text::{Look, Row, Span, Tone, count, sanitize, truncate, wrap};
use proto::ops::{Message, Part};

/// Most output lines of one tool call shown when expanded.
pub const OUTPUT_MAX_LINES: usize = 200;
/// Indent of a message's body under its header.
const BODY: usize = 2;

/// The transcript as rows `width` columns wide; `selected` is the highlighted block's index
/// (in [`Transcript::blocks`] order). Lays out every message: the screen uses [`Layout`].
pub fn rows(t: &Transcript, selected: Option<usize>, width: usize) -> Vec<Row> {
    let mut layout = Layout::default();
    layout.sync(t, width);
    layout.window(0, layout.len(), selected)
}

/// One message laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Laid {
    /// The message's revision when it was laid out.
    rev: u64,
    /// Its rows, a blank separator first for every message but the first; block indexes
    /// count from 0 within the message and nothing is highlighted.
    rows: Vec<Row>,
    /// How many collapsible blocks it has.
    blocks: usize,
}

/// The transcript laid out message by message, kept for the next frame: [`Layout::sync`] lays
/// out again only the messages whose revision changed (while an answer streams, the last one),
/// everything when the width changes; a frame then takes only the rows it shows
/// ([`Layout::window`]). Memory grows with the transcript's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    width: usize,
    laid: Vec<Laid>,
    /// `row_start[i]` is the first row of message `i`; one more entry holds the total.
    row_start: Vec<usize>,
    /// `block_start[i]` is the index of message `i`'s first block; one more holds the total.
    block_start: Vec<usize>,
}

impl Layout {
    /// The width the rows were laid out for.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Total rows.
    pub fn len(&self) -> usize {
        self.row_start.last().copied().unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Brings the layout up to date with `t` at `width`; returns how many messages were laid
    /// out again.
    pub fn sync(&mut self, t: &Transcript, width: usize) -> usize {
        if width != self.width {
            self.width = width;
            self.laid.clear();
        }
        let messages = t.messages();
        let revs = t.revisions();
        self.laid.truncate(messages.len());
        let mut first_changed = None;
        let mut count = 0;
        for (i, (m, &rev)) in messages.iter().zip(revs).enumerate() {
            if self.laid.get(i).is_some_and(|l| l.rev == rev) {
                continue;
            }
            let mut rows = Vec::new();
            if i > 0 {
                rows.push(Row::blank());
            }
            let mut blocks = 0;
            message_rows(&mut rows, t, m, &mut blocks, width);
            let laid = Laid { rev, rows, blocks };
            match self.laid.get_mut(i) {
                Some(slot) => *slot = laid,
                None => self.laid.push(laid),
            }
            first_changed.get_or_insert(i);
            count += 1;
        }
        if self.row_start.is_empty() || self.row_start.len() > self.laid.len() + 1 {
            // Fewer messages than before (a new history): every offset is new.
            first_changed = Some(0);
        }
        if let Some(from) = first_changed {
            self.row_start.truncate(from + 1);
            self.block_start.truncate(from + 1);
            if self.row_start.is_empty() {
                self.row_start.push(0);
                self.block_start.push(0);
            }
            for laid in &self.laid[from..] {
                let (rows, blocks) = (self.len(), self.blocks());
                self.row_start.push(rows + laid.rows.len());
                self.block_start.push(blocks + laid.blocks);
            }
        }
        count
    }

    fn blocks(&self) -> usize {
        self.block_start.last().copied().unwrap_or(0)
    }

    /// The message holding row `row` (the last one past the end).
    fn message_at(&self, row: usize) -> usize {
        self.row_start
            .partition_point(|&start| start <= row)
            .saturating_sub(1)
    }

    /// `count` rows from row `top`, the block `selected` highlighted.
    pub fn window(&self, top: usize, count: usize, selected: Option<usize>) -> Vec<Row> {
        let mut out = Vec::with_capacity(count.min(self.len().saturating_sub(top)));
        let mut message = self.message_at(top);
        let mut skip = top.saturating_sub(self.row_start.get(message).copied().unwrap_or(0));
        while out.len() < count {
            let (Some(laid), Some(&blocks)) =
                (self.laid.get(message), self.block_start.get(message))
            else {
                break;
            };
            for row in laid.rows.iter().skip(skip).take(count - out.len()) {
                let mut row = row.clone();
                row.block = row.block.map(|b| b + blocks);
                row.highlight = row.block.is_some() && row.block == selected;
                out.push(row);
            }
            skip = 0;
            message += 1;
        }
        out
    }

    /// The row that heads block `index`.
    pub fn block_row(&self, index: usize) -> Option<usize> {
        let message = self
            .block_start
            .partition_point(|&start| start <= index)
            .checked_sub(1)?;
        let laid = self.laid.get(message)?;
        let local = index - self.block_start.get(message)?;
        let offset = laid.rows.iter().position(|r| r.block == Some(local))?;
        Some(self.row_start.get(message)? + offset)
    }
}

fn indented(lines: Vec<Vec<Span>>, indent: usize) -> impl Iterator<Item = Row> {
    lines.into_iter().map(move |mut spans| {
        if indent > 0 {
            spans.insert(0, Span::plain(" ".repeat(indent)));
        }
        Row::new(spans)
    })
}

fn message_rows(out: &mut Vec<Row>, t: &Transcript, m: &Message, block: &mut usize, width: usize) {
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
                let mut header = block_header(open, index);
                header.spans.push(Span::new(
                    format!("thinking · {}", count(words, "word")),
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
                let mut header = block_header(open, index);
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

/// The start of a block's header row: indent and the open/closed arrow.
fn block_header(open: bool, index: usize) -> Row {
    Row {
        spans: vec![
            Span::plain(" ".repeat(BODY)),
            Span::tone(if open { "▾ " } else { "▸ " }, Tone::Muted),
        ],
        block: Some(index),
        highlight: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The index of the row that heads block `index`, found by scanning (the oracle for
    /// [`Layout::block_row`]).
    fn block_row(rows: &[Row], index: usize) -> Option<usize> {
        rows.iter().position(|r| r.block == Some(index))
    }
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

    fn message(i: usize, parts: Vec<Part>) -> Message {
        Message {
            id: format!("msg_{i}"),
            role: if i.is_multiple_of(2) {
                "user"
            } else {
                "assistant"
            }
            .into(),
            created_ms: 0,
            finish: None,
            error: None,
            parts,
        }
    }

    fn history(n: usize) -> Transcript {
        Transcript::from_history(
            (0..n)
                .map(|i| {
                    let mut parts = vec![Part::Text {
                        id: format!("prt_{i}_text"),
                        text: format!("message {i}\n\n- a point\n- another"),
                    }];
                    if i % 3 == 1 {
                        parts.push(Part::Tool {
                            id: format!("prt_{i}_tool"),
                            tool: "bash".into(),
                            status: "completed".into(),
                            title: None,
                            input: serde_json::json!({"command": format!("run {i}")}),
                            output: Some("one\ntwo".into()),
                            error: None,
                        });
                    }
                    message(i, parts)
                })
                .collect(),
        )
    }

    /// The layout as the screen takes it, against laying everything out from scratch.
    fn assert_matches_fresh(layout: &Layout, t: &Transcript, selected: Option<usize>) {
        let fresh = rows(t, selected, layout.width());
        assert_eq!(layout.len(), fresh.len());
        assert_eq!(layout.window(0, usize::MAX, selected), fresh);
        for top in [0, 1, 7, fresh.len().saturating_sub(5), fresh.len()] {
            let want: Vec<Row> = fresh.iter().skip(top).take(5).cloned().collect();
            assert_eq!(layout.window(top, 5, selected), want, "window at {top}");
        }
        for b in 0..t.blocks().len() {
            assert_eq!(layout.block_row(b), block_row(&fresh, b), "block {b}");
        }
        assert_eq!(layout.block_row(t.blocks().len()), None);
    }

    #[test]
    fn the_layout_lays_out_only_changed_messages_and_matches_a_fresh_one() {
        let mut t = history(30);
        let mut layout = Layout::default();
        assert_eq!(layout.sync(&t, 40), 30, "everything at first");
        assert_eq!(layout.sync(&t, 40), 0, "nothing changed");
        assert_matches_fresh(&layout, &t, Some(3));

        // A streamed delta to the last message: that message alone.
        t.apply(&Event::TextDelta {
            session: "s".into(),
            message_id: "msg_29".into(),
            part_id: "prt_29_text".into(),
            delta: " and a much longer tail that wraps onto more rows".into(),
        });
        assert_eq!(layout.sync(&t, 40), 1);
        assert_matches_fresh(&layout, &t, None);

        // A new message at the end, then a block expanded in the middle.
        t.apply(&Event::TextDelta {
            session: "s".into(),
            message_id: "msg_new".into(),
            part_id: "prt_new".into(),
            delta: "fresh".into(),
        });
        assert_eq!(layout.sync(&t, 40), 1);
        t.toggle("prt_13_tool");
        assert_eq!(layout.sync(&t, 40), 1, "the expanded block's message only");
        assert_matches_fresh(&layout, &t, Some(4));

        // Another width lays out everything; a shorter history drops the rest.
        assert_eq!(layout.sync(&t, 25), 31);
        assert_matches_fresh(&layout, &t, Some(0));
        t.replace_history(history(4).messages().to_vec());
        assert_eq!(layout.sync(&t, 25), 4);
        assert_matches_fresh(&layout, &t, Some(1));
    }
}
