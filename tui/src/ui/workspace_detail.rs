//! The selected workspace's folders and git summary, beside the workspaces table on wide
//! terminals and under it on narrow ones.

use crate::app::workspace_detail::{Detail, Loadable, git_counts};
use crate::ui::panel;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::fs::FsKind;
use proto::git::GitStatus;
use proto::ops::WorkspaceInfo;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

/// Width of the side panel on wide terminals.
pub(super) const SIDE_WIDTH: u16 = 46;
/// Height of the bottom panel on narrow terminals.
pub(super) const BOTTOM_HEIGHT: u16 = 7;

/// Draws `w`'s details into `area`.
pub(super) fn render(
    frame: &mut Frame<'_>,
    area: Rect,
    w: &WorkspaceInfo,
    detail: Option<&Detail>,
    templates: Option<&[proto::template::TemplateSummary]>,
    theme: Theme,
) {
    let block = panel(&[&w.name], theme);
    let width = usize::from(area.width.saturating_sub(4)).max(1);
    let mut lines = Vec::new();
    if !w.available {
        lines.push(Line::styled(
            "the root folder is missing on the host",
            theme.error(),
        ));
    }
    if let Some((t, stale)) = super::templates::template_note(w.template.as_ref(), templates) {
        let style = if stale { theme.warn() } else { theme.ok() };
        lines.push(Line::from(vec![
            Span::styled("template ", theme.muted()),
            Span::styled(truncate(&t, width.saturating_sub(9)), style),
        ]));
    }
    match detail {
        None => {}
        Some(d) => {
            lines.push(git_line(&d.git, width, theme));
            lines.extend(grant_lines(&d.grants, width, theme));
            lines.push(Line::from(""));
            lines.extend(folder_lines(&d.folders, width, theme));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn git_line(git: &Loadable<GitStatus>, width: usize, theme: Theme) -> Line<'static> {
    match git {
        Loadable::Loading => Line::styled("git: reading…", theme.muted()),
        Loadable::Failed(e)
            if e.contains("not inside a git repository") || e.contains("not a git repository") =>
        {
            Line::styled("git: not a repository", theme.muted())
        }
        Loadable::Failed(e) => Line::styled(
            format!("git: {}", truncate(e, width.saturating_sub(5))),
            theme.error(),
        ),
        Loadable::Ready(s) => {
            let branch = s
                .branch
                .as_deref()
                .map_or_else(|| "detached".to_owned(), sanitize);
            let mut spans = vec![Span::styled(format!("⎇ {branch}"), theme.title())];
            if s.ahead > 0 || s.behind > 0 {
                spans.push(Span::styled(
                    format!(" ↑{} ↓{}", s.ahead, s.behind),
                    theme.warn(),
                ));
            }
            let c = git_counts(s);
            if s.entries.is_empty() {
                spans.push(Span::styled("  clean", theme.ok()));
            }
            let parts = [
                (c.staged, "staged", theme.ok()),
                (c.changed, "changed", theme.warn()),
                (c.untracked, "untracked", theme.muted()),
                (c.conflicts, "conflicts", theme.error()),
            ];
            for (n, what, style) in parts {
                if n > 0 {
                    let more = if s.truncated { "+" } else { "" };
                    spans.push(Span::styled(format!("  {n}{more} {what}"), style));
                }
            }
            Line::from(spans)
        }
    }
}

/// The standing "always" grants, when there are any: each in words, and the key that ends them.
fn grant_lines(
    grants: &Loadable<Vec<proto::grant::StandingGrant>>,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let Loadable::Ready(grants) = grants else {
        return Vec::new();
    };
    if grants.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(
            format!("always: {} standing grant(s) · ", grants.len()),
            theme.attention(),
        ),
        Span::styled("X", theme.key()),
        Span::styled(" revokes", theme.muted()),
    ])];
    for g in grants {
        let text = format!(
            "• {} ({}, {}, {} used)",
            g.describe(),
            g.session,
            g.granted_by,
            g.uses
        );
        lines.push(Line::styled(
            truncate(&sanitize(&text), width),
            theme.attention(),
        ));
    }
    lines
}

fn folder_lines(
    folders: &Loadable<proto::fs::FsListing>,
    width: usize,
    theme: Theme,
) -> Vec<Line<'static>> {
    let listing = match folders {
        Loadable::Loading => return vec![Line::styled("folders: reading…", theme.muted())],
        Loadable::Failed(e) => {
            return vec![Line::styled(
                format!("folders: {}", truncate(e, width.saturating_sub(9))),
                theme.error(),
            )];
        }
        Loadable::Ready(l) => l,
    };
    let dirs: Vec<String> = listing
        .entries
        .iter()
        .filter(|e| e.kind == FsKind::Dir && !e.name.starts_with('.'))
        .map(|e| format!("{}/", sanitize(&e.name)))
        .collect();
    let files = listing
        .entries
        .iter()
        .filter(|e| e.kind != FsKind::Dir)
        .count();
    let more = if listing.truncated { "+" } else { "" };
    let count = |n: usize, one: &str| {
        let s = if n == 1 { "" } else { "s" };
        format!("{n}{more} {one}{s}")
    };
    let mut lines = vec![Line::styled(
        format!(
            "{} · {} at the root",
            count(dirs.len(), "folder"),
            count(files, "file")
        ),
        theme.header(),
    )];
    if dirs.is_empty() {
        return lines;
    }
    // Folder names packed into lines as wide as the panel.
    let mut current = String::new();
    for d in dirs {
        if !current.is_empty() && current.chars().count() + 2 + d.chars().count() > width {
            lines.push(Line::raw(std::mem::take(&mut current)));
        }
        if !current.is_empty() {
            current.push_str("  ");
        }
        current.push_str(&d);
    }
    if !current.is_empty() {
        lines.push(Line::raw(current));
    }
    lines
}
