//! The session screen: the transcript panel (scrolled, following new output at the bottom),
//! the waiting permission request with its keys, and the prompt box with its cursor.

use crate::app::attention::{Item, ItemKind};
use crate::app::{App, SessionView};
use crate::ui::sessions::{OFFLINE, status};
use crate::ui::theme::Theme;
use crate::ui::{NARROW, fit, hint_lines, hints, line, panel, placeholder};
use crate::view::{self, text::Row, text::sanitize, text::truncate};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph};
use unicode_width::UnicodeWidthStr;

/// Draws the screen into `area`.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(view) = app.session() else {
        return;
    };
    let watch = view.watch();
    let waiting: Vec<&Item> = app.attention().requests_for(&watch, view.id.as_str());
    // Keys that wrap on a narrow terminal take rows from the request box's own share.
    let key_rows = waiting.first().map_or(0, |i| {
        hint_lines(
            &request_keys(i, area.width),
            keys_width(area.width),
            Theme::new(false),
        )
        .len()
        .saturating_sub(1)
    });
    let layout = view::session_layout(
        area.height,
        view.editor.lines().len(),
        app.request_rows() + key_rows,
    );
    let [transcript, permission, prompt] = Layout::vertical([
        Constraint::Length(layout.transcript),
        Constraint::Length(layout.permission),
        Constraint::Length(layout.prompt),
    ])
    .areas(area);
    let offline = app.open_host_offline().is_some();
    render_transcript(frame, transcript, view, offline, theme);
    if let Some(first) = waiting.first() {
        render_permission(frame, permission, first, waiting.len(), theme);
        if let ItemKind::Permission(p) = &first.kind
            && first.confirming_always
            && first.answering.is_none()
        {
            // Over the transcript, so the diff or command being allowed stays in view; over
            // the request box too when the words need the room.
            let room = Rect {
                height: transcript.height + permission.height,
                ..transcript
            };
            render_confirmation(frame, transcript, room, p, theme);
        }
    }
    render_prompt(frame, prompt, view, theme);
}

fn title(view: &SessionView) -> String {
    if view.title.is_empty() {
        view.id.to_string()
    } else {
        view.title.to_string()
    }
}

/// `model · agent` as picked, `default` for the half left to OpenCode; `None` when neither is.
fn picked(view: &SessionView) -> Option<String> {
    let (model, agent) = (&view.pick.model, &view.pick.agent);
    if model.is_none() && agent.is_none() {
        return None;
    }
    let model = model.as_deref().unwrap_or("default");
    Some(match agent {
        Some(agent) => format!("model {model} · agent {agent}"),
        None => format!("model {model}"),
    })
}

fn render_transcript(
    frame: &mut Frame<'_>,
    area: Rect,
    view: &SessionView,
    offline: bool,
    theme: Theme,
) {
    // The last status heard is stale once the host is gone.
    let (text, style) = if offline {
        (OFFLINE.to_owned(), theme.error())
    } else {
        status(&view.status, theme)
    };
    let name = title(view);
    let crumb = truncate(&name, usize::from(area.width / 2));
    let mut block = panel(
        &[view.host.as_str(), view.workspace.as_str(), &crumb],
        theme,
    );
    // The model (and agent) picked with `M`; nothing when OpenCode's defaults are used.
    if let Some(choice) = picked(view) {
        block = block.title_top(Line::styled(format!(" {choice} "), theme.muted()).right_aligned());
    }
    block = block.title_top(Line::from(Span::styled(format!(" {text} "), style)).right_aligned());
    if !view.loaded {
        let text = match &view.error {
            Some(e) => Line::styled(format!("cannot read the history: {e}"), theme.error()),
            None => Line::styled("reading the history…", theme.muted()),
        };
        placeholder(frame, area, block, vec![text]);
        return;
    }
    if view.transcript.messages().is_empty() {
        let lines = vec![
            Line::from("no messages yet"),
            Line::from(vec![
                Span::styled("i", theme.key()),
                Span::styled(" writes a prompt", theme.muted()),
            ]),
        ];
        placeholder(frame, area, block, lines);
        return;
    }
    // The app keeps the layout for its idea of the width; a frame of another width (before
    // the first resize event) lays the transcript out for itself.
    let width = view::inner_width(area.width);
    let fresh;
    let layout = if view.layout().width() == width {
        view.layout()
    } else {
        let mut l = view::transcript::Layout::default();
        l.sync(&view.transcript, width);
        fresh = l;
        &fresh
    };
    let visible = usize::from(area.height.saturating_sub(view::BORDER));
    let max = layout.len().saturating_sub(visible);
    let top = view.top().map_or(max, |t| t.min(max));
    if top < max {
        let below = layout.len() - top - visible;
        block = block.title_bottom(
            Line::from(vec![
                Span::styled(format!(" ↓ {below} more "), theme.muted()),
                Span::styled("G", theme.key()),
                Span::styled(" follow ", theme.muted()),
            ])
            .right_aligned(),
        );
    }
    let lines: Vec<Line<'static>> = layout
        .window(top, visible, view.block())
        .iter()
        .map(|r| line(r, theme))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn render_permission(frame: &mut Frame<'_>, area: Rect, item: &Item, count: usize, theme: Theme) {
    if area.height == 0 {
        return;
    }
    let keys = request_keys(item, area.width);
    let (title, rows): (String, Vec<Row>) = match &item.kind {
        ItemKind::Permission(request) => (
            format!(" ⚠ permission: {} ", sanitize(&request.permission)),
            view::permission::detail(request),
        ),
        ItemKind::Question(q) => {
            let first = crate::app::question::parse(&q.questions);
            let text = first.first().map_or_else(
                || "the model asks a question".to_owned(),
                |q| q.text.to_string(),
            );
            (
                " ? question ".to_owned(),
                vec![Row::new(vec![view::text::Span::plain(text)])],
            )
        }
        _ => return,
    };
    let of = if count > 1 {
        format!(" 1 of {count} ")
    } else {
        String::new()
    };
    let mut block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.attention())
        .title(Span::styled(title, theme.attention()))
        .title_top(Line::from(of).right_aligned());
    let keys_width = keys_width(area.width);
    let status: Vec<Line<'static>> = match (&item.answering, &item.error, &item.kind) {
        (Some(answer), _, ItemKind::Question(_))
            if *answer != proto::ops::PermissionAnswer::Reject =>
        {
            vec![Line::styled("sending the answer…", theme.muted())]
        }
        (Some(answer), _, _) => vec![Line::styled(
            format!("sending “{}”…", format!("{answer:?}").to_lowercase()),
            theme.muted(),
        )],
        (None, Some(e), _) => vec![Line::styled(format!("not delivered: {e}"), theme.error())],
        // The keys wrap rather than lose an answer off the edge of a narrow terminal.
        (None, None, _) if item.confirming_always => hint_lines(
            &[
                ("A", "confirm"),
                ("f", "confirm"),
                ("y", "once"),
                ("Esc", "cancel"),
            ],
            keys_width,
            theme,
        ),
        (None, None, _) => hint_lines(&keys, keys_width, theme),
    };
    let status_rows = u16::try_from(status.len()).unwrap_or(u16::MAX);
    let visible = usize::from(
        area.height
            .saturating_sub(view::BORDER)
            .saturating_sub(status_rows),
    );
    let top = item.scroll.min(rows.len().saturating_sub(visible));
    let end = (top + visible).min(rows.len());
    if rows.len() > visible && visible > 0 {
        block = block.title_bottom(
            Line::from(vec![
                Span::styled(
                    format!(" {}–{end} of {} ", top + 1, rows.len()),
                    theme.muted(),
                ),
                Span::styled("J K", theme.key()),
                Span::styled(" scroll ", theme.muted()),
            ])
            .right_aligned(),
        );
    }
    let mut lines: Vec<Line<'static>> = rows
        .get(top..end)
        .unwrap_or_default()
        .iter()
        .map(|r| line(r, theme))
        .collect();
    lines.extend(status);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The keys that answer `item`, for a box `width` columns wide.
fn request_keys(item: &Item, width: u16) -> Vec<(&'static str, &'static str)> {
    match &item.kind {
        ItemKind::Permission(request) => vec![
            ("y", "once"),
            ("A", "always…"),
            ("f", this_only(&request.permission, width < NARROW)),
            ("r", "reject"),
        ],
        _ => vec![("y", "answer"), ("r", "reject")],
    }
}

/// The width the request box's keys wrap at.
fn keys_width(width: u16) -> u16 {
    // Borders and padding; the hints' own trailing blank may touch the padding.
    width.saturating_sub(view::BORDER + 1)
}

/// What `f` allows, in the keys line (shorter on a narrow terminal, where `?` says it whole).
fn this_only(permission: &str, narrow: bool) -> &'static str {
    match (permission, narrow) {
        ("edit", false) => "always, this file",
        ("bash", false) => "always, this command",
        (_, false) => "always, just these",
        ("edit", true) => "this file",
        ("bash", true) => "this cmd",
        (_, true) => "just these",
    }
}

/// The "always" confirmation: what `A` and `f` would allow, in words, wrapped, in a box at the
/// bottom of `area` (or of `room` when `area` is too short for the words).
fn render_confirmation(
    frame: &mut Frame<'_>,
    area: Rect,
    room: Rect,
    p: &proto::ops::PermissionRequest,
    theme: Theme,
) {
    let width = usize::from(area.width.saturating_sub(view::BORDER + 2)).max(1);
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (key, patterns) in [("A", &p.always), ("f", &p.patterns)] {
        let words = sanitize(&proto::grant::describe(&p.permission, patterns));
        let spans = [
            view::text::Span::tone(format!("{key}  allow "), view::text::Tone::Key),
            view::text::Span::tone(words, view::text::Tone::Warn),
        ];
        for wrapped in view::text::wrap(&spans, width, 3, false) {
            lines.push(line(&Row::new(wrapped), theme));
        }
    }
    lines.extend(hint_lines(
        &[
            ("A", "confirm"),
            ("f", "confirm"),
            ("y", "once"),
            ("Esc", "cancel"),
        ],
        u16::try_from(width).unwrap_or(u16::MAX),
        theme,
    ));
    let needed = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(view::BORDER);
    let base = if needed <= area.height { area } else { room };
    let height = needed.min(base.height);
    if height == 0 {
        return;
    }
    let popup = Rect {
        y: base.y + base.height - height,
        height,
        ..base
    };
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(theme.attention())
        .title(Span::styled(" allow always? ", theme.attention()));
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

/// One line saying what a permission request is for: its command, else its patterns.
pub(super) fn permission_text(request: &proto::ops::PermissionRequest) -> String {
    let command = request
        .metadata
        .get("command")
        .and_then(serde_json::Value::as_str);
    let text = match command {
        Some(c) => format!("$ {c}"),
        None => request.patterns.join(" "),
    };
    sanitize(text.lines().next().unwrap_or_default())
}

fn render_prompt(frame: &mut Frame<'_>, area: Rect, view: &SessionView, theme: Theme) {
    if area.height == 0 {
        return;
    }
    let (border, title_style) = if view.focus {
        (theme.key(), theme.key())
    } else {
        (theme.border(), theme.header())
    };
    let right = if view.outbox.is_some() {
        Line::styled(" sending… ", theme.warn())
    } else if view.focus {
        // A phone's keyboard has no Alt: a line ending in `\` continues on Enter.
        let newline = if area.width < NARROW {
            "\\ Enter"
        } else {
            "Alt-Enter"
        };
        hints(
            &[("Enter", "send"), (newline, "new line"), ("Esc", "done")],
            theme,
        )
    } else {
        hints(
            &[
                ("i", "write"),
                ("d", "diff"),
                ("a", "abort"),
                ("[ ]", "blocks"),
            ],
            theme,
        )
    };
    let block = Block::bordered()
        .padding(Padding::horizontal(1))
        .border_style(border)
        .title(Span::styled(" prompt ", title_style))
        .title_bottom(fit(right, area.width).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let lines = view.editor.lines();
    let (row, col) = view.editor.cursor();
    if lines.len() == 1 && lines[0].is_empty() && !view.focus {
        frame.render_widget(
            Paragraph::new(Line::styled("press i to write", theme.muted())),
            inner,
        );
        return;
    }
    let height = usize::from(inner.height);
    let first = row.saturating_sub(height - 1);
    let before: String = lines
        .get(row)
        .map(|l| l.chars().take(col).collect())
        .unwrap_or_default();
    let cursor_x = before.width();
    let hscroll = cursor_x.saturating_sub(usize::from(inner.width).saturating_sub(1));
    let shown: Vec<Line<'_>> = lines
        .iter()
        .skip(first)
        .take(height)
        .map(|l| Line::raw(l.as_str()))
        .collect();
    let hscroll_u16 = u16::try_from(hscroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(shown).scroll((0, hscroll_u16)), inner);
    if view.focus {
        let x = u16::try_from(cursor_x - hscroll).unwrap_or(0);
        let y = u16::try_from(row - first).unwrap_or(0);
        frame.set_cursor_position(Position::new(inner.x + x, inner.y + y));
    }
}
