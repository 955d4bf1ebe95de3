//! The hosts panel: one row per host with state, heartbeat age and last reported status;
//! offline hosts dimmed; an enrollment hint when there are none.

use crate::app::{App, ConnState};
use crate::connect;
use crate::e2e_channels::HostMode;
use crate::ui::theme::Theme;
use crate::ui::{filter_line, fit, fit_columns, hints};
use proto::message::HostInfo;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, HighlightSpacing, Padding, Paragraph, Row, Table, TableState, Wrap,
};

/// Host column width bounds: at least the header, at most what leaves the OS column room.
const HOST_WIDTH: (usize, usize) = (8, 32);

/// Column widths: the host column fits the longest name (within [`HOST_WIDTH`]), the OS takes
/// the free space, the rest fit their typical longest value ("○ offline", "59m ago", "99.99",
/// "15.6/31.3 GiB", "999").
/// On a narrow terminal the OS, memory, load and workspace count give way, in that order.
fn widths(app: &App, room: u16) -> Vec<Constraint> {
    let longest = app
        .hosts()
        .iter()
        .map(|h| h.host.as_str().chars().count())
        .max()
        .unwrap_or(0);
    // Room for the verified / relay-trusted marker, once a host has one.
    let marked = app.hosts().iter().any(|h| app.mode_of(&h.host).is_some());
    let host = (longest + if marked { 2 } else { 0 }).clamp(HOST_WIDTH.0, HOST_WIDTH.1);
    let host = u16::try_from(host).unwrap_or(u16::MAX);
    fit_columns(
        &[
            (Constraint::Length(host), host, 0),
            (Constraint::Length(9), 9, 0),
            (Constraint::Length(9), 9, 1),
            (Constraint::Fill(1), 12, 5),
            (Constraint::Length(5), 5, 3),
            (Constraint::Length(13), 13, 4),
            (Constraint::Length(3), 3, 2),
        ],
        room,
    )
}

/// Draws the panel into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    // Without a live connection the list is what the relay said last, not the truth now.
    let stale = if matches!(app.conn(), ConnState::Connected { .. }) {
        ""
    } else {
        " (last known)"
    };
    let counts = if app.hosts_loaded() {
        format!(
            " {} of {} online{stale} ",
            app.online_count(),
            app.hosts().len()
        )
    } else {
        String::new()
    };
    // A filter being typed is shown whole; key hints are fitted to the width.
    let bottom = filter_line(app.host_nav(), theme).unwrap_or_else(|| {
        fit(
            // Administration is offered to admins and owners only.
            if app
                .admin_role()
                .is_some_and(|r| r >= proto::rbac::Role::Admin)
            {
                hints(
                    &[("Enter", "workspaces"), ("/", "filter"), ("m", "admin")],
                    theme,
                )
            } else {
                hints(&[("Enter", "workspaces"), ("/", "filter")], theme)
            },
            area.width,
        )
    });
    let block = Block::bordered()
        .padding(Padding::right(1))
        .border_style(theme.border())
        .title(Span::styled(" hosts ", theme.title()))
        .title_top(Line::from(counts).right_aligned())
        .title_bottom(bottom);
    if !app.hosts_loaded() || app.hosts().is_empty() {
        render_placeholder(frame, area, block, app, theme);
        return;
    }
    let relay_now = app.relay_now_ms();
    let rows = app
        .visible_hosts()
        .into_iter()
        .map(|h| host_row(h, app.mode_of(&h.host), relay_now, theme));
    let header = Row::new([
        Cell::from("HOST"),
        Cell::from("STATE"),
        Cell::from("HEARTBEAT"),
        Cell::from("OS"),
        Cell::from(Line::from("LOAD").right_aligned()),
        Cell::from(Line::from("MEMORY").right_aligned()),
        Cell::from(Line::from("WS").right_aligned()),
    ])
    .style(theme.header());
    // Borders, the right padding and the selection marker.
    let table = Table::new(rows, widths(app, area.width.saturating_sub(5)))
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(app.selected());
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_placeholder(
    frame: &mut Frame<'_>,
    area: Rect,
    block: Block<'_>,
    app: &App,
    theme: Theme,
) {
    let lines = if app.hosts_loaded() {
        vec![
            Line::from("no hosts yet"),
            Line::from(""),
            Line::from(vec![
                Span::raw("enroll a host with "),
                Span::styled("`cm-relay host add NAME`", theme.key()),
            ]),
            Line::styled(
                "on the relay, then run `cm-agent enroll` on the host",
                theme.muted(),
            ),
        ]
    } else if matches!(app.conn(), ConnState::Offline { .. }) {
        vec![Line::styled("no host list: not connected", theme.muted())]
    } else {
        vec![Line::styled("waiting for the host list…", theme.muted())]
    };
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let centered = inner.centered_vertically(Constraint::Length(height));
    frame.render_widget(
        Paragraph::new(lines).centered().wrap(Wrap { trim: true }),
        centered,
    );
}

/// The host's name with its marker: `✓` verified end to end, `!` relay-trusted (the status
/// bar says it in words for the current host).
fn host_cell(h: &HostInfo, mode: Option<HostMode>, theme: Theme) -> Line<'static> {
    let name = Span::raw(h.host.as_str().to_owned());
    match mode {
        Some(HostMode::Verified) => Line::from(vec![name, Span::styled(" ✓", theme.ok())]),
        Some(HostMode::RelayTrusted) => Line::from(vec![name, Span::styled(" !", theme.warn())]),
        None => Line::from(name),
    }
}

fn host_row(h: &HostInfo, mode: Option<HostMode>, relay_now_ms: u64, theme: Theme) -> Row<'static> {
    let state = if h.online {
        Span::styled("● online", theme.online())
    } else {
        Span::styled("○ offline", theme.offline())
    };
    let (os, load, memory, workspaces) = match &h.status {
        Some(s) => (
            s.os.clone(),
            format!("{:.2}", s.load[0]),
            memory(s.mem_total_kib, s.mem_available_kib),
            s.workspaces.len().to_string(),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let row = Row::new([
        Cell::from(host_cell(h, mode, theme)),
        Cell::from(state),
        Cell::from(connect::ago(relay_now_ms, h.last_heartbeat_ms)),
        Cell::from(os),
        Cell::from(Line::from(load).right_aligned()),
        Cell::from(Line::from(memory).right_aligned()),
        Cell::from(Line::from(workspaces).right_aligned()),
    ]);
    if h.online {
        row
    } else {
        row.style(theme.offline_row())
    }
}

/// "used/total GiB", or "-" when unknown.
fn memory(total_kib: u64, available_kib: u64) -> String {
    if total_kib == 0 {
        return "-".into();
    }
    let gib = |kib: u64| kib as f64 / 1_048_576.0;
    format!(
        "{:.1}/{:.1} GiB",
        gib(total_kib.saturating_sub(available_kib)),
        gib(total_kib)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_used_over_total() {
        assert_eq!(memory(16 * 1_048_576, 10 * 1_048_576), "6.0/16.0 GiB");
        assert_eq!(memory(0, 0), "-");
    }
}
