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
    let lines: Vec<Line<'_>> = rows
        .into_iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:>key_width$} "), theme.key()),
                Span::raw(format!(" {what} ")),
            ])
        })
        .collect();
    let width = (lines.iter().map(Line::width).max().unwrap_or(0) + 2).min(usize::from(area.width));
    let height = (lines.len() + 2).min(usize::from(area.height));
    let popup = area.centered(
        Constraint::Length(u16::try_from(width).unwrap_or(u16::MAX)),
        Constraint::Length(u16::try_from(height).unwrap_or(u16::MAX)),
    );
    let block = Block::bordered()
        .border_style(theme.border())
        .title(Span::styled(
            format!(" keys · {} ", context.title()),
            theme.title(),
        ))
        .title_bottom(Line::styled(" ? or Esc to close ", theme.muted()).right_aligned());
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
