//! The administration screen's certificates tab: who holds which certificate (user or host,
//! key fingerprint, host or `*`, role, valid until, the signer's fingerprint; `✓` when it
//! chains to this laptop's roots, `✗` when not), and below it the
//! device keys that wait for approval with the command that certifies them. Fingerprints are
//! never cut: they are what people compare out of band. On a narrow terminal a certificate
//! takes three lines (four when expired) instead of two.

use crate::app::admin::AdminView;
use crate::app::admin::certs::{CertRow, Certificates, PendingRow};
use crate::app::workspace_detail::Loadable;
use crate::connect;
use crate::ui::theme::Theme;
use crate::ui::{NARROW, panel, placeholder};
use crate::view::text::sanitize;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, HighlightSpacing, Row, Table, TableState};

/// Columns of `by ` and a fingerprint.
const KEY_COLUMN: u16 = 30;

/// The date part of `ms` (UTC).
fn date(ms: u64) -> String {
    cm_client::time::utc(ms).chars().take(10).collect()
}

fn lines(parts: Vec<String>, style: Style) -> Text<'static> {
    Text::from(
        parts
            .into_iter()
            .map(|p| Line::styled(p, style))
            .collect::<Vec<_>>(),
    )
}

/// Draws the tab into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, view: &AdminView, now: u64, theme: Theme) {
    let block = panel(&["relay", "certificates"], theme);
    let certs = match &view.certs {
        Loadable::Loading => {
            let line = Line::styled("reading the certificates…", theme.muted());
            return placeholder(frame, area, block, vec![line]);
        }
        Loadable::Failed(e) => {
            let line = Line::styled(e.to_string(), theme.error());
            return placeholder(frame, area, block, vec![line]);
        }
        Loadable::Ready(c) => c,
    };
    let narrow = area.width < NARROW;
    let pending_rows = u16::try_from(certs.pending.len().max(1)).unwrap_or(u16::MAX);
    let per_pending = if narrow { 2 } else { 1 };
    // Borders, the header and the rows; at most half the tab.
    let pending_height = (3 + pending_rows.saturating_mul(per_pending)).min(area.height / 2);
    let [top, bottom] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(pending_height)]).areas(area);
    render_certs(frame, top, view, certs, now, narrow, theme);
    render_pending(frame, bottom, &certs.pending, now, narrow, theme);
}

/// The holder, marked `✓` when the certificate chains to this laptop's roots, `✗` when not.
fn holder(r: &CertRow, theme: Theme) -> Line<'static> {
    let mark = match r.vouched {
        Some(true) => Span::styled("✓ ", theme.ok()),
        Some(false) => Span::styled("✗ ", theme.error()),
        None => Span::raw(""),
    };
    Line::from(vec![mark, Span::raw(sanitize(&r.holder))])
}

/// What the marks mean (or that nothing was checked), for the table's title.
fn legend(certs: &Certificates, narrow: bool, theme: Theme) -> Line<'static> {
    let text = match (certs.checked, narrow) {
        (true, false) => " ✓ chains to your roots · ✗ does not ",
        (true, true) => " ✓ your roots ",
        (false, false) => " not checked: this laptop pins no root ",
        (false, true) => " not checked ",
    };
    Line::styled(text, theme.muted()).right_aligned()
}

fn cert_row(r: &CertRow, now: u64, narrow: bool, theme: Theme) -> Row<'static> {
    // The date, and under it a word when it has passed.
    let mut until = vec![Line::raw(date(r.not_after_ms))];
    if r.not_after_ms <= now {
        until.push(Line::styled("expired", theme.error()));
    }
    let keys = lines(
        vec![r.key.clone(), format!("by {}", r.signer)],
        Style::new(),
    );
    let holder = holder(r, theme);
    if narrow {
        let mut who = vec![
            holder,
            Line::raw(format!("{}@{}", r.what(), sanitize(&r.host))),
        ];
        who.extend(until);
        let height = u16::try_from(who.len()).unwrap_or(3);
        return Row::new([Cell::from(Text::from(who)), Cell::from(keys)]).height(height);
    }
    Row::new([
        Cell::from(holder),
        Cell::from(r.what()),
        Cell::from(sanitize(&r.host)),
        Cell::from(Text::from(until)),
        Cell::from(keys),
    ])
    .height(2)
}

fn render_certs(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &AdminView,
    certs: &Certificates,
    now: u64,
    narrow: bool,
    theme: Theme,
) {
    let mut block =
        panel(&["relay", "certificates"], theme).title_top(legend(certs, narrow, theme));
    if certs.unreadable > 0 {
        block = block.title_top(
            Line::styled(
                format!(" {} did not verify: not shown ", certs.unreadable),
                theme.error(),
            )
            .right_aligned(),
        );
    }
    if certs.certs.is_empty() {
        let lines = vec![
            Line::styled("no certificates at the relay", theme.muted()),
            Line::styled(
                "an owner makes the first: cm-tui admin trust init",
                theme.muted(),
            ),
        ];
        return placeholder(frame, area, block, lines);
    }
    let rows = certs.certs.iter().map(|r| cert_row(r, now, narrow, theme));
    let (header, widths) = if narrow {
        (
            vec!["HOLDER", "KEY / SIGNED BY"],
            vec![Constraint::Fill(1), Constraint::Length(KEY_COLUMN)],
        )
    } else {
        (
            vec!["HOLDER", "ROLE", "HOST", "NOT AFTER", "KEY / SIGNED BY"],
            vec![
                Constraint::Fill(1),
                Constraint::Length(9),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(KEY_COLUMN),
            ],
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block)
        .row_highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = TableState::default().with_selected(Some(view.selected()));
    frame.render_stateful_widget(table, area, &mut state);
}

fn pending_row(p: &PendingRow, now: u64, narrow: bool, theme: Theme) -> Row<'static> {
    let seen = format!("seen {}", connect::ago(now, Some(p.seen_ms)));
    let label = sanitize(p.label.as_deref().unwrap_or(""));
    if narrow {
        return Row::new([
            Cell::from(lines(vec![sanitize(&p.user), seen], Style::new())),
            Cell::from(Text::from(vec![
                Line::raw(p.key.clone()),
                Line::styled(label, theme.muted()),
            ])),
        ])
        .height(2);
    }
    Row::new([
        Cell::from(sanitize(&p.user)),
        Cell::from(p.key.clone()),
        Cell::from(seen),
        Cell::from(Line::styled(label, theme.muted())),
    ])
}

fn render_pending(
    frame: &mut Frame<'_>,
    area: Rect,
    pending: &[PendingRow],
    now: u64,
    narrow: bool,
    theme: Theme,
) {
    let block = panel(&["device keys awaiting approval"], theme).title_bottom(Line::styled(
        " certify: cm-tui admin user certify NAME ",
        theme.key(),
    ));
    if pending.is_empty() {
        let line = Line::styled("none waits", theme.muted());
        return placeholder(frame, area, block, vec![line]);
    }
    let (header, widths) = if narrow {
        (
            vec!["USER", "DEVICE KEY"],
            vec![Constraint::Fill(1), Constraint::Length(KEY_COLUMN)],
        )
    } else {
        (
            vec!["USER", "DEVICE KEY", "SEEN", "LABEL"],
            vec![
                Constraint::Length(12),
                Constraint::Length(28),
                Constraint::Length(13),
                Constraint::Fill(1),
            ],
        )
    };
    let rows = pending.iter().map(|p| pending_row(p, now, narrow, theme));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(theme.header()))
        .block(block);
    frame.render_widget(table, area);
}
