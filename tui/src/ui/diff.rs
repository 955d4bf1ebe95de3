//! The diff view: the changed files on the left, the selected file's coloured unified diff on
//! the right, scrolled by the app.

use crate::app::{App, DiffScope};
use crate::ui::theme::Theme;
use crate::ui::{NARROW, fit, hints, line, panel, placeholder};
use crate::view::{self, text::sanitize, text::truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, HighlightSpacing, List, ListItem, ListState, Padding, Paragraph};

/// Draws the view into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let (Some(diff), Some(session)) = (app.diff(), app.session()) else {
        return;
    };
    let other = match diff.scope {
        DiffScope::Session => "working tree",
        DiffScope::Worktree => "session changes",
    };
    let bottom = hints(
        &[
            ("←/→", "file"),
            ("[ ]", "hunk"),
            ("w", other),
            ("r", "reload"),
            ("Esc", "back"),
        ],
        theme,
    );
    let share = if area.width < NARROW { 2 } else { 4 };
    let crumb = truncate(
        &sanitize(&session.title),
        usize::from(area.width / share).max(8),
    );
    let title = format!("diff: {}", diff.scope.label());
    // On a narrow terminal the session and what is shown; the host and workspace are a
    // screen back.
    let crumbs = if area.width < NARROW {
        vec![crumb.as_str(), title.as_str()]
    } else {
        vec![
            session.host.as_str(),
            session.workspace.as_str(),
            &crumb,
            &title,
        ]
    };
    let block = panel(&crumbs, theme).title_bottom(fit(bottom, area.width));
    let Some(files) = diff.files.as_ref() else {
        let text = match &diff.error {
            Some(e) => Line::styled(format!("cannot read the diff: {e}"), theme.error()),
            None => Line::styled("reading the diff…", theme.muted()),
        };
        placeholder(frame, area, block, vec![text]);
        return;
    };
    if files.is_empty() {
        placeholder(
            frame,
            area,
            block,
            vec![Line::styled("no changes", theme.muted())],
        );
        return;
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Side by side, or on a narrow terminal the files above the patch (a few rows; the
    // selected file stays in view).
    let narrow = area.width < NARROW;
    let [list_area, patch_area] = if narrow {
        let rows = u16::try_from(files.len().min(4)).unwrap_or(4) + 2;
        Layout::vertical([Constraint::Length(rows), Constraint::Fill(1)]).areas(inner)
    } else {
        Layout::horizontal([
            Constraint::Length(view::diff_files_width(area.width)),
            Constraint::Fill(1),
        ])
        .areas(inner)
    };
    let items: Vec<ListItem<'_>> = files
        .iter()
        .map(|f| {
            let mark = match f.status.as_str() {
                "added" => Span::styled("A ", theme.ok()),
                "deleted" => Span::styled("D ", theme.error()),
                _ => Span::styled("M ", theme.warn()),
            };
            ListItem::new(Line::from(vec![
                mark,
                Span::raw(sanitize(&f.file)),
                Span::styled(format!(" +{}", f.additions), theme.ok()),
                Span::styled(format!(" -{}", f.deletions), theme.error()),
            ]))
        })
        .collect();
    let files_block = Block::default()
        .borders(if narrow {
            ratatui::widgets::Borders::BOTTOM
        } else {
            ratatui::widgets::Borders::RIGHT
        })
        .border_style(theme.border())
        .title(Span::styled(
            view::text::count(files.len(), "file"),
            theme.header(),
        ));
    let list = List::new(items)
        .block(files_block)
        .highlight_style(theme.selected())
        .highlight_symbol("▶ ")
        .highlight_spacing(HighlightSpacing::Always);
    let mut state = ListState::default().with_selected(Some(diff.file));
    frame.render_stateful_widget(list, list_area, &mut state);
    let Some(file) = diff.selected() else {
        return;
    };
    let rows = view::diff::rows(file);
    let height = usize::from(patch_area.height.saturating_sub(1));
    let lines: Vec<Line<'static>> = rows
        .iter()
        .skip(diff.top)
        .take(height)
        .map(|r| line(r, theme))
        .collect();
    let position = if rows.len() > height {
        format!(
            " {}–{} of {} ",
            diff.top + 1,
            (diff.top + height).min(rows.len()),
            rows.len()
        )
    } else {
        String::new()
    };
    let patch_block = Block::default()
        .padding(Padding::left(1))
        .title(Span::styled(sanitize(&file.file), theme.header()))
        .title(Line::styled(position, theme.muted()).right_aligned());
    frame.render_widget(Paragraph::new(lines).block(patch_block), patch_area);
}
