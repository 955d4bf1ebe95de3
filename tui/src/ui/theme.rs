//! Every colour and text style the screens use, in one place. With `NO_COLOR` set (and not
//! empty) no colour is emitted; emphasis (bold, dim, reverse) stays so the screen still reads.

use crate::view::text::{Look, Tone};
use ratatui::style::{Color, Modifier, Style};

/// The colours a theme can change (`[theme]` in tui.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colors {
    /// Titles, key names, headings.
    pub accent: Color,
    /// Online, connected, done, added lines.
    pub ok: Color,
    /// Reconnecting, attention, running tools.
    pub warn: Color,
    /// Offline, failures, removed lines.
    pub error: Color,
    /// Borders and secondary text.
    pub muted: Color,
}

impl Default for Colors {
    fn default() -> Self {
        Self {
            accent: Color::Cyan,
            ok: Color::Green,
            warn: Color::Yellow,
            error: Color::Red,
            muted: Color::DarkGray,
        }
    }
}

/// The names `[theme]` accepts, besides `#rrggbb`.
pub const COLOR_NAMES: &[&str] = &[
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "dark_gray",
    "light_red",
    "light_green",
    "light_yellow",
    "light_blue",
    "light_magenta",
    "light_cyan",
    "white",
];

/// A colour as written in tui.toml: one of [`COLOR_NAMES`] or `#rrggbb`.
pub fn parse_color(text: &str) -> Option<Color> {
    if let Some(hex) = text.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return Some(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    Some(match text {
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "dark_gray" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

/// The style palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
    colors: Colors,
}

impl Theme {
    /// A palette with or without colour.
    pub fn new(color: bool) -> Self {
        Self {
            color,
            colors: Colors::default(),
        }
    }

    /// The same palette with other colours (still none when colour is off).
    #[must_use]
    pub fn with_colors(mut self, colors: Colors) -> Self {
        self.colors = colors;
        self
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
        self.fg(self.colors.muted)
    }

    /// Panel titles.
    pub fn title(self) -> Style {
        self.fg(self.colors.accent).add_modifier(Modifier::BOLD)
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
        self.fg(self.colors.ok)
    }

    /// The offline marker.
    pub fn offline(self) -> Style {
        self.fg(self.colors.error)
    }

    /// A row for a host that is offline: dimmed.
    pub fn offline_row(self) -> Style {
        self.fg(self.colors.muted).add_modifier(Modifier::DIM)
    }

    /// Secondary text (hints, the help key column's description).
    pub fn muted(self) -> Style {
        self.fg(self.colors.muted)
    }

    /// Key names in hints and help.
    pub fn key(self) -> Style {
        self.fg(self.colors.accent).add_modifier(Modifier::BOLD)
    }

    /// Connection up.
    pub fn ok(self) -> Style {
        self.fg(self.colors.ok)
    }

    /// Connection being (re)established.
    pub fn warn(self) -> Style {
        self.fg(self.colors.warn)
    }

    /// Connection given up, or a login about to expire.
    pub fn error(self) -> Style {
        self.fg(self.colors.error).add_modifier(Modifier::BOLD)
    }

    /// Something waiting for the operator (attention, permission requests).
    pub fn attention(self) -> Style {
        self.fg(self.colors.warn).add_modifier(Modifier::BOLD)
    }

    /// The style of a semantic look from [`crate::view`].
    pub fn look(self, look: Look) -> Style {
        let base = match look.tone {
            Tone::Plain | Tone::Tool | Tone::FileHeader => Style::new(),
            Tone::Muted | Tone::Reasoning => self.fg(self.colors.muted),
            Tone::Heading | Tone::Bullet | Tone::Hunk => self.fg(self.colors.accent),
            Tone::Code | Tone::Pending | Tone::Running | Tone::Warn => self.fg(self.colors.warn),
            Tone::CodeLang => self.fg(Color::Magenta),
            Tone::Quote | Tone::Assistant => self.fg(Color::Blue),
            Tone::User | Tone::Done | Tone::Added => self.fg(self.colors.ok),
            Tone::Failed | Tone::Removed => self.fg(self.colors.error),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_parse_by_name_and_hex() {
        assert_eq!(parse_color("dark_gray"), Some(Color::DarkGray));
        assert_eq!(parse_color("#ff8000"), Some(Color::Rgb(255, 128, 0)));
        assert_eq!(parse_color("#ff80"), None);
        assert_eq!(parse_color("orange"), None);
        for name in COLOR_NAMES {
            assert!(parse_color(name).is_some(), "{name}");
        }
    }

    #[test]
    fn a_theme_changes_colours_but_no_colour_stays_none() {
        let colors = Colors {
            accent: Color::Magenta,
            ..Colors::default()
        };
        assert_eq!(
            Theme::new(true).with_colors(colors).title().fg,
            Some(Color::Magenta)
        );
        assert_eq!(Theme::new(false).with_colors(colors).title().fg, None);
    }
}
