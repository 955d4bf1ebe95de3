//! A small markdown renderer for model answers: headings, bullet and numbered lists, quotes,
//! rules, fenced code with its language label, and inline bold, italic and code. Line based,
//! so half-streamed text renders sensibly (an open fence is code until it closes).

use crate::view::text::{Look, Span, Tone, sanitize, wrap};

/// Renders `text` into lines at most `width` columns wide.
pub fn render(text: &str, width: usize) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    let mut fence: Option<String> = None;
    for raw in text.lines() {
        let line = sanitize(raw);
        let trimmed = line.trim_start();
        if let Some(marker) = fence.as_deref() {
            if trimmed.starts_with(marker) && trimmed.trim_start_matches(marker).trim().is_empty() {
                fence = None;
                continue;
            }
            let spans = vec![
                Span::tone("│ ", Tone::Muted),
                Span::tone(line.clone(), Tone::Code),
            ];
            out.extend(wrap(&spans, width, 2, true));
            continue;
        }
        if let Some(marker) = fence_marker(trimmed) {
            let lang = trimmed.trim_start_matches(marker).trim();
            let label = if lang.is_empty() { "code" } else { lang };
            out.push(vec![
                Span::tone("╭─ ", Tone::Muted),
                Span::new(label.to_owned(), Look::tone(Tone::CodeLang).bold()),
            ]);
            fence = Some(marker.to_owned());
            continue;
        }
        out.extend(block_line(&line, width));
    }
    if out.is_empty() {
        out.push(Vec::new());
    }
    out
}

/// "```" or "~~~" (or longer) at the start of a line opens a fence.
fn fence_marker(line: &str) -> Option<&str> {
    ["````", "```", "~~~~", "~~~"]
        .into_iter()
        .find(|m| line.starts_with(m))
}

/// One line outside code: heading, list item, quote, rule or paragraph.
fn block_line(line: &str, width: usize) -> Vec<Vec<Span>> {
    let trimmed = line.trim_start();
    let lead = line.len() - trimmed.len();
    if trimmed.is_empty() {
        return vec![Vec::new()];
    }
    if let Some(text) = heading(trimmed) {
        let look = Look::tone(Tone::Heading).bold();
        return wrap(&inline(text, look), width, 0, false);
    }
    if is_rule(trimmed) {
        return vec![vec![Span::tone("─".repeat(width.min(40)), Tone::Muted)]];
    }
    if let Some(rest) = trimmed.strip_prefix('>') {
        let mut spans = vec![Span::tone("▎ ", Tone::Quote)];
        spans.extend(inline(rest.trim_start(), Look::tone(Tone::Quote).italic()));
        return wrap(&spans, width, 2, false);
    }
    if let Some((marker, rest)) = list_item(trimmed) {
        let pad = " ".repeat(lead.min(8));
        let marker_text = format!("{pad}{marker} ");
        let hang = crate::view::text::width(&marker_text);
        let mut spans = vec![Span::tone(marker_text, Tone::Bullet)];
        spans.extend(inline(rest, Look::default()));
        return wrap(&spans, width, hang, false);
    }
    wrap(&inline(line, Look::default()), width, 0, false)
}

fn heading(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&hashes) {
        let rest = &line[hashes..];
        if rest.is_empty() {
            return Some("");
        }
        if let Some(text) = rest.strip_prefix(' ') {
            return Some(text.trim().trim_end_matches('#').trim_end());
        }
    }
    None
}

fn is_rule(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    compact.len() >= 3
        && ['-', '*', '_']
            .iter()
            .any(|&m| compact.chars().all(|c| c == m))
}

/// A list item's marker (shown as `•` for bullets, kept for numbers) and its text.
fn list_item(line: &str) -> Option<(String, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(rest) = line.strip_prefix(bullet) {
            let rest = rest.trim_start();
            // Task list boxes read better as boxes.
            if let Some(done) = rest
                .strip_prefix("[x] ")
                .or_else(|| rest.strip_prefix("[X] "))
            {
                return Some(("☑".into(), done));
            }
            if let Some(open) = rest.strip_prefix("[ ] ") {
                return Some(("☐".into(), open));
            }
            return Some(("•".into(), rest));
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if (1..=3).contains(&digits) {
        let after = &line[digits..];
        for sep in [". ", ") "] {
            if let Some(rest) = after.strip_prefix(sep) {
                return Some((
                    format!("{}{}", &line[..digits], &sep[..1]),
                    rest.trim_start(),
                ));
            }
        }
    }
    None
}

/// Inline markup: `code`, **bold**, __bold__, *italic*, _italic_. Markers without a partner
/// later on the line stay literal; `_` inside words (snake_case) is not emphasis.
pub fn inline(text: &str, base: Look) -> Vec<Span> {
    let chars: Vec<char> = text.chars().collect();
    let mut spans: Vec<Span> = Vec::new();
    let mut buf = String::new();
    let (mut bold, mut italic) = (false, false);
    let look = |bold: bool, italic: bool| Look {
        bold: base.bold || bold,
        italic: base.italic || italic,
        ..base
    };
    let flush = |spans: &mut Vec<Span>, buf: &mut String, l: Look| {
        if !buf.is_empty() {
            spans.push(Span::new(std::mem::take(buf), l));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest = &chars[i..];
        if c == '`'
            && let Some(end) = rest[1..].iter().position(|&x| x == '`')
        {
            flush(&mut spans, &mut buf, look(bold, italic));
            let code: String = rest[1..=end].iter().collect();
            spans.push(Span::new(code, Look::tone(Tone::Code)));
            i += end + 2;
            continue;
        }
        let prev_alnum = i > 0 && chars[i - 1].is_alphanumeric();
        if (c == '*' || c == '_') && rest.get(1) == Some(&c) {
            let closing = bold;
            let partner = closing || has_closing(&chars[i + 2..], &[c, c]);
            if partner && !(c == '_' && prev_alnum && !closing) {
                flush(&mut spans, &mut buf, look(bold, italic));
                bold = !bold;
                i += 2;
                continue;
            }
        } else if c == '*' || c == '_' {
            let next = rest.get(1).copied();
            let closing = italic && !after_space(&chars, i);
            let opening = !italic
                && next.is_some_and(|n| !n.is_whitespace())
                && !(c == '_' && prev_alnum)
                && has_closing(&chars[i + 1..], &[c]);
            let word_inside = c == '_' && closing && next.is_some_and(char::is_alphanumeric);
            if (opening || closing) && !word_inside {
                flush(&mut spans, &mut buf, look(bold, italic));
                italic = !italic;
                i += 1;
                continue;
            }
        }
        buf.push(c);
        i += 1;
    }
    flush(&mut spans, &mut buf, look(bold, italic));
    spans
}

/// Whether position `i` starts the line or follows whitespace.
fn after_space(chars: &[char], i: usize) -> bool {
    i == 0 || chars[i - 1].is_whitespace()
}

fn has_closing(rest: &[char], marker: &[char]) -> bool {
    rest.windows(marker.len())
        .enumerate()
        .any(|(k, w)| w == marker && k > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Vec<Span>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.iter().map(|s| s.text.as_str()).collect())
            .collect()
    }

    fn find<'a>(lines: &'a [Vec<Span>], needle: &str) -> &'a Span {
        lines
            .iter()
            .flatten()
            .find(|s| s.text.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} not rendered"))
    }

    #[test]
    fn headings_lists_and_quotes() {
        let md = "# Plan\n\n- first step\n  - nested\n2. second\n> quoted\n---";
        let lines = render(md, 40);
        assert_eq!(
            text(&lines),
            [
                "Plan",
                "",
                "• first step",
                "  • nested",
                "2. second",
                "▎ quoted",
                "────────────────────────────────────────"
            ]
        );
        assert_eq!(find(&lines, "Plan").look.tone, Tone::Heading);
        assert!(find(&lines, "Plan").look.bold);
        assert_eq!(find(&lines, "•").look.tone, Tone::Bullet);
    }

    #[test]
    fn fenced_code_has_a_language_label_and_is_not_markdown() {
        let md = "Run:\n```rust\nlet **x** = 1;\n```\nafter";
        let lines = render(md, 40);
        assert_eq!(
            text(&lines),
            ["Run:", "╭─ rust", "│ let **x** = 1;", "after"]
        );
        assert_eq!(find(&lines, "rust").look.tone, Tone::CodeLang);
        assert_eq!(find(&lines, "let").look.tone, Tone::Code);
        // While streaming, an unclosed fence is still code.
        let open = render("```\nfn main() {", 40);
        assert_eq!(text(&open), ["╭─ code", "│ fn main() {"]);
    }

    #[test]
    fn inline_emphasis_and_code() {
        let spans = inline(
            "a **bold** and *it* and `x_y` and snake_case_name",
            Look::default(),
        );
        let by_text = |t: &str| spans.iter().find(|s| s.text == t).cloned();
        assert!(by_text("bold").is_some_and(|s| s.look.bold));
        assert!(by_text("it").is_some_and(|s| s.look.italic));
        assert!(by_text("x_y").is_some_and(|s| s.look.tone == Tone::Code));
        let all: String = spans.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(all, "a bold and it and x_y and snake_case_name");
        // Unpartnered markers stay literal.
        let lone: String = inline("2 * 3 = 6, **open", Look::default())
            .iter()
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(lone, "2 * 3 = 6, **open");
    }

    #[test]
    fn long_list_items_hang_under_their_text() {
        let lines = render("- alpha beta gamma delta", 14);
        assert_eq!(text(&lines), ["• alpha beta", "  gamma delta"]);
    }
}
