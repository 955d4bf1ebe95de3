//! Everything that can happen to the app: a key, the clock, a resize, or news from the relay.
//! Plain data with no terminal or network types, so `App::update` stays pure and testable.

use proto::ids::ConnId;
use proto::message::HostList;
use std::fmt;
use std::time::Duration;

/// An input to [`crate::app::App::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A key press, already translated from the terminal's key type.
    Key(KeyPress),
    /// Time passed: the wall clock now, unix ms. Sent every second and before each net event,
    /// so the app never reads the clock itself.
    Tick {
        /// Local wall clock, unix ms.
        now_ms: u64,
    },
    /// The terminal changed size.
    Resize {
        /// Columns.
        width: u16,
        /// Rows.
        height: u16,
    },
    /// News from the relay connection task.
    Net(NetEvent),
}

/// What the connection task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// Authenticated; the host watch is being opened.
    Connected {
        /// The relay's id for this connection.
        conn_id: ConnId,
    },
    /// A fresh host list from the watch stream.
    Hosts(HostList),
    /// The connection failed or dropped; the next attempt starts after `retry_in`.
    Disconnected {
        /// Why, in words.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// A control-stream ping came back.
    Pong {
        /// Round-trip time of that ping.
        rtt: Duration,
    },
    /// Retrying cannot help (credential refused, expired or revoked): the task has stopped.
    Fatal {
        /// What happened and what to run.
        message: String,
    },
}

/// A key as the app sees it: the terminal's key type is translated into this at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPress {
    /// Which key.
    pub code: KeyCode,
    /// Whether Ctrl was held.
    pub ctrl: bool,
}

/// The keys the app distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCode {
    /// A printable character (shifted letters arrive upper-case).
    Char(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Arrow left.
    Left,
    /// Arrow right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Tab.
    Tab,
    /// Backspace.
    Backspace,
    /// Anything else (function keys, media keys, …).
    Other,
}

impl KeyPress {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self { code, ctrl: false }
    }

    /// A character key without modifiers.
    pub const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    /// Ctrl plus a character key.
    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            ctrl: true,
        }
    }
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Other => f.write_str("?"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_display_for_help() {
        assert_eq!(KeyPress::ctrl('c').to_string(), "Ctrl-C");
        assert_eq!(KeyPress::char('?').to_string(), "?");
        assert_eq!(KeyPress::plain(KeyCode::Down).to_string(), "↓");
        assert_eq!(KeyPress::plain(KeyCode::PageUp).to_string(), "PgUp");
    }
}
