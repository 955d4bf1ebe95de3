//! The sessions panel: a workspace's sessions, newest activity first, with status, waiting
//! permission requests and last activity.

use crate::app::App;
use crate::app::SessionRow;
use crate::connect;
use crate::ui::theme::Theme;
use crate::ui::{filter_line, fit, fit_columns, hints, panel, placeholder};
use crate::view::text::count;
use proto::ops::SessionStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};

/// The title's status word while the screen's host is offline.
pub(super) const OFFLINE: &str = "✗ host offline";

/// The word and style of a session status.
pub(super) fn status(status: &SessionStatus, theme: Theme) -> (String, Style) {
    match status {
        SessionStatus::Idle => ("○ idle".into(), theme.muted()),
        SessionStatus::Busy => ("● busy".into(), theme.warn()),
        SessionStatus::Retry { attempt, .. } => (format!("↻ retry #{attempt}"), theme.warn()),
    }
}

/// Draws the panel into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(view) = app.sessions() else {
        return;
    };
    let count = view
        .list()
        .map(|l| format!(" {} ", count(l.len(), "session")))
        .unwrap_or_default();
    // A filter being typed is shown whole; key hints are fitted to the width.
    let bottom = filter_line(&view.nav, theme).unwrap_or_else(|| {
        fit(
            hints(
                &[
                    ("Enter", "open"),
                    ("n", "new"),
                    ("/", "filter"),
                    ("Esc", "back"),
                ],
                theme,
            ),
            area.width,
        )
    });
    let mut top = Line::from(count).right_aligned();
    if app.open_host_offline().is_some() {
        top.push_span(Span::styled(format!(" {OFFLINE} "), theme.error()));
    }
    let block = panel(
        &[view.host.as_str(), view.workspace.as_str(), "sessions"],
        theme,
    )
    .title_top(top)
    .title_bottom(bottom);
    let Some(list) = view.list() else {
        let text = match &view.error {
            Some(e) => Line::styled(format!("cannot list sessions: {e}"), theme.error()),
            None => Line::styled("asking OpenCode for its sessions…", theme.muted()),
        };
        placeholder(frame, area, block, vec![text]);
        return;
    };
    if list.is_empty() {
        let lines = vec![
            Line::from("no sessions yet"),
            Line::from(vec![
                Span::styled("n", theme.key()),
                Span::styled(" starts one", theme.muted()),
            ]),
        ];
        placeholder(frame, area, block, lines);
        return;
    }
    let watch = view.watch();
    let waiting = |s: &SessionRow| app.attention().requests_for(&watch, s.id.as_str()).len();
    let header =
        Row::new(["TITLE", "STATUS", "WAITING", "ACTIVITY", "SESSION"]).style(theme.header());
    let now = app.now_ms();
    let rows = view.visible().into_iter().map(|s| {
        let (text, style) = status(&s.status, theme);
        let wait = match waiting(s) {
            0 => Span::raw(""),
            n => Span::styled(format!("⚠ {n}"), theme.attention()),
        };
        let title = if s.title.is_empty() {
            "(untitled)".to_owned()
        } else {
            s.title.to_string()
        };
        Row::new([
            Cell::from(title),
            Cell::from(Span::styled(text, style)),
            Cell::from(wait),
            Cell::from(connect::ago(now, Some(s.updated_ms))),
            Cell::from(Span::styled(s.id.to_string(), theme.muted())),
        ])
    });
    // On a narrow terminal the title keeps room to be read: activity, then the waiting
    // count, give way.
    let widths = fit_columns(
        &[
            (Constraint::Fill(1), 12, 0),
            (Constraint::Length(11), 11, 0),
            (Constraint::Length(7), 7, 2),
            (Constraint::Length(9), 9, 3),
            (
                Constraint::Length(if area.width >= 110 { 32 } else { 0 }),
                0,
                0,
            ),
        ],
        // Borders, padding and the selection marker.
        area.width.saturating_sub(6),
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let selected = (!view.visible().is_empty()).then_some(view.nav.selected());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
