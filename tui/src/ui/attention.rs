//! The attention panel: two lines per item (what and where; the detail and its state), the
//! most urgent first, with the keys to answer.

use crate::app::App;
use crate::app::attention::{Item, ItemKind};
use crate::connect;
use crate::ui::session::permission_text;
use crate::ui::theme::Theme;
use crate::ui::{NARROW, fit, hints, panel, placeholder};
use crate::view::text::{sanitize, truncate};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{HighlightSpacing, List, ListItem, ListState};

/// Draws the panel into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let items = app.attention().items();
    let bell = if app.bell() { "" } else { " (bell off)" };
    let count = format!(" {} waiting{bell} ", items.len());
    let narrow = area.width < NARROW;
    // On a narrow terminal the answers come first, so what fits is what answers.
    let keys: &[(&str, &str)] = if narrow {
        &[
            ("y", "once"),
            ("r", "reject"),
            ("A", "always…"),
            ("Enter", "go to"),
            ("x", "dismiss"),
            ("Esc", "close"),
        ]
    } else {
        &[
            ("y", "once"),
            ("A", "always…"),
            ("r", "reject"),
            ("Enter", "go to"),
            ("x", "dismiss"),
            ("Esc", "close"),
        ]
    };
    let bottom = hints(keys, theme);
    let block = panel(&["attention"], theme)
        .title_top(Line::styled(count, theme.attention()).right_aligned())
        .title_bottom(fit(bottom, area.width));
    if items.is_empty() {
        let lines = vec![
            Line::from("nothing waits for you"),
            Line::styled(
                "permission requests, questions, failed turns, failed OpenCode and finished \
                 sessions of the workspaces you opened show up here",
                theme.muted(),
            ),
        ];
        placeholder(frame, area, block, lines);
        return;
    }
    let width = usize::from(area.width.saturating_sub(8));
    let list_items: Vec<ListItem<'_>> = items
        .iter()
        .map(|i| ListItem::new(item_lines(app, i, width, narrow, theme)))
        .collect();
    let list = List::new(list_items)
        .block(block)
        .highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = ListState::default().with_selected(Some(app.attention().selected()));
    frame.render_stateful_widget(list, area, &mut state);
}

fn item_lines(
    app: &App,
    item: &Item,
    width: usize,
    narrow: bool,
    theme: Theme,
) -> Vec<Line<'static>> {
    let session_name = item.session().map(|s| {
        let title = app.attention().title(&item.watch, s).unwrap_or_default();
        if title.is_empty() {
            s.to_owned()
        } else {
            sanitize(title)
        }
    });
    let (marker, label, detail) = match &item.kind {
        ItemKind::Permission(p) if item.confirming_always => (
            Span::styled("⚠ ", theme.attention()),
            format!("permission {}", sanitize(&p.permission)),
            sanitize(&format!(
                "always? A: {} · f: {} · Esc: cancel",
                proto::grant::describe(&p.permission, &p.always),
                proto::grant::describe(&p.permission, &p.patterns)
            )),
        ),
        ItemKind::Permission(p) => (
            Span::styled("⚠ ", theme.attention()),
            format!("permission {}", sanitize(&p.permission)),
            permission_text(p),
        ),
        ItemKind::Question(q) => (
            Span::styled("? ", theme.attention()),
            "question".to_owned(),
            question_text(&q.questions),
        ),
        ItemKind::OpencodeFailed { error } => (
            Span::styled("✗ ", theme.error()),
            "OpenCode failed".to_owned(),
            sanitize(
                error
                    .as_deref()
                    .unwrap_or("it stopped restarting; s starts it again"),
            ),
        ),
        ItemKind::TurnFailed { error, .. } => (
            Span::styled("✗ ", theme.error()),
            "turn failed".to_owned(),
            sanitize(error.as_str()),
        ),
        ItemKind::Finished { .. } => (
            Span::styled("✓ ", theme.ok()),
            "finished".to_owned(),
            format!(
                "finished {}",
                connect::ago(app.now_ms(), Some(item.since_ms))
            ),
        ),
    };
    let mut first = vec![
        marker,
        Span::styled(format!("{label}  "), theme.header()),
        Span::styled(item.watch.to_string(), theme.muted()),
    ];
    // On a narrow terminal the session's name has a line of its own.
    let mut name_line = None;
    if let Some(name) = session_name {
        if narrow {
            name_line = Some(Line::from(vec![
                Span::raw("  "),
                Span::raw(truncate(&name, width)),
            ]));
        } else {
            first.push(Span::raw(format!("  {}", truncate(&name, width / 2))));
        }
    }
    let state = match (&item.answering, &item.error) {
        (Some(a), _) => Span::styled(
            format!("  sending {}…", format!("{a:?}").to_lowercase()),
            theme.muted(),
        ),
        (None, Some(e)) => Span::styled(format!("  not delivered: {e}"), theme.error()),
        (None, None) => Span::raw(""),
    };
    let second = vec![
        Span::raw("  "),
        Span::styled(truncate(&detail, width), theme.muted()),
        state,
    ];
    let mut lines = vec![Line::from(first)];
    lines.extend(name_line);
    lines.push(Line::from(second));
    lines
}

/// The first question's text, from OpenCode's question list.
fn question_text(questions: &serde_json::Value) -> String {
    let first = questions.as_array().and_then(|a| a.first());
    let text = first
        .and_then(|q| q.get("question").or_else(|| q.get("header")))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("the model asks a question");
    sanitize(text.lines().next().unwrap_or_default())
}
