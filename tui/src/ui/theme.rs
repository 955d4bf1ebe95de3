//! Every colour and text style the screens use, in one place. With `NO_COLOR` set (and not
//! empty) no colour is emitted; emphasis (bold, dim, reverse) stays so the screen still reads.

use crate::view::text::{Look, Tone};
use ratatui::style::{Color, Modifier, Style};

/// The style palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// A palette with or without colour.
    pub const fn new(color: bool) -> Self {
        Self { color }
    }

    /// Colour unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// Panel borders.
    pub fn border(self) -> Style {
        self.fg(Color::DarkGray)
    }

    /// Panel titles.
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Table column headers.
    pub fn header(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// The highlighted (selected) row.
    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// The online marker.
    pub fn online(self) -> Style {
        self.fg(Color::Green)
    }

    /// The offline marker.
    pub fn offline(self) -> Style {
        self.fg(Color::Red)
    }

    /// A row for a host that is offline: dimmed.
    pub fn offline_row(self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::DIM)
    }

    /// Secondary text (hints, the help key column's description).
    pub fn muted(self) -> Style {
        self.fg(Color::DarkGray)
    }

    /// Key names in hints and help.
    pub fn key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// Connection up.
    pub fn ok(self) -> Style {
        self.fg(Color::Green)
    }

    /// Connection being (re)established.
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Connection given up, or a login about to expire.
    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Something waiting for the operator (attention, permission requests).
    pub fn attention(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// The style of a semantic look from [`crate::view`].
    pub fn look(self, look: Look) -> Style {
        let base = match look.tone {
            Tone::Plain | Tone::Tool | Tone::FileHeader => Style::new(),
            Tone::Muted | Tone::Reasoning => self.fg(Color::DarkGray),
            Tone::Heading | Tone::Bullet | Tone::Hunk => self.fg(Color::Cyan),
            Tone::Code | Tone::Pending | Tone::Running | Tone::Warn => self.fg(Color::Yellow),
            Tone::CodeLang => self.fg(Color::Magenta),
            Tone::Quote | Tone::Assistant => self.fg(Color::Blue),
            Tone::User | Tone::Done | Tone::Added => self.fg(Color::Green),
            Tone::Failed | Tone::Removed => self.fg(Color::Red),
            Tone::Key => self.key(),
        };
        let mut style = base;
        if look.bold {
            style = style.add_modifier(Modifier::BOLD);
        }
        if look.italic {
            style = style.add_modifier(Modifier::ITALIC);
        }
        style
    }
}
