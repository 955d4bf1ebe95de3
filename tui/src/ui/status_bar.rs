//! The bottom lines: relay connection state, ping RTT, who is logged in where and for how long;
//! above it, when the connection is down, the reason.

use crate::app::{App, ConnState};
use crate::e2e_channels::HostMode;
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use std::time::Duration;

/// Below this much login time left, the countdown turns red.
const LOGIN_WARN_MS: u64 = 15 * 60_000;

/// Draws the status line into `area` (one row).
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let offline_host = app.open_host_offline().filter(|_| app.is_connected());
    let (marker, style) = match (app.conn(), offline_host) {
        // The relay is up but the host the screens are about is not: that is what matters.
        (ConnState::Connected { .. }, Some(_)) => ("○", theme.warn()),
        (ConnState::Connected { .. }, None) => ("●", theme.ok()),
        (ConnState::Connecting | ConnState::Reconnecting { .. }, _) => ("◌", theme.warn()),
        (ConnState::Offline { .. }, _) => ("○", theme.error()),
    };
    let text = match offline_host {
        Some(host) => format!("host {host} offline — prompts will be queued"),
        None => app.connection_text(),
    };
    let head = vec![
        Span::raw(" "),
        Span::styled(marker, style),
        Span::raw(" "),
        Span::styled(text, style),
    ];
    // The rest, each with the order it gives way in on a narrow terminal (the waiting count
    // last: on a phone it is the point).
    let mut extras: Vec<(u8, Span<'static>)> = Vec::new();
    if let Some(transport) = app.transport() {
        extras.push((3, Span::styled(format!("  {transport}"), theme.muted())));
    }
    if let Some(rtt) = app.rtt() {
        extras.push((
            3,
            Span::styled(format!("  rtt {}", rtt_text(rtt)), theme.muted()),
        ));
    }
    match app.host_mode() {
        Some(HostMode::Verified) => extras.push((2, Span::styled("  ✓ verified", theme.ok()))),
        Some(HostMode::RelayTrusted) => {
            extras.push((2, Span::styled("  ! relay-trusted", theme.warn())));
        }
        None => {}
    }
    let waiting = app.attention().items().len();
    if waiting > 0 {
        extras.push((
            0,
            Span::styled(format!("  ⚑ {waiting} waiting"), theme.attention()),
        ));
    }
    if !app.bell() {
        extras.push((1, Span::styled("  bell off", theme.muted())));
    }
    let width_of = |extras: &[(u8, Span<'static>)]| -> usize {
        head.iter()
            .chain(extras.iter().map(|(_, s)| s))
            .map(Span::width)
            .sum()
    };
    while width_of(&extras) > usize::from(area.width) {
        let Some(drop) = extras
            .iter()
            .enumerate()
            .filter(|(_, (order, _))| *order > 0)
            .max_by_key(|(_, (order, _))| *order)
            .map(|(i, _)| i)
        else {
            break;
        };
        extras.remove(drop);
    }
    let left: Vec<Span<'static>> = head
        .into_iter()
        .chain(extras.into_iter().map(|(_, s)| s))
        .collect();
    let left_ms = app.login_left_ms();
    let login_style = if left_ms < LOGIN_WARN_MS {
        theme.error()
    } else {
        theme.muted()
    };
    let left = Line::from(left);
    // The right side drops its least useful parts first when the line is short.
    let account = match app.role() {
        Some(role) => Span::raw(format!("{} ({role})  ", app.account())),
        None => Span::raw(format!("{}  ", app.account())),
    };
    let login = Span::styled(format!("{}  ", login_text(left_ms)), login_style);
    let help = vec![
        Span::styled("?", theme.key()),
        Span::styled(" help ", theme.muted()),
    ];
    let candidates = [
        [vec![account.clone(), login.clone()], help.clone()].concat(),
        vec![account, login.clone()],
        vec![login],
    ];
    let room = usize::from(area.width).saturating_sub(left.width() + 2);
    let right = candidates
        .into_iter()
        .map(Line::from)
        .find(|line| line.width() <= room)
        .unwrap_or_default();
    let right_width = u16::try_from(right.width()).unwrap_or(u16::MAX);
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

/// Most rows the problem banner may take; longer reasons are cut (the log has them whole).
const PROBLEM_MAX_ROWS: u16 = 3;

/// Rows the problem banner needs at `width` columns: none when all is well, else enough for
/// the reason to wrap (it often ends with what to do, so it must not be cut short).
pub(super) fn problem_height(app: &App, width: u16) -> u16 {
    let Some(problem) = app.problem() else {
        return 0;
    };
    let rows = wrapped_rows(problem, usize::from(width.saturating_sub(2)).max(1));
    u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .clamp(1, PROBLEM_MAX_ROWS)
}

/// Rows `text` takes when word-wrapped greedily at `width` (as the banner's paragraph wraps).
fn wrapped_rows(text: &str, width: usize) -> usize {
    let mut rows = 1;
    let mut used = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        let needed = if used == 0 { len } else { used + 1 + len };
        if needed <= width {
            used = needed;
        } else {
            if used > 0 {
                rows += 1;
            }
            // A word longer than the line spills over whole rows of its own.
            rows += len.saturating_sub(1) / width;
            used = len % width;
            if used == 0 {
                used = width;
            }
        }
    }
    rows
}

/// Draws why the connection is down into `area`.
pub(super) fn render_problem(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(problem) = app.problem() else {
        return;
    };
    let style: Style = match app.conn() {
        ConnState::Offline { .. } => theme.error(),
        _ => theme.warn(),
    };
    let line = Line::styled(problem.to_owned(), style);
    let inset = area.inner(Margin::new(1, 0));
    frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: true }), inset);
}

/// Draws the current notice (an action's outcome) into `area` (one row, or none).
pub(super) fn render_notice(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(notice) = app.notice() else {
        return;
    };
    let style = if notice.error {
        theme.error()
    } else {
        theme.ok()
    };
    let text = crate::view::text::truncate(&notice.text, usize::from(area.width.saturating_sub(2)));
    let inset = area.inner(Margin::new(1, 0));
    frame.render_widget(Paragraph::new(Line::styled(text, style)), inset);
}

/// "12 ms", "<1 ms".
fn rtt_text(rtt: Duration) -> String {
    match rtt.as_millis() {
        0 => "<1 ms".into(),
        ms => format!("{ms} ms"),
    }
}

/// "login 7h 59m left", "login expired".
fn login_text(left_ms: u64) -> String {
    if left_ms == 0 {
        return "login expired".into();
    }
    let s = left_ms.div_ceil(1000);
    let text = match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m", s / 60),
        3_600..=86_399 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    };
    format!("login {text} left")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_countdown_text() {
        assert_eq!(login_text(0), "login expired");
        assert_eq!(login_text(500), "login 1s left");
        assert_eq!(login_text(12 * 60_000), "login 12m left");
        assert_eq!(login_text(8 * 3_600_000 - 60_000), "login 7h 59m left");
        assert_eq!(login_text(50 * 3_600_000), "login 2d 2h left");
    }

    #[test]
    fn wrapped_rows_counts_word_wrap() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("abc def", 7), 1);
        assert_eq!(wrapped_rows("abc defg", 7), 2);
        assert_eq!(wrapped_rows("a bb ccc dddd", 4), 3);
        assert_eq!(wrapped_rows("abcdefghij", 4), 3);
    }

    /// The estimate agrees with how ratatui actually wraps the banner.
    #[test]
    fn wrapped_rows_matches_the_rendered_paragraph() {
        use ratatui::Terminal;
        use ratatui::backend::TestBackend;
        let reasons = [
            "cannot connect to relay 127.0.0.1:47443: no answer (is the relay running, and is \
             its UDP port open?)",
            "the relay refused this login (expired or revoked); run `cm-tui login` again",
            "relay connection lost: timed out",
        ];
        for width in [20u16, 40, 78, 98] {
            for reason in reasons {
                let mut terminal = Terminal::new(TestBackend::new(width, 10)).expect("backend");
                terminal
                    .draw(|f| {
                        let p = Paragraph::new(reason).wrap(Wrap { trim: true });
                        f.render_widget(p, f.area());
                    })
                    .expect("draw");
                let buffer = terminal.backend().buffer();
                let rendered = (0..10)
                    .filter(|&y| (0..width).any(|x| buffer[(x, y)].symbol() != " "))
                    .count();
                assert_eq!(
                    wrapped_rows(reason, usize::from(width)),
                    rendered,
                    "{width}: {reason}"
                );
            }
        }
    }

    #[test]
    fn rtt_text_rounds_down_to_ms() {
        assert_eq!(rtt_text(Duration::from_micros(300)), "<1 ms");
        assert_eq!(rtt_text(Duration::from_micros(12_700)), "12 ms");
    }
}
