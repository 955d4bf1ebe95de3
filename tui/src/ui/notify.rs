//! The notification settings panel (`N`): the user's channels at the relay (kind, where,
//! events, quiet hours), each one's deliveries and failures with the last error, the answer
//! to a test or a removal, and how to add a channel. Laid out for phone terminals too: every
//! line fits 40 columns (long targets are cut, errors wrap), the keys are single letters, and
//! the panel scrolls so the selected channel stays in view.

use crate::app::App;
use crate::app::notify_panel::{NotifyMode, NotifyPanel};
use crate::app::workspace_detail::Loadable;
use crate::call::NotifyCall;
use crate::keymap::Context;
use crate::notify_cli::ago;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::notify::{ChannelInfo, NotifyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// `text` wrapped at `width`, `indent` columns in, at most `max_rows` lines (the last cut).
fn wrapped(text: &str, width: usize, indent: usize, max_rows: usize) -> Vec<String> {
    let room = width.saturating_sub(indent).max(1);
    let spans = [crate::view::text::Span::plain(text.to_owned())];
    let rows = crate::view::text::wrap(&spans, room, 0, false);
    let n = rows.len();
    rows.into_iter()
        .take(max_rows)
        .enumerate()
        .map(|(i, row)| {
            let mut line: String = row.iter().map(|s| s.text.as_str()).collect();
            if i + 1 == max_rows && n > max_rows {
                line = truncate(&format!("{line} …"), room);
            }
            format!("{}{line}", " ".repeat(indent))
        })
        .collect()
}

fn styled_rows(
    text: &str,
    inner: usize,
    indent: usize,
    rows: usize,
    style: Style,
) -> Vec<Line<'static>> {
    wrapped(text, inner, indent, rows)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// One channel: name and kind, target, events, quiet hours, deliveries and failures.
fn channel_lines(
    c: &ChannelInfo,
    selected: bool,
    inner: usize,
    now_ms: u64,
    theme: Theme,
) -> Vec<Line<'static>> {
    let marker = if selected { "▶ " } else { "  " };
    let name_style = if selected {
        theme.selected()
    } else {
        theme.header()
    };
    let events = if c.events.len() == NotifyEvent::ALL.len() {
        "all events".to_owned()
    } else {
        let names: Vec<&str> = c.events.iter().map(|e| e.as_str()).collect();
        names.join(",")
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(marker.to_owned(), theme.key()),
            Span::styled(
                truncate(&sanitize(&c.name), inner.saturating_sub(12)),
                name_style,
            ),
            Span::styled(format!("  {}", c.target.kind()), theme.muted()),
        ]),
        Line::raw(format!(
            "  {}",
            truncate(&sanitize(&c.target.describe()), inner.saturating_sub(2))
        )),
        Line::styled(
            format!("  {}", truncate(&events, inner.saturating_sub(2))),
            theme.muted(),
        ),
    ];
    if let Some(q) = c.quiet {
        lines.push(Line::styled(
            truncate(&format!("  quiet {q}"), inner),
            theme.muted(),
        ));
    }
    if c.ignore_presence {
        lines.push(Line::styled(
            truncate("  also while on your screen", inner),
            theme.muted(),
        ));
    }
    let last_ok = c
        .last_ok_ms
        .map(|t| format!(", last {}", ago(now_ms, t)))
        .unwrap_or_default();
    if c.failures > 0 {
        lines.push(Line::styled(
            truncate(&format!("  FAILING · {} failed", c.failures), inner),
            theme.error(),
        ));
        lines.push(Line::styled(
            truncate(&format!("  {} delivered{last_ok}", c.delivered), inner),
            theme.muted(),
        ));
        let when = c.last_error_ms.map(|t| ago(now_ms, t)).unwrap_or_default();
        let why = format!(
            "{when}: {}",
            sanitize(c.last_error.as_deref().unwrap_or("?"))
        );
        lines.extend(styled_rows(&why, inner, 2, 3, theme.error()));
    } else if c.delivered > 0 || c.last_ok_ms.is_some() {
        lines.push(Line::styled(
            truncate(&format!("  ok · {} delivered{last_ok}", c.delivered), inner),
            theme.ok(),
        ));
    } else {
        lines.push(Line::styled(
            truncate("  nothing sent yet", inner),
            theme.muted(),
        ));
    }
    lines
}

/// What the panel is asking or doing, and the last answer, on top where it is always seen.
fn status_lines(panel: &NotifyPanel, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = match &panel.mode {
        NotifyMode::ConfirmRemove(name) => styled_rows(
            &format!("remove {}? Enter removes it · Esc keeps it", sanitize(name)),
            inner,
            0,
            2,
            theme.warn(),
        ),
        NotifyMode::Busy(_, call) => {
            let text = match call {
                NotifyCall::Test(name) => format!("sending a test to {}…", sanitize(name)),
                NotifyCall::Remove(name) => format!("removing {}…", sanitize(name)),
                NotifyCall::List => "asking the relay…".to_owned(),
            };
            styled_rows(&text, inner, 0, 2, theme.muted())
        }
        NotifyMode::Browse => Vec::new(),
    };
    if let Some(news) = &panel.news {
        let (mark, style) = if news.error {
            ("✗", theme.error())
        } else {
            ("✓", theme.ok())
        };
        lines.extend(styled_rows(
            &format!("{mark} {}", news.text),
            inner,
            0,
            4,
            style,
        ));
    }
    if !lines.is_empty() {
        lines.push(Line::raw(""));
    }
    lines
}

/// How to add a channel (its secret comes from the environment, so it is done in a shell).
fn add_lines(inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let commands: &[&str] = if inner >= 52 {
        &[
            "cm-tui notify add ntfy --server URL --topic T",
            "cm-tui notify add webhook --url URL --secret-env VAR",
        ]
    } else {
        &[
            "cm-tui notify add ntfy",
            "  --server URL --topic T",
            "cm-tui notify add webhook",
            "  --url URL --secret-env VAR",
        ]
    };
    let mut lines = vec![
        Line::raw(""),
        Line::styled(truncate("add one in a shell:", inner), theme.muted()),
    ];
    lines.extend(
        commands
            .iter()
            .map(|c| Line::styled(truncate(c, inner), theme.key())),
    );
    lines
}

/// The panel's lines at text width `inner`, and the rows the selected channel takes
/// (first, end) so the panel can keep it in view.
fn lines(
    panel: &NotifyPanel,
    inner: usize,
    now_ms: u64,
    theme: Theme,
) -> (Vec<Line<'static>>, (usize, usize)) {
    let mut lines = status_lines(panel, inner, theme);
    let mut selected = (0, 0);
    match &panel.channels {
        Loadable::Loading => lines.push(Line::styled("asking the relay…", theme.muted())),
        Loadable::Failed(e) => lines.extend(styled_rows(
            &format!("cannot list your channels: {e}"),
            inner,
            0,
            4,
            theme.error(),
        )),
        Loadable::Ready(list) if list.is_empty() => lines.extend(styled_rows(
            "no channels yet: with one, the relay tells your phone what waits, with no cm-tui open.",
            inner,
            0,
            4,
            Style::new(),
        )),
        Loadable::Ready(list) => {
            for (i, c) in list.iter().enumerate() {
                if i > 0 {
                    lines.push(Line::raw(""));
                }
                let first = lines.len();
                lines.extend(channel_lines(c, i == panel.cursor, inner, now_ms, theme));
                if i == panel.cursor {
                    selected = (first, lines.len());
                }
            }
        }
    }
    lines.extend(add_lines(inner, theme));
    (lines, selected)
}

/// The panel's keys (`?`), from the keymap in effect.
fn key_lines(app: &App, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let rows = app.keymap().help_rows(Context::Notify);
    let key_width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for (keys, what) in rows {
        // A description wraps under itself on a narrow screen.
        for (i, part) in wrapped(what, inner.saturating_sub(key_width + 1), 0, 3)
            .into_iter()
            .enumerate()
        {
            let keys = if i == 0 { keys.as_str() } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{keys:>key_width$} "), theme.key()),
                Span::raw(part),
            ]));
        }
    }
    lines
}

/// Draws the panel centred in `area`, when on screen.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(panel) = app.notify_panel() else {
        return;
    };
    let size = super::panel::size(area, 72);
    let (body, (first, end)) = if panel.keys_shown {
        (key_lines(app, size.1, theme), (0, 0))
    } else {
        lines(panel, size.1, app.now_ms(), theme)
    };
    // Inside the border: scroll just enough to show the whole selected channel (its top
    // first when it is taller than the panel).
    let visible = usize::from(area.height.saturating_sub(2)).max(1);
    let scroll = end.saturating_sub(visible).min(first);
    let keys = app.keymap();
    let key = |a| keys.keys_of(Context::Notify, a);
    let bottom = if panel.keys_shown {
        super::hints(&[("?", "channels"), ("Esc", "back")], theme)
    } else if panel.ready().is_none_or(<[_]>::is_empty) {
        // Nothing to test or remove.
        super::hints(&[("Esc", "close"), ("r", "refresh")], theme)
    } else if matches!(panel.mode, NotifyMode::ConfirmRemove(_)) {
        super::hints(&[("Enter", "remove"), ("Esc", "keep")], theme)
    } else {
        let (test, remove) = (
            key(crate::action::Action::TestChannel),
            key(crate::action::Action::Remove),
        );
        super::hints(
            &[
                (test.as_str(), "test"),
                (remove.as_str(), "remove"),
                ("Esc", "close"),
                ("r", "refresh"),
            ],
            theme,
        )
    };
    super::panel::render_scrolled(
        frame,
        area,
        size,
        body,
        " notifications ".to_owned(),
        bottom,
        u16::try_from(scroll).unwrap_or(u16::MAX),
        theme,
    );
}
