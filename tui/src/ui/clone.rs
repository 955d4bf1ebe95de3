//! The clone form over the workspaces screen, then the clone's progress: phase, percent and
//! bytes as a bar that moves as the host reports, and how it ended.

use crate::app::App;
use crate::app::clone::{CloneForm, CloneStage, Field};
use crate::ui::hints;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::git::{GitCloned, GitProgress};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// Draws the form or the progress centred in `area`, when on screen.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(form) = app.clone_form().filter(|_| app.clone_visible()) else {
        return;
    };
    let size = super::panel::size(area, 72);
    let inner = size.1;
    let (lines, bottom) = match &form.stage {
        CloneStage::Editing => (form_lines(form, inner, theme), editing_hints(theme)),
        CloneStage::Running { dir, progress, .. } => (
            running_lines(form, dir.as_deref(), progress.as_ref(), inner, theme),
            hints(&[("Esc", "abort (removes the folder)")], theme),
        ),
        CloneStage::Done(done) if app.subworkspaces_allowed(&form.host, &form.workspace) => {
            let mut lines = done_lines(form, done, inner, theme);
            lines.push(Line::styled(
                "a: add the folder as a workspace of its own",
                theme.attention(),
            ));
            let keys = [("a", "add as workspace"), ("Enter/Esc", "close")];
            (lines, hints(&keys, theme))
        }
        CloneStage::Done(done) => (
            done_lines(form, done, inner, theme),
            hints(&[("Enter/Esc", "close")], theme),
        ),
        CloneStage::Failed(why) => (
            vec![
                Line::styled("✗ the clone failed", theme.error()),
                Line::styled(why.to_string(), theme.error()),
                Line::styled("nothing was kept on the host", theme.muted()),
            ],
            hints(&[("Enter", "edit and retry"), ("Esc", "close")], theme),
        ),
    };
    super::panel::render(
        frame,
        area,
        size,
        lines,
        format!(" clone into {} ", sanitize(&form.workspace)),
        bottom,
        theme,
    );
}

fn editing_hints(theme: Theme) -> Line<'static> {
    hints(
        &[("Enter", "clone"), ("Tab", "next field"), ("Esc", "cancel")],
        theme,
    )
}

fn form_lines(form: &CloneForm, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let field = |label: &str, text: &str, active: bool| {
        let room = inner.saturating_sub(9);
        // The end of a long URL is what is being typed: show it.
        let shown: String = {
            let chars: Vec<char> = text.chars().collect();
            let skip = chars.len().saturating_sub(room);
            chars[skip..].iter().collect()
        };
        let mut spans = vec![
            Span::styled(format!("{label:<8}"), theme.header()),
            Span::raw(" "),
            Span::raw(shown),
        ];
        if active {
            spans.push(Span::styled("▏", theme.key()));
        }
        let line = Line::from(spans);
        if active {
            line.style(theme.selected())
        } else {
            line
        }
    };
    let mut lines = vec![
        field("URL", &form.url, form.field == Field::Url),
        field("folder", &form.folder, form.field == Field::Folder),
    ];
    if let Some(problem) = &form.problem {
        lines.push(Line::styled(problem.clone(), theme.error()));
    }
    lines.push(Line::styled(
        "the folder is new, beneath the workspace root; the host decides which URLs may be cloned",
        theme.muted(),
    ));
    lines
}

/// `Receiving objects  45%  1.2 MiB`.
pub(super) fn progress_text(p: &GitProgress) -> String {
    let mut line = sanitize(&p.phase);
    if let Some(pc) = p.percent {
        line.push_str(&format!("  {pc:>3}%"));
    }
    if let Some(b) = p.bytes {
        line.push_str(&format!("  {}", bytes(b)));
    }
    line
}

fn bytes(b: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a display value")]
    let f = b as f64;
    if b >= 1024 * 1024 {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    } else if b >= 1024 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// A bar `width` cells wide, `percent` of it filled.
fn bar(percent: u8, width: usize) -> String {
    let filled = usize::from(percent.min(100)) * width / 100;
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn running_lines(
    form: &CloneForm,
    dir: Option<&str>,
    progress: Option<&GitProgress>,
    inner: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let into = dir.unwrap_or(&form.folder);
    let head = format!("cloning {} into {}", sanitize(&form.url), sanitize(into));
    let mut lines = vec![Line::raw(truncate(&head, inner))];
    match progress {
        None if dir.is_none() => {
            lines.push(Line::styled("asking the host…", theme.muted()));
        }
        None => lines.push(Line::styled(
            "waiting for git's first report…",
            theme.muted(),
        )),
        Some(p) => {
            lines.push(Line::styled(
                truncate(&progress_text(p), inner),
                theme.title(),
            ));
            lines.push(Line::styled(bar(p.percent.unwrap_or(0), inner), theme.ok()));
        }
    }
    lines
}

fn done_lines(
    form: &CloneForm,
    done: &GitCloned,
    inner: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let at = match (&done.branch, &done.head) {
        (Some(b), Some(h)) => format!(
            "branch {} at {}",
            sanitize(b),
            sanitize(&h.chars().take(10).collect::<String>())
        ),
        (None, Some(h)) => format!("at {}", sanitize(&h.chars().take(10).collect::<String>())),
        _ => "an empty repository".into(),
    };
    let mut lines = vec![
        Line::styled(
            truncate(&format!("✓ cloned into {}", sanitize(&done.dir)), inner),
            theme.ok(),
        ),
        Line::raw(truncate(&sanitize(&form.url), inner)),
        Line::styled(at, theme.muted()),
    ];
    if let Some(p) = &done.progress {
        lines.push(Line::styled(
            truncate(&progress_text(p), inner),
            theme.muted(),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_the_percent() {
        assert_eq!(bar(0, 10), "░░░░░░░░░░");
        assert_eq!(bar(45, 10), "████░░░░░░");
        assert_eq!(bar(100, 10), "██████████");
        assert_eq!(bar(250, 4), "████", "over 100 is full");
        assert_eq!(bytes(1_300_000), "1.2 MiB");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
