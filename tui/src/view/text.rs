//! Styled text as plain data, and word wrapping by display width. Remote text is sanitised
//! with `proto::text` (re-exported here): escape sequences, control characters and bidi
//! overrides from a host never reach the terminal.

use unicode_width::UnicodeWidthChar;

/// What a piece of text is, for the theme to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tone {
    /// Ordinary text.
    #[default]
    Plain,
    /// Secondary text.
    Muted,
    /// A markdown heading.
    Heading,
    /// Inline code and code blocks.
    Code,
    /// A code block's language label.
    CodeLang,
    /// A block quote.
    Quote,
    /// A list bullet or number.
    Bullet,
    /// The operator's messages.
    User,
    /// The model's messages.
    Assistant,
    /// A tool name.
    Tool,
    /// Waiting (tool pending, permission asked).
    Pending,
    /// Running.
    Running,
    /// Done.
    Done,
    /// Failed.
    Failed,
    /// Model reasoning.
    Reasoning,
    /// Needs attention.
    Warn,
    /// An added diff line.
    Added,
    /// A removed diff line.
    Removed,
    /// A diff hunk header.
    Hunk,
    /// A diff file header.
    FileHeader,
    /// A key name in a hint.
    Key,
}

/// A tone plus emphasis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Look {
    /// The tone.
    pub tone: Tone,
    /// Bold.
    pub bold: bool,
    /// Italic.
    pub italic: bool,
}

impl Look {
    /// A tone without emphasis.
    pub const fn tone(tone: Tone) -> Self {
        Self {
            tone,
            bold: false,
            italic: false,
        }
    }

    /// The same look, bold.
    pub const fn bold(mut self) -> Self {
        self.bold = true;
        self
    }

    /// The same look, italic.
    pub const fn italic(mut self) -> Self {
        self.italic = true;
        self
    }
}

/// A run of text with one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The text (one line, sanitised).
    pub text: String,
    /// How it looks.
    pub look: Look,
}

impl Span {
    /// A span of `text` with `look`.
    pub fn new(text: impl Into<String>, look: Look) -> Self {
        Self {
            text: text.into(),
            look,
        }
    }

    /// Plain text.
    pub fn plain(text: impl Into<String>) -> Self {
        Self::new(text, Look::default())
    }

    /// Text in `tone`.
    pub fn tone(text: impl Into<String>, tone: Tone) -> Self {
        Self::new(text, Look::tone(tone))
    }
}

/// One screen row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Its spans, left to right.
    pub spans: Vec<Span>,
    /// The collapsible block (tool call, reasoning) this row is the header of.
    pub block: Option<usize>,
    /// Drawn highlighted (the selected block's header).
    pub highlight: bool,
}

impl Row {
    /// A row of spans.
    pub fn new(spans: Vec<Span>) -> Self {
        Self {
            spans,
            ..Self::default()
        }
    }

    /// An empty row.
    pub fn blank() -> Self {
        Self::default()
    }

    /// The row's text, for tests and searches.
    pub fn text(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }
}

/// Display width of `c` (control characters count as 0).
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// Display width of `s`.
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Remote text made safe and flat (one line) or safe with its line breaks kept: the one
/// sanitizer shared with the relay and the agent (escapes, controls and bidi overrides dropped).
pub use proto::text::{sanitize_line as sanitize, sanitize_text};

/// `n` of a thing with a regular plural: "1 session", "2 sessions", "0 sessions".
pub fn count(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Truncates `s` to `max` columns, ending in `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

type Cell = (char, Look);

/// Turns cells into spans (adjacent cells with the same look merge), dropping trailing spaces
/// after the first `keep` cells.
fn to_spans(cells: &mut Vec<Cell>, keep: usize) -> Vec<Span> {
    while cells.len() > keep && cells.last().is_some_and(|(c, _)| *c == ' ') {
        cells.pop();
    }
    let mut spans: Vec<Span> = Vec::new();
    for (c, look) in cells.drain(..) {
        match spans.last_mut() {
            Some(last) if last.look == look => last.text.push(c),
            _ => spans.push(Span::new(c.to_string(), look)),
        }
    }
    spans
}

/// The state of one line being filled.
struct Filler {
    width: usize,
    indent: usize,
    lines: Vec<Vec<Span>>,
    cur: Vec<Cell>,
    used: usize,
    /// Cells at the start of `cur` that are continuation indent.
    base: usize,
}

impl Filler {
    fn has_content(&self) -> bool {
        self.cur.len() > self.base
    }

    fn break_line(&mut self) {
        let base = self.base;
        self.lines.push(to_spans(&mut self.cur, base));
        self.cur
            .extend(std::iter::repeat_n((' ', Look::default()), self.indent));
        self.used = self.indent;
        self.base = self.indent;
    }

    fn push_word(&mut self, word: &[Cell]) {
        let word_w: usize = word.iter().map(|(c, _)| char_width(*c)).sum();
        if self.has_content() && self.used + word_w > self.width {
            self.break_line();
        }
        for &(c, look) in word {
            let w = char_width(c);
            if self.used + w > self.width && self.has_content() {
                self.break_line();
            }
            self.cur.push((c, look));
            self.used += w;
        }
    }

    fn push_spaces(&mut self, spaces: &[Cell]) {
        for &cell in spaces {
            if self.used < self.width {
                self.cur.push(cell);
                self.used += 1;
            }
        }
    }
}

/// Wraps one logical line to `width` columns at word boundaries (words longer than a line are
/// split); continuation lines start with `indent` spaces. With `hard`, splits anywhere (code).
/// Always returns at least one (possibly empty) line.
pub fn wrap(spans: &[Span], width: usize, indent: usize, hard: bool) -> Vec<Vec<Span>> {
    let width = width.max(1);
    let indent = if indent * 2 > width { 0 } else { indent };
    let cells: Vec<Cell> = spans
        .iter()
        .flat_map(|s| s.text.chars().map(move |c| (c, s.look)))
        .collect();
    let mut f = Filler {
        width,
        indent,
        lines: Vec::new(),
        cur: Vec::new(),
        used: 0,
        base: 0,
    };
    if hard {
        for cell in &cells {
            f.push_word(std::slice::from_ref(cell));
        }
    } else {
        let mut i = 0;
        while i < cells.len() {
            let start = i;
            while i < cells.len() && cells[i].0 != ' ' {
                i += 1;
            }
            let word_end = i;
            while i < cells.len() && cells[i].0 == ' ' {
                i += 1;
            }
            f.push_word(&cells[start..word_end]);
            f.push_spaces(&cells[word_end..i]);
        }
    }
    let keep = f.base.min(f.cur.len());
    if f.has_content() || f.lines.is_empty() {
        f.lines.push(to_spans(&mut f.cur, keep));
    }
    f.lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Vec<Span>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.iter().map(|s| s.text.as_str()).collect())
            .collect()
    }

    fn plain(s: &str) -> Vec<Span> {
        vec![Span::plain(s)]
    }

    #[test]
    fn wraps_at_words_and_splits_long_ones() {
        assert_eq!(
            texts(&wrap(&plain("the quick brown fox"), 10, 0, false)),
            ["the quick", "brown fox"]
        );
        assert_eq!(
            texts(&wrap(&plain("abcdefghijkl xy"), 5, 0, false)),
            ["abcde", "fghij", "kl xy"]
        );
        assert_eq!(texts(&wrap(&plain(""), 5, 0, false)), [""]);
        assert_eq!(
            texts(&wrap(&plain("  indented"), 20, 0, false)),
            ["  indented"]
        );
    }

    #[test]
    fn continuation_lines_are_indented_and_looks_survive() {
        let spans = vec![
            Span::tone("• ", Tone::Bullet),
            Span::plain("one two "),
            Span::new("three", Look::default().bold()),
        ];
        let lines = wrap(&spans, 9, 2, false);
        assert_eq!(texts(&lines), ["• one two", "  three"]);
        assert_eq!(lines[0][0].look.tone, Tone::Bullet);
        assert!(lines[1].last().is_some_and(|s| s.look.bold));
    }

    #[test]
    fn hard_wrap_splits_anywhere_and_wide_chars_count_double() {
        assert_eq!(
            texts(&wrap(&plain("let x = 1;"), 4, 0, true)),
            ["let", "x =", "1;"]
        );
        assert_eq!(
            texts(&wrap(&plain("日本語です"), 4, 0, false)),
            ["日本", "語で", "す"]
        );
    }

    #[test]
    fn sanitize_drops_escapes_and_controls() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\tx\u{7}"), "red    x");
        assert_eq!(sanitize("a\u{1b}]0;title\u{7}b"), "ab");
        assert_eq!(sanitize("a\rb"), "ab");
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("hello", 10), "hello");
        assert_eq!(truncate("hello world", 6), "hello…");
    }
}
