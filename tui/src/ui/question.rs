//! The question form over the attention panel: which question of how many, its text, the
//! options with their descriptions (picked ones marked), the cursor highlighted.

use crate::app::App;
use crate::ui::theme::Theme;
use crate::ui::{fit, hints};
use crate::view::text::truncate;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Wrap};

/// Draws the form centred in `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(form) = app.question_form() else {
        return;
    };
    let Some(q) = form.questions.get(form.current) else {
        return;
    };
    let width = area.width.saturating_sub(4).min(76);
    let inner = usize::from(width.saturating_sub(4));
    let picked = form.picked.get(form.current);
    let mut lines = vec![
        Line::styled(q.text.to_string(), theme.header()),
        Line::from(""),
    ];
    for (i, (label, description)) in q.options.iter().enumerate() {
        let mark = match (picked.is_some_and(|p| p.contains(&i)), q.multiple) {
            (true, true) => "[x] ",
            (false, true) => "[ ] ",
            (true, false) => "(•) ",
            (false, false) => "( ) ",
        };
        let rest = inner.saturating_sub(4 + label.chars().count() + 2);
        let mut spans = vec![
            Span::styled(mark, theme.key()),
            Span::raw(label.to_string()),
        ];
        if !description.is_empty() && rest > 4 {
            spans.push(Span::styled(
                format!("  {}", truncate(description, rest)),
                theme.muted(),
            ));
        }
        let line = Line::from(spans);
        lines.push(if i == form.cursor {
            line.style(theme.selected())
        } else {
            line
        });
    }
    let height = u16::try_from(lines.len() + 3)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    let header = if q.header.is_empty() {
        "question".to_owned()
    } else {
        q.header.to_string()
    };
    let of = format!(" {} of {} ", form.current + 1, form.questions.len());
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.attention())
        .title(Span::styled(format!(" ? {header} "), theme.attention()))
        .title_top(Line::from(of).right_aligned())
        .title_bottom(fit(
            hints(
                &[
                    ("Space", "pick"),
                    ("Enter", "next/submit"),
                    ("r", "reject"),
                    ("Esc", "later"),
                ],
                theme,
            ),
            popup.width,
        ));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}
