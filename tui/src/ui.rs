//! Drawing: `render` lays out the screen from `&App` and hands each region to its own small
//! function, one file per screen or panel. Nothing here changes state; styles come from
//! [`theme::Theme`], row contents from [`crate::view`].

mod admin;
mod admin_certs;
mod attention;
mod clone;
mod diff;
mod folders;
mod help;
mod hosts;
mod model_picker;
mod notify;
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

/// Below this many columns (a phone's terminal) screens stack what they put side by side.
pub(crate) const NARROW: u16 = 60;

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
    notify::render(frame, main, app, theme);
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

/// `line` (a [`hints`] line) made to fit a border `width` cells wide: whole hints are dropped
/// from the end, and `? keys` says where the rest are, instead of a hint cut in the middle.
fn fit(line: Line<'static>, width: u16) -> Line<'static> {
    // Inside the two corners; the hints' trailing blank may be the one cut.
    let room = usize::from(width.saturating_sub(2));
    if line.width() <= room + 1 {
        return line;
    }
    let style = line.style;
    let alignment = line.alignment;
    let spans = line.spans;
    // `hints` lays out: " ", then per hint [" · "] key " what", then " ".
    let key_style = spans.get(1).map(|s| s.style).unwrap_or_default();
    let muted = spans.get(2).map(|s| s.style).unwrap_or_default();
    let more = [
        Span::styled(" · ", muted),
        Span::styled("?", key_style),
        Span::styled(" keys ", muted),
    ];
    let more_width: usize = more.iter().map(Span::width).sum();
    let mut kept: Vec<Span<'static>> = Vec::new();
    let mut used = 1;
    let mut i = 1;
    while i + 1 < spans.len() {
        let separator = i > 1;
        let take = if separator { 3 } else { 2 };
        let group = &spans[i..(i + take).min(spans.len())];
        let w: usize = group.iter().map(Span::width).sum();
        if used + w + more_width > room {
            break;
        }
        kept.extend(group.iter().cloned());
        used += w;
        i += take;
    }
    let mut out = vec![Span::raw(" ")];
    if kept.is_empty() {
        out.extend([Span::styled("?", key_style), Span::styled(" keys ", muted)]);
    } else {
        out.extend(kept);
        out.extend(more);
    }
    let mut fitted = Line::from(out).style(style);
    fitted.alignment = alignment;
    fitted
}

/// Key hints packed into as many lines of `width` cells as they need (a request's keys on a
/// narrow terminal: every answer stays visible).
fn hint_lines(pairs: &[(&str, &str)], width: u16, theme: Theme) -> Vec<Line<'static>> {
    let room = usize::from(width).max(1);
    let mut lines = Vec::new();
    let mut current: Vec<(&str, &str)> = Vec::new();
    for pair in pairs {
        current.push(*pair);
        if current.len() > 1 && hints(&current, theme).width() > room {
            current.pop();
            lines.push(hints(&current, theme));
            current = vec![*pair];
        }
    }
    if !current.is_empty() {
        lines.push(hints(&current, theme));
    }
    lines
}

/// Table column widths for `room` cells: each column is `(width, least width, drop order)`;
/// while the least widths and the gaps do not fit, the column with the highest drop order is
/// hidden (order 0 never is). Hidden columns become `Length(0)`, so rows keep their cells.
/// Where everything fits at full width nothing changes.
fn fit_columns(columns: &[(Constraint, u16, u8)], room: u16) -> Vec<Constraint> {
    let mut shown = vec![true; columns.len()];
    let gaps = u16::try_from(columns.len().saturating_sub(1)).unwrap_or(u16::MAX);
    loop {
        let needed = columns
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|((_, least, _), _)| *least)
            .fold(gaps, u16::saturating_add);
        if needed <= room {
            break;
        }
        let drop = (0..columns.len())
            .filter(|&i| shown[i] && columns[i].2 > 0)
            .max_by_key(|&i| columns[i].2);
        match drop {
            Some(i) => shown[i] = false,
            None => break,
        }
    }
    // When the full widths do not fit either, the columns shown take their least widths and
    // leave the rest to the filling ones.
    let full = columns
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|((width, least, _), _)| match width {
            Constraint::Length(n) => *n,
            _ => *least,
        })
        .fold(gaps, u16::saturating_add);
    let tight = full > room;
    columns
        .iter()
        .zip(shown)
        .map(|((width, least, _), s)| match (s, width) {
            (false, _) => Constraint::Length(0),
            (true, Constraint::Length(_)) if tight => Constraint::Length(*least),
            (true, width) => *width,
        })
        .collect()
}
