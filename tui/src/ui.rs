//! Drawing: `render` lays out the screen from `&App` and hands each region to its own small
//! function, one file per screen or panel. Nothing here changes state; styles come from
//! [`theme::Theme`], row contents from [`crate::view`].

mod admin;
mod attention;
mod clone;
mod diff;
mod folders;
mod help;
mod hosts;
mod model_picker;
pub mod notify;
mod palette;
mod panel;
mod ports;
mod question;
mod session;
mod sessions;
mod status_bar;
mod templates;
pub mod theme;
mod workspace_detail;
mod workspaces;

#[cfg(test)]
mod tests;

use crate::app::list::ListNav;
use crate::app::{App, Screen};
use crate::view::text::Row;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Padding, Paragraph, Wrap};
use theme::Theme;

/// Draws the whole screen.
pub fn render(frame: &mut Frame<'_>, app: &App, theme: Theme) {
    let area = frame.area();
    let [main, problem, notice, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(status_bar::problem_height(app, area.width)),
        Constraint::Length(u16::from(app.notice().is_some())),
        Constraint::Length(1),
    ])
    .areas(area);
    if app.attention_open() {
        attention::render(frame, main, app, theme);
    } else {
        match app.screen() {
            Screen::Hosts => hosts::render(frame, main, app, theme),
            Screen::Workspaces => workspaces::render(frame, main, app, theme),
            Screen::Sessions => sessions::render(frame, main, app, theme),
            Screen::Session => session::render(frame, main, app, theme),
            Screen::Diff => diff::render(frame, main, app, theme),
            Screen::Admin => admin::render(frame, main, app, theme),
        }
    }
    status_bar::render_problem(frame, problem, app, theme);
    status_bar::render_notice(frame, notice, app, theme);
    status_bar::render(frame, status, app, theme);
    question::render(frame, main, app, theme);
    model_picker::render(frame, main, app, theme);
    clone::render(frame, main, app, theme);
    templates::render(frame, main, app, theme);
    folders::render(frame, main, app, theme);
    ports::render(frame, main, app, theme);
    palette::render(frame, main, app, theme);
    if app.help_visible() {
        help::render(frame, area, app, theme);
    }
}

/// A view row as a styled line.
fn line(row: &Row, theme: Theme) -> Line<'static> {
    let spans: Vec<Span<'static>> = row
        .spans
        .iter()
        .map(|s| Span::styled(s.text.clone(), theme.look(s.look)))
        .collect();
    let line = Line::from(spans);
    if row.highlight {
        line.style(theme.selected())
    } else {
        line
    }
}

/// The panel frame every screen uses: a titled border with a breadcrumb.
fn panel(crumbs: &[&str], theme: Theme) -> Block<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (i, c) in crumbs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" › ", theme.muted()));
        }
        let style = if i + 1 == crumbs.len() {
            theme.title()
        } else {
            theme.header()
        };
        spans.push(Span::styled((*c).to_owned(), style));
    }
    spans.push(Span::raw(" "));
    Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.border())
        .title(Line::from(spans))
}

/// Key hints for a panel's bottom border: `[("Enter", "open"), …]`.
fn hints(pairs: &[(&str, &str)], theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    for (i, (key, what)) in pairs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.muted()));
        }
        spans.push(Span::styled((*key).to_owned(), theme.key()));
        spans.push(Span::styled(format!(" {what}"), theme.muted()));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}

/// The filter, shown in a list's bottom border while typed or set.
fn filter_line(nav: &ListNav, theme: Theme) -> Option<Line<'static>> {
    if !nav.typing() && nav.filter().is_empty() {
        return None;
    }
    let cursor = if nav.typing() { "▏" } else { "" };
    Some(Line::from(vec![
        Span::styled(" / ", theme.key()),
        Span::raw(format!("{}{cursor} ", nav.filter())),
    ]))
}

/// A centred message inside `block` (loading, empty, failed).
fn placeholder(frame: &mut Frame<'_>, area: Rect, block: Block<'_>, lines: Vec<Line<'_>>) {
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Rows the lines take once wrapped (a long hint wraps on narrow terminals).
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            let spans = [crate::view::text::Span::plain(text)];
            crate::view::text::wrap(&spans, usize::from(inner.width), 0, false).len()
        })
        .sum();
    let height = u16::try_from(rows).unwrap_or(u16::MAX);
    let centered = inner.centered_vertically(Constraint::Length(height));
    frame.render_widget(
        Paragraph::new(lines).centered().wrap(Wrap { trim: true }),
        centered,
    );
}
