//! The ports panel over the workspaces screen: the host's listening ports (port, address,
//! process, workspace, whether the host lets it be forwarded), the forwards running
//! ("forwarding http://127.0.0.1:LOCAL → HOST:PORT" and their open connections), and the
//! host's reason when it refused one.

use crate::app::App;
use crate::app::ports::{Forward, ForwardState, PortsPanel};
use crate::app::workspace_detail::Loadable;
use crate::ui::hints;
use crate::ui::theme::Theme;
use crate::view::text::{count, sanitize, truncate};
use proto::forward::ListeningPort;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

/// Draws the panel centred in `area`, when on screen.
pub(super) fn render(frame: &mut Frame<'_>, area: Rect, app: &App, theme: Theme) {
    let Some(panel) = app.ports_panel().filter(|_| app.ports_visible()) else {
        return;
    };
    let size = super::panel::size(area, 88);
    let inner = size.1;
    let mut lines = list_lines(app, panel, inner, theme);
    let forwards: Vec<&Forward> = app
        .forwards()
        .iter()
        .filter(|f| f.host == panel.host)
        .collect();
    if !forwards.is_empty() {
        lines.push(Line::raw(""));
        for f in forwards {
            lines.push(Line::styled(
                truncate(&forward_text(f), inner),
                match f.state {
                    ForwardState::Starting => theme.warn(),
                    ForwardState::Listening { .. } => theme.ok(),
                },
            ));
        }
    }
    if let Some(why) = &panel.refusal {
        lines.push(Line::raw(""));
        lines.push(Line::styled(format!("✗ {why}"), theme.error()));
    }
    let bottom = hints(
        &[
            ("Enter", "forward/stop"),
            ("x", "stop"),
            ("r", "refresh"),
            ("Esc", "close"),
        ],
        theme,
    );
    super::panel::render(
        frame,
        area,
        size,
        lines,
        format!(" ports on {} ", sanitize(panel.host.as_str())),
        bottom,
        theme,
    );
}

/// `forwarding http://127.0.0.1:LOCAL → HOST:PORT · N connections`.
fn forward_text(f: &Forward) -> String {
    match f.state {
        ForwardState::Starting => f.describe(),
        ForwardState::Listening { connections, .. } => format!(
            "forwarding {} · {}",
            f.describe(),
            count(connections, "connection")
        ),
    }
}

fn list_lines(app: &App, panel: &PortsPanel, inner: usize, theme: Theme) -> Vec<Line<'static>> {
    let list = match &panel.list {
        None | Some(Loadable::Loading) => {
            return vec![Line::styled(
                "asking the host for its ports…",
                theme.muted(),
            )];
        }
        Some(Loadable::Failed(e)) => {
            return vec![Line::styled(
                truncate(&format!("cannot list the ports: {e}"), inner * 3),
                theme.error(),
            )];
        }
        Some(Loadable::Ready(list)) => list,
    };
    if list.is_empty() {
        return vec![
            Line::raw("no listening ports"),
            Line::styled(
                "a dev server OpenCode starts in a workspace shows here",
                theme.muted(),
            ),
        ];
    }
    let mut lines = vec![truncate_line(
        Line::styled(
            format!(
                "  {:<6} {:<10} {:<14} {:<12} {}",
                "PORT", "ADDRESS", "PROCESS", "WORKSPACE", "FORWARD"
            ),
            theme.muted(),
        ),
        inner,
    )];
    lines.extend(list.iter().enumerate().map(|(i, p)| {
        let forward = app.forward_of(&panel.host, p.port);
        port_line(p, forward, i == panel.cursor, inner, theme)
    }));
    lines
}

fn port_line(
    p: &ListeningPort,
    forward: Option<&Forward>,
    selected: bool,
    inner: usize,
    theme: Theme,
) -> Line<'static> {
    let mark = if selected { "▶ " } else { "  " };
    let (state, look) = match (forward.map(|f| f.state), p.forwardable) {
        (Some(ForwardState::Listening { local, .. }), _) => {
            (format!("→ :{}", local.port()), theme.ok())
        }
        (Some(ForwardState::Starting), _) => ("starting…".to_owned(), theme.warn()),
        (None, true) => ("yes".to_owned(), theme.key()),
        (None, false) => ("no".to_owned(), theme.muted()),
    };
    let cell = |text: Option<&str>, w: usize| {
        format!("{:<w$}", truncate(&sanitize(text.unwrap_or("-")), w))
    };
    let spans = vec![
        Span::styled(mark, theme.key()),
        Span::raw(format!("{:<6} ", p.port)),
        Span::styled(format!("{} ", cell(Some(&p.addr), 10)), theme.muted()),
        Span::raw(format!("{} ", cell(p.process.as_deref(), 14))),
        Span::raw(format!("{} ", cell(p.workspace.as_deref(), 12))),
        Span::styled(state, look),
    ];
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
    let style = line.style;
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
    Line::from(spans).style(style)
}
