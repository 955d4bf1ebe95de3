//! The administration screen: a tab line (users, hosts, credentials, audit, certificates —
//! the last drawn by `admin_certs`), the tab's table with the selected row, the actions with
//! those the role lacks greyed out and the reason, the input line while typing, and the last
//! change's outcome (an invite or token, shown once).

use crate::app::App;
use crate::app::admin::{AdminTab, AdminView};
use crate::app::workspace_detail::Loadable;
use crate::connect;
use crate::ui::theme::Theme;
use crate::ui::{fit_columns, panel, placeholder};
use crate::view::text::sanitize;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

/// Draws the screen into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(view) = app.admin() else {
        return;
    };
    let result_rows = match &view.result {
        Some(r) => {
            let summary =
                u16::try_from(r.summary.chars().count() / usize::from(area.width.max(8) - 4) + 1)
                    .unwrap_or(1)
                    .min(3);
            // The secret and the hint to copy it: a line each (the hint wraps when narrow).
            let hint = if area.width < crate::ui::NARROW { 3 } else { 2 };
            summary + if r.secret.is_some() { hint } else { 0 }
        }
        None => 0,
    };
    let action_lines = action_lines(app, theme);
    let input_line = view.input.as_ref().map(|i| {
        Line::from(vec![
            Span::styled(format!(" {}: ", i.prompt), theme.key()),
            Span::raw(format!("{}▏", i.text)),
        ])
    });
    // On a narrow terminal the actions and the input wrap rather than run off the edge.
    let input_rows = input_line.as_ref().map_or(0, |l| {
        wrapped_rows(std::slice::from_ref(l), area.width).max(2)
    });
    let [tabs, table, actions, input, result] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(wrapped_rows(&action_lines, area.width)),
        Constraint::Length(input_rows),
        Constraint::Length(result_rows),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(tab_line(view, area.width, theme)), tabs);
    if view.tab == AdminTab::Certs {
        super::admin_certs::render(frame, table, view, app.now_ms(), theme);
    } else {
        render_table(frame, table, app, view, theme);
    }
    frame.render_widget(
        Paragraph::new(action_lines).wrap(Wrap { trim: false }),
        actions,
    );
    if let Some(line) = input_line {
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), input);
    }
    if let Some(r) = &view.result {
        let hint = if area.width < crate::ui::NARROW { 3 } else { 2 };
        let secret_rows = if r.secret.is_some() { hint } else { 0 };
        let [summary, secret] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(secret_rows)]).areas(result);
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!(" {}", sanitize(&r.summary)),
                theme.ok(),
            ))
            .wrap(Wrap { trim: true }),
            summary,
        );
        if let Some(s) = &r.secret {
            // On a line of its own and never wrapped: a terminal selection gets it whole,
            // with no indent and no line break inside.
            let [token, hint] =
                Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(secret);
            frame.render_widget(Paragraph::new(Line::raw(sanitize(s))), token);
            frame.render_widget(
                Paragraph::new(Line::styled(
                    " c copy to the clipboard · it is not shown again after Esc",
                    theme.muted(),
                ))
                .wrap(Wrap { trim: false }),
                hint,
            );
        }
    }
}

/// Rows `lines` take word-wrapped at `width`.
fn wrapped_rows(lines: &[Line<'_>], width: u16) -> u16 {
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            let spans = [crate::view::text::Span::plain(text)];
            crate::view::text::wrap(&spans, usize::from(width), 0, false).len()
        })
        .sum();
    u16::try_from(rows).unwrap_or(u16::MAX)
}

fn tab_line(view: &AdminView, width: u16, theme: Theme) -> Line<'static> {
    let mut spans = vec![Span::styled(" admin ", theme.title())];
    if width < crate::ui::NARROW {
        // Only the tab shown, and where it is among them.
        let at = AdminTab::ALL
            .iter()
            .position(|t| *t == view.tab)
            .unwrap_or(0);
        spans.push(Span::styled(
            format!(" {} ", view.tab.title()),
            theme.selected(),
        ));
        spans.push(Span::styled(
            format!("  {} of {} · ←→ tabs", at + 1, AdminTab::ALL.len()),
            theme.muted(),
        ));
        return Line::from(spans);
    }
    for tab in AdminTab::ALL {
        let style = if tab == view.tab {
            theme.selected()
        } else {
            theme.muted()
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!(" {} ", tab.title()), style));
    }
    // The whole hint where it fits, else the part that says how to reach the other tabs.
    let used: usize = spans.iter().map(Span::width).sum();
    let hint = if used + 31 <= usize::from(width) {
        "  ←→ tabs · r reload · Esc back"
    } else {
        "  ←→ tabs"
    };
    spans.push(Span::styled(hint, theme.muted()));
    Line::from(spans)
}

fn action_lines(app: &App, theme: Theme) -> Vec<Line<'static>> {
    let keymap = app.keymap();
    let mut spans = vec![Span::raw(" ")];
    let mut reasons = Vec::new();
    for a in app.admin_actions() {
        let key = keymap.keys_of(crate::keymap::Context::Admin, a.action);
        let style = if a.disabled.is_some() {
            theme.muted()
        } else {
            theme.key()
        };
        spans.push(Span::styled(key, style));
        let label = if a.disabled.is_some() {
            format!(" {} ✗", a.label)
        } else {
            format!(" {}", a.label)
        };
        spans.push(Span::styled(label, theme.muted()));
        if let Some(why) = a.disabled
            && !reasons.contains(&why)
        {
            reasons.push(why);
        }
        spans.push(Span::styled(" · ", theme.muted()));
    }
    spans.push(Span::styled(
        keymap.keys_of(
            crate::keymap::Context::Admin,
            crate::action::Action::KillAll,
        ),
        theme.error(),
    ));
    spans.push(Span::styled(" kill all", theme.muted()));
    let mut lines = vec![Line::from(spans)];
    if !reasons.is_empty() {
        lines.push(Line::styled(
            format!(" ✗ not for your role: {}", reasons.join("; ")),
            theme.muted(),
        ));
    }
    lines
}

fn state<T>(l: &Loadable<Vec<T>>, what: &str, theme: Theme) -> Result<(), Line<'static>> {
    match l {
        Loadable::Loading => Err(Line::styled(format!("reading the {what}…"), theme.muted())),
        Loadable::Failed(e) => Err(Line::styled(e.to_string(), theme.error())),
        Loadable::Ready(v) if v.is_empty() => {
            Err(Line::styled(format!("no {what}"), theme.muted()))
        }
        Loadable::Ready(_) => Ok(()),
    }
}

fn render_table(frame: &mut Frame<'_>, area: Rect, app: &App, view: &AdminView, theme: Theme) {
    let block = panel(&["relay", view.tab.title()], theme);
    let now = app.now_ms();
    let ready = match view.tab {
        AdminTab::Users => state(&view.users, "users", theme),
        AdminTab::Hosts => state(&view.hosts, "hosts", theme),
        AdminTab::Creds => state(&view.creds, "credentials", theme),
        AdminTab::Audit => state(&view.audit, "audit rows", theme),
        // Drawn by `admin_certs`.
        AdminTab::Certs => return,
    };
    if let Err(line) = ready {
        placeholder(frame, area, block, vec![line]);
        return;
    }
    let muted = theme.muted();
    let plain = Style::new();
    // Borders, padding and the selection marker.
    let room = area.width.saturating_sub(6);
    let (header, widths, rows): (Vec<&str>, Vec<Constraint>, Vec<Row<'static>>) = match view.tab {
        AdminTab::Users => (
            vec!["USER", "PASSWORD", "GRANTS"],
            fit_columns(
                &[
                    (Constraint::Length(16), 10, 0),
                    (Constraint::Length(9), 9, 1),
                    (Constraint::Fill(1), 12, 0),
                ],
                room,
            ),
            match &view.users {
                Loadable::Ready(v) => v
                    .iter()
                    .map(|u| {
                        let grants: Vec<String> = u
                            .grants
                            .iter()
                            .map(|g| format!("{}@{}", g.role, sanitize(&g.host)))
                            .collect();
                        Row::new([
                            Cell::from(sanitize(&u.name)),
                            Cell::from(if u.has_password { "set" } else { "-" }),
                            Cell::from(grants.join(", ")),
                        ])
                    })
                    .collect(),
                _ => Vec::new(),
            },
        ),
        AdminTab::Hosts => (
            vec!["HOST", "STATE", "ENROLLED"],
            fit_columns(
                &[
                    (Constraint::Length(24), 12, 0),
                    (Constraint::Length(9), 9, 0),
                    (Constraint::Fill(1), 8, 1),
                ],
                room,
            ),
            match &view.hosts {
                Loadable::Ready(v) => v
                    .iter()
                    .map(|h| {
                        let (text, style) = if h.revoked {
                            ("revoked", theme.error())
                        } else {
                            ("active", theme.ok())
                        };
                        Row::new([
                            Cell::from(sanitize(&h.name)),
                            Cell::from(Span::styled(text, style)),
                            Cell::from(connect::ago(now, Some(h.created_ms))),
                        ])
                    })
                    .collect(),
                _ => Vec::new(),
            },
        ),
        AdminTab::Creds => (
            vec!["CREDENTIAL", "USER", "STATE", "EXPIRES", "LABEL"],
            fit_columns(
                &[
                    (Constraint::Length(18), 10, 0),
                    (Constraint::Length(12), 8, 0),
                    (Constraint::Length(8), 8, 0),
                    (Constraint::Length(12), 7, 1),
                    (Constraint::Fill(1), 6, 2),
                ],
                room,
            ),
            match &view.creds {
                Loadable::Ready(v) => v
                    .iter()
                    .map(|c| {
                        let (text, style) = if c.revoked {
                            ("revoked", theme.error())
                        } else if c.expires_ms <= now {
                            ("expired", muted)
                        } else {
                            ("valid", theme.ok())
                        };
                        let left = c.expires_ms.saturating_sub(now);
                        let expires = if left == 0 {
                            "-".to_owned()
                        } else if left >= 3_600_000 {
                            format!("in {}h", left / 3_600_000)
                        } else {
                            format!("in {}m", left / 60_000)
                        };
                        Row::new([
                            Cell::from(sanitize(&c.id)),
                            Cell::from(sanitize(&c.user)),
                            Cell::from(Span::styled(text, style)),
                            Cell::from(expires),
                            Cell::from(Span::styled(
                                sanitize(c.label.as_deref().unwrap_or_default()),
                                muted,
                            )),
                        ])
                    })
                    .collect(),
                _ => Vec::new(),
            },
        ),
        // Drawn by `admin_certs` (returned above).
        AdminTab::Certs => (Vec::new(), Vec::new(), Vec::new()),
        AdminTab::Audit => (
            vec!["#", "WHEN", "ACTOR", "OP", "HOST", "TARGET", "DECISION"],
            // On a narrow terminal: who did what and the decision first.
            fit_columns(
                &[
                    (Constraint::Length(6), 4, 5),
                    (Constraint::Length(9), 8, 3),
                    (Constraint::Length(10), 8, 0),
                    (Constraint::Length(13), 10, 0),
                    (Constraint::Length(10), 6, 4),
                    (Constraint::Fill(2), 8, 6),
                    (Constraint::Fill(3), 10, 0),
                ],
                room,
            ),
            match &view.audit {
                Loadable::Ready(v) => v
                    .iter()
                    .map(|r| {
                        let style = if r.decision == "allow" {
                            plain
                        } else {
                            theme.warn()
                        };
                        let decision = match &r.reason {
                            Some(why) => format!("{} ({})", r.decision, sanitize(why)),
                            None => r.decision.clone(),
                        };
                        Row::new([
                            Cell::from(r.id.to_string()),
                            Cell::from(connect::ago(now, Some(r.ts_ms))),
                            Cell::from(sanitize(&r.actor)),
                            Cell::from(sanitize(&r.op)),
                            Cell::from(sanitize(r.host.as_deref().unwrap_or("-"))),
                            Cell::from(sanitize(r.target.as_deref().unwrap_or("-"))),
                            Cell::from(Span::styled(sanitize(&decision), style)),
                        ])
                    })
                    .collect(),
                _ => Vec::new(),
            },
        ),
    };
    let mut block = block;
    if view.tab == AdminTab::Audit {
        let q = &view.audit_query;
        let mut filter = Vec::new();
        if let Some(u) = &q.user {
            filter.push(format!("user={}", sanitize(u)));
        }
        if let Some(h) = &q.host {
            filter.push(format!("host={}", sanitize(h)));
        }
        let text = if filter.is_empty() {
            " all rows · / filter ".to_owned()
        } else {
            format!(" {} · / filter ", filter.join(" "))
        };
        block = block.title_top(Line::styled(text, muted).right_aligned());
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(view.selected()));
    frame.render_stateful_widget(table, area, &mut state);
}
