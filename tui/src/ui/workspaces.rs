//! The workspaces panel: one row per workspace of the open host with its root, OpenCode state
//! and version, and the last OpenCode error.

use crate::app::App;
use crate::ui::sessions::OFFLINE;
use crate::ui::theme::Theme;
use crate::ui::{filter_line, fit, fit_columns, hints, panel, placeholder};
use crate::ui::{templates, workspace_detail};
use crate::view::text::count;
use proto::ops::{OpencodeState, WorkspaceInfo};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};

/// From this many columns the selected workspace's details sit beside the table.
const WIDE: u16 = 110;

/// The marker, word and style of an OpenCode state.
pub(super) fn opencode_state(state: OpencodeState, theme: Theme) -> (&'static str, Style) {
    match state {
        OpencodeState::Ready => ("● ready", theme.ok()),
        OpencodeState::Starting => ("◌ starting", theme.warn()),
        OpencodeState::Stopping => ("◌ stopping", theme.warn()),
        OpencodeState::Backoff => ("↻ restarting", theme.warn()),
        OpencodeState::Failed => ("✗ failed", theme.error()),
        OpencodeState::Stopped => ("○ stopped", theme.muted()),
    }
}

/// Draws the panel into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(view) = app.workspaces() else {
        return;
    };
    let host = view.host.as_str();
    let count = view
        .list()
        .map(|l| format!(" {} ", count(l.len(), "workspace")))
        .unwrap_or_default();
    let offline = app.open_host_offline().is_some();
    // The table's own width: the selected workspace's details sit beside it when wide.
    let table_width = if area.width >= WIDE {
        area.width.saturating_sub(workspace_detail::SIDE_WIDTH)
    } else {
        area.width
    };
    // A filter being typed is shown whole; key hints are fitted to the width.
    let bottom = filter_line(&view.nav, theme).unwrap_or_else(|| {
        fit(
            if offline {
                // Start and stop need the agent: not offered while it is gone.
                let mut line = hints(&[("Enter", "sessions"), ("Esc", "hosts")], theme);
                line.push_span(Span::styled("· start/stop: host offline ", theme.muted()));
                line
            } else {
                hints(
                    &[
                        ("Enter", "sessions"),
                        ("s", "start"),
                        ("S", "stop"),
                        ("c", "clone"),
                        ("t", "templates"),
                        ("f", "folders"),
                        ("p", "ports"),
                        ("Esc", "hosts"),
                    ],
                    theme,
                )
            },
            table_width,
        )
    });
    let mut top = Line::from(count).right_aligned();
    if offline {
        top.push_span(Span::styled(format!(" {OFFLINE} "), theme.error()));
    }
    let block = panel(&[host, "workspaces"], theme)
        .title_top(top)
        .title_bottom(bottom);
    let Some(list) = view.list() else {
        let text = match &view.error {
            Some(e) => Line::styled(format!("cannot list workspaces: {e}"), theme.error()),
            None => Line::styled("asking the host for its workspaces…", theme.muted()),
        };
        placeholder(frame, area, block, vec![text]);
        return;
    };
    if list.is_empty() {
        let lines = vec![
            Line::from("no workspaces on this host"),
            Line::styled(
                "add a [[workspace]] to the agent's config on the host",
                theme.muted(),
            ),
        ];
        placeholder(frame, area, block, lines);
        return;
    }
    let header =
        Row::new(["WORKSPACE", "ROOT", "OPENCODE", "VERSION", "NOTE"]).style(theme.header());
    let templates = app.template_cache().ready();
    let rows = view.visible().into_iter().map(|w| row(w, templates, theme));
    // On a narrow terminal the note, the version and the root column give way.
    let name = name_width(list);
    let widths = fit_columns(
        &[
            (Constraint::Length(name), name.min(12), 0),
            (Constraint::Length(8), 8, 2),
            (Constraint::Length(13), 10, 0),
            (Constraint::Length(9), 9, 3),
            (Constraint::Fill(1), 10, 4),
        ],
        // Borders, padding and the selection marker.
        table_width.saturating_sub(6),
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let selected = (!view.visible().is_empty()).then_some(view.nav.selected());
    let mut state = TableState::default().with_selected(selected);
    // The selected workspace's folders and git status: beside the table when wide enough,
    // under it when tall enough, else not at all.
    let (table_area, detail_area) = if area.width >= WIDE {
        let [t, d] = Layout::horizontal([
            Constraint::Fill(1),
            Constraint::Length(workspace_detail::SIDE_WIDTH),
        ])
        .areas(area);
        (t, Some(d))
    } else if area.height >= 16 {
        let [t, d] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(workspace_detail::BOTTOM_HEIGHT),
        ])
        .areas(area);
        (t, Some(d))
    } else {
        (area, None)
    };
    frame.render_stateful_widget(table, table_area, &mut state);
    if let (Some(d), Some(w)) = (detail_area, view.selected()) {
        workspace_detail::render(frame, d, w, view.detail(&w.name), templates, theme);
    }
}

fn name_width(list: &[WorkspaceInfo]) -> u16 {
    let longest = list
        .iter()
        .map(|w| w.name.chars().count())
        .max()
        .unwrap_or(0);
    u16::try_from(longest.clamp(9, 28)).unwrap_or(28)
}

/// Whether the sandbox line is worth the row: the kernel does not hold OpenCode, or its
/// detail reports a limit that was reached (e.g. "memory limit 2 GiB reached").
fn sandbox_is_news(sb: &proto::ops::SandboxInfo) -> bool {
    let detail = sb.detail.to_lowercase();
    sb.state != "enforced" || (detail.contains("limit") && detail.contains("reached"))
}

fn row(
    w: &WorkspaceInfo,
    templates: Option<&[proto::template::TemplateSummary]>,
    theme: Theme,
) -> Row<'static> {
    let (state, style) = opencode_state(w.opencode.state, theme);
    let root = if w.available {
        Span::styled("ok", theme.ok())
    } else {
        Span::styled("missing", theme.error())
    };
    let mut note = w.opencode.last_error.clone().unwrap_or_default();
    // A workspace whose OpenCode the kernel does not hold, or whose OpenCode hit a limit,
    // says so first (enforced without news is quiet).
    if let Some(sb) = w.sandbox.as_ref().filter(|s| sandbox_is_news(s)) {
        note = format!("⚠ sandbox {}: {} {note}", sb.state, sb.detail);
    }
    if note.is_empty() && w.opencode.restarts > 0 {
        note = count(
            usize::try_from(w.opencode.restarts).unwrap_or(usize::MAX),
            "restart",
        );
    }
    // The template it runs: first when out of date, else when there is nothing else to say.
    let mut note_style = theme.muted();
    match templates::template_note(w.template.as_ref(), templates) {
        Some((t, true)) => {
            note = format!("⚠ {t} {note}");
            note_style = theme.warn();
        }
        Some((t, false)) if note.is_empty() => note = format!("template {t}"),
        _ => {}
    }
    Row::new([
        Cell::from(crate::view::text::sanitize(&w.name)),
        Cell::from(root),
        Cell::from(Span::styled(state, style)),
        Cell::from(
            w.opencode
                .version
                .as_deref()
                .map_or_else(|| "-".into(), crate::view::text::sanitize),
        ),
        Cell::from(Span::styled(
            crate::view::text::sanitize(note.lines().next().unwrap_or_default()),
            note_style,
        )),
    ])
}
