//! The notifications settings panel: the user's channels at the relay (kind, where, events,
//! quiet hours), each one's last delivery or failure, and how to add one. Laid out for
//! phone terminals too: every line fits 40 columns (long targets are cut, not wrapped into
//! the next channel), the keys are single letters.

use crate::notify_cli::health;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::notify::ChannelInfo;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// What the panel shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySettings {
    /// The channels (`None`: still asking the relay; `Err`: why not).
    pub channels: Option<Result<Vec<ChannelInfo>, String>>,
    /// The selected channel.
    pub selected: usize,
    /// The clock, for "last 3 min ago".
    pub now_ms: u64,
}

fn channel_lines(
    c: &ChannelInfo,
    selected: bool,
    inner: usize,
    now_ms: u64,
    theme: Theme,
) -> Vec<Line<'static>> {
    let marker = if selected { "› " } else { "  " };
    let name_style = if selected {
        theme.selected()
    } else {
        theme.header()
    };
    let events: Vec<&str> = c.events.iter().map(|e| e.as_str()).collect();
    let events = if c.events.len() == proto::notify::NotifyEvent::ALL.len() {
        "all events".to_owned()
    } else {
        events.join(",")
    };
    // A failure in two short lines, so a narrow screen still shows why.
    let health_text = if c.failures > 0 {
        let when = c
            .last_error_ms
            .map(|t| crate::notify_cli::ago(now_ms, t))
            .unwrap_or_default();
        format!(
            "FAILING · {} tries · {when}\n{}",
            c.failures,
            sanitize(c.last_error.as_deref().unwrap_or("?"))
        )
    } else {
        health(c, now_ms)
    };
    let health_style = if c.failures > 0 {
        theme.error()
    } else if c.last_ok_ms.is_some() {
        theme.ok()
    } else {
        theme.muted()
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
    for part in health_text.lines() {
        lines.push(Line::styled(
            truncate(&format!("  {part}"), inner),
            health_style,
        ));
    }
    lines
}

/// The panel's lines at text width `inner`.
pub fn lines(settings: &NotifySettings, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    match &settings.channels {
        None => lines.push(Line::styled("asking the relay…", theme.muted())),
        Some(Err(e)) => lines.push(Line::styled(
            truncate(&format!("cannot list channels: {}", sanitize(e)), inner),
            theme.error(),
        )),
        Some(Ok(list)) if list.is_empty() => {
            lines.push(Line::raw("no channels yet: the relay"));
            lines.push(Line::raw("notifies you with none open."));
        }
        Some(Ok(list)) => {
            for (i, c) in list.iter().enumerate() {
                if i > 0 {
                    lines.push(Line::raw(""));
                }
                lines.extend(channel_lines(
                    c,
                    i == settings.selected,
                    inner,
                    settings.now_ms,
                    theme,
                ));
            }
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("add one from a shell:", theme.muted()));
    for l in ["cm-tui notify add ntfy", "  --server URL --topic T"] {
        lines.push(Line::styled(truncate(l, inner), theme.key()));
    }
    lines
}

/// Draws the panel centred in `area`.
pub fn render(frame: &mut Frame<'_>, area: Rect, settings: &NotifySettings, theme: Theme) {
    let size = super::panel::size(area, 72);
    let body = lines(settings, size.1, theme);
    let bottom = super::hints(&[("t", "test"), ("d", "remove"), ("esc", "back")], theme);
    super::panel::render(
        frame,
        area,
        size,
        body,
        " notifications ".to_owned(),
        bottom,
        theme,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::notify::{ChannelTarget, NotifyEvent, QuietHours};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    const NOW: u64 = 1_700_000_000_000;

    fn settings() -> NotifySettings {
        let phone = ChannelInfo {
            name: "phone".into(),
            target: ChannelTarget::Ntfy {
                server: "https://ntfy.example.org".into(),
                topic: "cm-alice-7f3kq9-very-long-topic-name".into(),
            },
            has_secret: true,
            events: vec![
                NotifyEvent::Permission,
                NotifyEvent::Question,
                NotifyEvent::Failed,
            ],
            quiet: Some(QuietHours::parse("22:00-07:00", 60).unwrap_or(QuietHours {
                start_min: 0,
                end_min: 1,
                utc_offset_min: 0,
            })),
            ignore_presence: false,
            delivered: 12,
            last_ok_ms: Some(NOW - 180_000),
            last_error_ms: None,
            last_error: None,
            failures: 0,
        };
        let hook = ChannelInfo {
            name: "team-hook".into(),
            target: ChannelTarget::Webhook {
                url: "https://hooks.example.org/codemantle/incoming".into(),
            },
            has_secret: true,
            events: NotifyEvent::ALL.to_vec(),
            quiet: None,
            ignore_presence: true,
            delivered: 0,
            last_ok_ms: None,
            last_error_ms: Some(NOW - 20_000),
            last_error: Some("the receiver answered HTTP 500".into()),
            failures: 3,
        };
        NotifySettings {
            channels: Some(Ok(vec![phone, hook])),
            selected: 1,
            now_ms: NOW,
        }
    }

    fn draw(settings: &NotifySettings, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| render(f, f.area(), settings, Theme::new(false)))
            .expect("draw");
        format!("{:?}", t.backend())
    }

    #[test]
    fn notification_settings_at_50_by_30() {
        let text = draw(&settings(), 50, 30);
        for needle in [
            "notifications",
            "phone",
            "FAILING",
            "team-hook",
            "quiet 22:00-07:00",
        ] {
            assert!(text.contains(needle), "{needle:?} missing:\n{text}");
        }
        insta::assert_snapshot!(text);
    }

    #[test]
    fn notification_settings_at_40_by_20() {
        let text = draw(&settings(), 40, 20);
        assert!(
            text.contains("phone") && text.contains("team-hook"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn notification_settings_empty_and_failed_at_40_by_20() {
        let empty = NotifySettings {
            channels: Some(Ok(vec![])),
            ..NotifySettings::default()
        };
        let failed = NotifySettings {
            channels: Some(Err("unknown_op: notify_list".into())),
            ..NotifySettings::default()
        };
        insta::assert_snapshot!(format!(
            "{}\n{}",
            draw(&empty, 40, 20),
            draw(&failed, 40, 20)
        ));
    }
}
