//! The folders panel over the workspaces screen: the host's candidate folders (root, folder,
//! git branch, the workspace a folder already is), the name input of a new workspace, the
//! question before one is forgotten, and the host's refusal.

use crate::app::App;
use crate::app::folders::{FoldersMode, FoldersPanel};
use crate::app::workspace_detail::Loadable;
use crate::ui::hints;
use crate::ui::theme::Theme;
use crate::view::text::{sanitize, truncate};
use proto::workspace::WorkspaceCandidate;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// Draws the panel centred in `area`, when on screen.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(panel) = app.folders_panel().filter(|_| app.folders_visible()) else {
        return;
    };
    let size = super::panel::size(area, 88);
    let inner = size.1;
    let mut lines = list_lines(panel, inner, theme);
    lines.extend(mode_lines(panel, inner, theme));
    if let Some(why) = &panel.refusal {
        lines.push(Line::raw(""));
        lines.push(Line::styled(format!("✗ {why}"), theme.error()));
    }
    let bottom = match panel.mode {
        FoldersMode::Naming { .. } => hints(&[("Enter", "add"), ("Esc", "cancel")], theme),
        FoldersMode::ConfirmRemove(_) => hints(&[("Enter", "forget"), ("Esc", "cancel")], theme),
        _ => hints(
            &[
                ("Enter", "add"),
                ("x", "forget"),
                ("r", "refresh"),
                ("Esc", "close"),
            ],
            theme,
        ),
    };
    super::panel::render(
        frame,
        area,
        size,
        lines,
        format!(" folders on {} ", sanitize(panel.host.as_str())),
        bottom,
        theme,
    );
}

fn list_lines(panel: &FoldersPanel, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let list = match &panel.list {
        None | Some(Loadable::Loading) => {
            return vec![Line::styled(
                "asking the host for its folders…",
                theme.muted(),
            )];
        }
        Some(Loadable::Failed(e)) => {
            return vec![Line::styled(
                truncate(&format!("cannot list the folders: {e}"), inner * 3),
                theme.error(),
            )];
        }
        Some(Loadable::Ready(list)) => list,
    };
    if list.candidates.is_empty() {
        return vec![
            Line::raw("no folders that may become workspaces"),
            Line::styled(
                "the host allows them beneath roots with subworkspaces = true (agent.toml)",
                theme.muted(),
            ),
        ];
    }
    let path_width = list
        .candidates
        .iter()
        .map(|c| path(c).chars().count())
        .max()
        .unwrap_or(0)
        .min(inner / 2);
    let mut lines: Vec<Line<'static>> = list
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| candidate_line(c, i == panel.cursor, path_width, inner, theme))
        .collect();
    if list.truncated {
        lines.push(Line::styled(
            "more folders than listed (the first ones shown)",
            theme.muted(),
        ));
    }
    lines
}

fn path(c: &WorkspaceCandidate) -> String {
    format!("{}/{}", sanitize(&c.root), sanitize(&c.folder))
}

fn candidate_line(
    c: &WorkspaceCandidate,
    selected: bool,
    path_width: usize,
    inner: usize,
    theme: Theme,
) -> Line<'static> {
    let git = match (&c.branch, c.is_git) {
        (Some(b), _) => format!("git {}", sanitize(b)),
        (None, true) => "git".to_owned(),
        (None, false) => "-".to_owned(),
    };
    let path = truncate(&path(c), path_width);
    let mark = if selected { "▶ " } else { "  " };
    let mut spans = vec![
        Span::styled(mark, theme.key()),
        Span::raw(format!("{path:<path_width$}")),
        Span::styled(format!("  {:<12}", truncate(&git, 12)), theme.muted()),
    ];
    match &c.workspace {
        Some(w) => spans.push(Span::styled(
            format!("  workspace {}", sanitize(w)),
            theme.ok(),
        )),
        None => spans.push(Span::styled("  not a workspace", theme.muted())),
    }
    let line = truncate_line(Line::from(spans), inner);
    if selected {
        line.style(theme.selected())
    } else {
        line
    }
}

/// One line no wider than `width` (a narrow panel drops the ends of rows, never wraps them).
fn truncate_line(line: Line<'static>, width: usize) -> Line<'static> {
    let mut left = width;
    let spans = line
        .spans
        .into_iter()
        .filter_map(|s| {
            if left == 0 {
                return None;
            }
            let text: String = s.content.chars().take(left).collect();
            left -= text.chars().count();
            Some(Span::styled(text, s.style))
        })
        .collect::<Vec<_>>();
    Line::from(spans)
}

fn mode_lines(panel: &FoldersPanel, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    match &panel.mode {
        FoldersMode::Browse => Vec::new(),
        FoldersMode::Naming {
            root,
            folder,
            name,
            problem,
        } => {
            let mut lines = vec![
                Line::raw(""),
                Line::styled(
                    truncate(
                        &format!(
                            "make {}/{} a workspace named:",
                            sanitize(root),
                            sanitize(folder)
                        ),
                        inner,
                    ),
                    theme.attention(),
                ),
                Line::from(vec![
                    Span::styled("name  ", theme.key()),
                    Span::raw(sanitize(name)),
                    Span::styled("█", theme.key()),
                ]),
            ];
            if let Some(p) = problem {
                lines.push(Line::styled(p.clone(), theme.error()));
            }
            lines
        }
        FoldersMode::ConfirmRemove(name) => vec![
            Line::raw(""),
            Line::styled(
                format!(
                    "forget the workspace {}? its OpenCode stops; the folder and its files stay · Enter forget · Esc cancel",
                    sanitize(name)
                ),
                theme.attention(),
            ),
        ],
        FoldersMode::Busy(_) => vec![
            Line::raw(""),
            Line::styled("asking the host…", theme.warn()),
        ],
    }
}
