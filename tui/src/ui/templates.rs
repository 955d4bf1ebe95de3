//! The templates panel over the workspaces screen: which template the workspace runs and
//! whether it is out of date, the relay's templates (latest version, author, description, MCP
//! servers) with the applied one marked, the confirmation, and an apply's progress.

use crate::app::App;
use crate::app::templates::{ApplyPhase, ApplyRun, TemplateStatus, template_status};
use crate::app::workspace_detail::Loadable;
use crate::ui::hints;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::template::{TemplateRef, TemplateSummary};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

/// What a workspace's template looks like in one line (`team v2`, `team v2 · out of date (v3
/// available)`), and whether it is out of date; `None` when it runs no template.
pub(super) fn template_note(
    current: Option<&TemplateRef>,
    list: Option<&[TemplateSummary]>,
) -> Option<(String, bool)> {
    let current = current?;
    let name = format!("{} v{}", sanitize(&current.name), current.version);
    Some(match template_status(Some(current), list) {
        TemplateStatus::OutOfDate { latest } => {
            (format!("{name} · out of date (v{latest} available)"), true)
        }
        _ => (name, false),
    })
}

/// Draws the panel centred in `area`, when on screen.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(panel) = app.templates_panel().filter(|_| app.templates_visible()) else {
        return;
    };
    let size = super::panel::size(area, 96);
    let inner = size.1;
    let cache = app.template_cache();
    let current = app.panel_template();
    let mut lines = vec![
        runs_line(current, cache.ready(), inner, theme),
        Line::raw(""),
    ];
    match &cache.list {
        None | Some(Loadable::Loading) => {
            lines.push(Line::styled(
                "asking the relay for its templates…",
                theme.muted(),
            ));
        }
        Some(Loadable::Failed(e)) => {
            lines.push(Line::styled(
                truncate(&format!("cannot list the templates: {e}"), inner),
                theme.error(),
            ));
        }
        Some(Loadable::Ready(list)) if list.is_empty() => {
            lines.push(Line::raw("the relay has no templates yet"));
            lines.push(Line::styled(
                "an admin publishes one: cm-tui template publish NAME FILE",
                theme.muted(),
            ));
        }
        Some(Loadable::Ready(list)) => {
            for (i, t) in list.iter().enumerate() {
                let applied = current.is_some_and(|c| c.name == t.latest.name);
                lines.extend(template_lines(t, applied, i == panel.cursor, inner, theme));
            }
        }
    }
    let selected = cache.ready().and_then(|l| l.get(panel.cursor));
    if let (true, Some(t)) = (panel.confirm, selected) {
        lines.push(Line::raw(""));
        let text = format!(
            "apply {} v{} to {}? OpenCode restarts if it runs · Enter apply · Esc cancel",
            sanitize(&t.latest.name),
            t.latest.version,
            sanitize(&panel.workspace)
        );
        lines.push(Line::styled(text, theme.attention()));
    }
    if let Some(run) = &panel.run {
        lines.push(Line::raw(""));
        lines.push(run_line(run, inner, theme));
    }
    super::panel::render(
        frame,
        area,
        size,
        lines,
        format!(" templates · {} ", sanitize(&panel.workspace)),
        hints(
            &[("Enter", "apply"), ("r", "refresh"), ("Esc", "close")],
            theme,
        ),
        theme,
    );
}

fn runs_line(
    current: Option<&TemplateRef>,
    list: Option<&[TemplateSummary]>,
    inner: usize,
    theme: Theme,
) -> Line<'static> {
    match template_note(current, list) {
        None => Line::styled("runs no template", theme.muted()),
        Some((note, stale)) => {
            let style = if stale { theme.warn() } else { theme.ok() };
            Line::from(vec![
                Span::styled("runs ", theme.muted()),
                Span::styled(truncate(&note, inner.saturating_sub(5)), style),
            ])
        }
    }
}

fn template_lines(
    t: &TemplateSummary,
    applied: bool,
    selected: bool,
    inner: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mark = if applied { "(•) " } else { "( ) " };
    let head = format!(
        "{} v{}  by {}",
        sanitize(&t.latest.name),
        t.latest.version,
        sanitize(&t.author)
    );
    let head = truncate(&head, inner.saturating_sub(4));
    let rest = inner.saturating_sub(4 + head.chars().count() + 2);
    let mut spans = vec![Span::styled(mark, theme.key()), Span::raw(head)];
    if rest > 6 && !t.description.is_empty() {
        spans.push(Span::styled(
            format!("  {}", truncate(&sanitize(&t.description), rest)),
            theme.muted(),
        ));
    }
    let line = Line::from(spans);
    let mut lines = vec![if selected {
        line.style(theme.selected())
    } else {
        line
    }];
    if !t.mcp.is_empty() {
        let names: Vec<String> = t.mcp.iter().map(|m| sanitize(m)).collect();
        lines.push(Line::styled(
            truncate(&format!("    MCP: {}", names.join(", ")), inner),
            theme.muted(),
        ));
    }
    lines
}

fn run_line(run: &ApplyRun, inner: usize, theme: Theme) -> Line<'static> {
    let what = format!("{} v{}", sanitize(&run.name), run.version);
    let (text, style): (String, Style) = match &run.phase {
        ApplyPhase::Asking => (format!("applying {what}: asking the host…"), theme.warn()),
        ApplyPhase::Accepted { restart: true } => (
            format!("applying {what}: accepted, OpenCode restarts…"),
            theme.warn(),
        ),
        ApplyPhase::Accepted { restart: false } => (
            format!("applying {what}: accepted (OpenCode takes it at its next start)…"),
            theme.warn(),
        ),
        ApplyPhase::Stopping => (format!("applying {what}: stopping OpenCode…"), theme.warn()),
        ApplyPhase::Starting => (format!("applying {what}: starting OpenCode…"), theme.warn()),
        ApplyPhase::Done => (format!("✓ {what} applied"), theme.ok()),
        ApplyPhase::Failed(e) => (format!("✗ {what} failed: {e}"), theme.error()),
    };
    Line::styled(truncate(&text, inner.max(1) * 3), style)
}
