//! The `:` command palette: the typed text, then the best matches with what they do and the
//! keys that do the same, the selected one highlighted; drawn over the top of the screen.

use crate::app::App;
use crate::app::palette::{MAX_MATCHES, matches};
use crate::ui::theme::Theme;
use crate::view::text::truncate;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph};

/// Draws the palette near the top of `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(palette) = app.palette() else {
        return;
    };
    let entries = app.palette_entries();
    let found = matches(&entries, &palette.input);
    let shown = found.len().min(MAX_MATCHES);
    let width = area.width.saturating_sub(4).min(72);
    let rows = u16::try_from(shown.max(1)).unwrap_or(1);
    let height = (rows + 3).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + area.height.saturating_sub(height).min(2),
        width,
        height,
    };
    let inner = usize::from(width.saturating_sub(4));
    let name_width = found
        .iter()
        .take(shown)
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(inner / 2);
    let mut lines = vec![Line::from(vec![
        Span::styled(": ", theme.key()),
        Span::raw(format!("{}▏", palette.input)),
    ])];
    if found.is_empty() {
        lines.push(Line::styled("no command matches", theme.muted()));
    }
    for (i, e) in found.iter().take(shown).enumerate() {
        let keys = if e.keys.is_empty() {
            String::new()
        } else {
            format!(" {}", e.keys)
        };
        let room = inner.saturating_sub(name_width + 2 + keys.chars().count());
        let what = truncate(&e.what, room);
        let pad = room.saturating_sub(what.chars().count());
        let line = Line::from(vec![
            Span::styled(
                format!("{:<name_width$}  ", truncate(&e.name, name_width)),
                theme.header(),
            ),
            Span::styled(format!("{what}{}", " ".repeat(pad)), theme.muted()),
            Span::styled(keys, theme.key()),
        ]);
        lines.push(if i == palette.selected {
            line.style(theme.selected())
        } else {
            line
        });
    }
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.key())
        .title(Span::styled(" command ", theme.title()))
        .title_bottom(
            Line::styled(" Enter run · ↑↓ choose · Esc close ", theme.muted()).right_aligned(),
        );
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
