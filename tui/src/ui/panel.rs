//! The centred popup the workspace panels share (clone, templates, folders, ports, notifications): a bordered
//! box as tall as its wrapped lines (at most the screen), a title, and key hints on its bottom
//! border.

use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Wrap};

/// A panel's outer width on `area` (at most `max`) and the text width inside it.
pub(super) fn size(area: Rect, max: u16) -> (u16, usize) {
    let width = area.width.saturating_sub(4).min(max);
    (width, usize::from(width.saturating_sub(4)).max(1))
}

/// Draws `lines` in a panel `width` wide (text `inner` wide) centred on `area`.
pub(super) fn render(
    frame: &mut Frame<'_>,
    area: Rect,
    size: (u16, usize),
    lines: Vec<Line<'static>>,
    title: String,
    bottom: Line<'static>,
    theme: Theme,
) {
    render_scrolled(frame, area, size, lines, title, bottom, 0, theme);
}

/// The same, its first `scroll` rows scrolled out of view (a list taller than the screen).
#[allow(
    clippy::too_many_arguments,
    reason = "render's arguments and the scroll; a struct would be built for one call"
)]
pub(super) fn render_scrolled(
    frame: &mut Frame<'_>,
    area: Rect,
    (width, inner): (u16, usize),
    lines: Vec<Line<'static>>,
    title: String,
    bottom: Line<'static>,
    scroll: u16,
    theme: Theme,
) {
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let height = u16::try_from(rows + 2).unwrap_or(u16::MAX).min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.border())
        .title(Span::styled(title, theme.header()))
        .title_bottom(super::fit(bottom, width));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        popup,
    );
}
