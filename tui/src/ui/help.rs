//! The `?` overlay: the key table of the screen underneath, generated from the keymap so it
//! cannot drift from it.

use crate::app::App;
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Draws the overlay centred in `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let context = app.screen_context();
    // Administration is hidden from lower roles.
    let hidden = if app
        .admin_role()
        .is_some_and(|r| r >= proto::rbac::Role::Admin)
    {
        Vec::new()
    } else {
        vec![crate::action::Action::OpenAdmin]
    };
    let rows = app.keymap().help_rows_without(context, &hidden);
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    // On a narrow terminal a description wraps under itself instead of being cut.
    let widest: usize = rows
        .iter()
        .map(|(_, what)| key_width + what.chars().count() + 4)
        .max()
        .unwrap_or(0);
    let width = (widest + 2).min(usize::from(area.width));
    let text_width = width.saturating_sub(key_width + 6).max(1);
    let mut lines: Vec<Line<'_>> = Vec::new();
    for (keys, what) in rows {
        let spans = [crate::view::text::Span::plain(what)];
        let wrapped = crate::view::text::wrap(&spans, text_width, 0, false);
        for (i, part) in wrapped.iter().enumerate() {
            let text: String = part.iter().map(|s| s.text.as_str()).collect();
            let keys = if i == 0 { keys.as_str() } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!(" {keys:>key_width$} "), theme.key()),
                Span::raw(format!(" {text} ")),
            ]));
        }
    }
    let height = (lines.len() + 2).min(usize::from(area.height));
    let popup = area.centered(
        Constraint::Length(u16::try_from(width).unwrap_or(u16::MAX)),
        Constraint::Length(u16::try_from(height).unwrap_or(u16::MAX)),
    );
    // A terminal too short for the table scrolls it with j/k.
    let visible = height.saturating_sub(2);
    let top = app.help_top().min(lines.len().saturating_sub(visible));
    let close = if lines.len() > visible {
        format!(
            " {}–{} of {} · j k scroll · ? close ",
            top + 1,
            top + visible,
            lines.len()
        )
    } else {
        " ? or Esc to close ".to_owned()
    };
    let lines: Vec<Line<'_>> = lines.into_iter().skip(top).collect();
    let block = Block::bordered()
        .border_style(theme.border())
        .title(Span::styled(
            format!(" keys · {} ", context.title()),
            theme.title(),
        ))
        .title_bottom(Line::styled(close, theme.muted()).right_aligned());
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
