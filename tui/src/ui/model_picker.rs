//! The model picker over the session screen: OpenCode's default, the models (the host's
//! default marked), then the agents; the session's current choice marked, the cursor
//! highlighted.

use crate::app::App;
use crate::app::model_picker::PickRow;
use crate::ui::hints;
use crate::ui::theme::Theme;
use crate::view::text::truncate;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph};

/// Draws the picker centred in `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(picker) = app.model_picker() else {
        return;
    };
    let pick = app.session().map(|v| v.pick.clone()).unwrap_or_default();
    let width = area.width.saturating_sub(4).min(60);
    let inner = usize::from(width.saturating_sub(4));
    let catalog = &picker.catalog;
    let mut lines = Vec::new();
    for (i, row) in picker.rows().iter().enumerate() {
        if matches!(row, PickRow::DefaultAgent) {
            lines.push(Line::styled("agent", theme.header()));
        } else if matches!(row, PickRow::DefaultModel) {
            lines.push(Line::styled("model", theme.header()));
        }
        let (chosen, label, note) = match row {
            PickRow::DefaultModel => (pick.model.is_none(), "default".to_owned(), None),
            PickRow::Model(m) => {
                let choice = catalog.models.iter().find(|c| &c.reference() == m);
                let note = match choice {
                    Some(c) if c.default => Some("default".to_owned()),
                    Some(c) if !c.name.is_empty() && c.name != c.model => Some(c.name.clone()),
                    _ => None,
                };
                (pick.model.as_deref() == Some(m.as_str()), m.clone(), note)
            }
            PickRow::DefaultAgent => (pick.agent.is_none(), "default".to_owned(), None),
            PickRow::Agent(a) => {
                let note = catalog
                    .agents
                    .iter()
                    .find(|c| &c.name == a)
                    .and_then(|c| c.description.clone());
                (pick.agent.as_deref() == Some(a.as_str()), a.clone(), note)
            }
        };
        let mark = if chosen { "(•) " } else { "( ) " };
        let label = truncate(&label, inner.saturating_sub(4));
        let rest = inner.saturating_sub(4 + label.chars().count() + 2);
        let mut spans = vec![Span::styled(mark, theme.key()), Span::raw(label)];
        if let Some(note) = note.filter(|_| rest > 4) {
            spans.push(Span::styled(
                format!("  {}", truncate(&note, rest)),
                theme.muted(),
            ));
        }
        let line = Line::from(spans);
        lines.push(if i == picker.cursor {
            line.style(theme.selected())
        } else {
            line
        });
    }
    let height = u16::try_from(lines.len() + 2)
        .unwrap_or(u16::MAX)
        .min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.border())
        .title(Span::styled(" model and agent ", theme.header()))
        .title_bottom(hints(&[("Enter", "use"), ("Esc", "close")], theme));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
