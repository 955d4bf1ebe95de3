//! Everything that can happen to the app: a key, the clock, a resize, or news from the relay.
//! Plain data with no terminal or network types, so `App::update` stays pure and testable.

use crate::call::{CallError, Request, Response, StreamItem, WatchKey};
use proto::event::EventFrame;
use proto::ids::{ConnId, HostId};
use proto::message::HostList;
use proto::rbac::Role;
use std::fmt;
use std::time::Duration;

/// An input to [`crate::app::App::update`].
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one event moves through one update at a time; boxing would only add allocations"
)]
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
    /// The mouse wheel turned over the screen: one notch, up (back) or down.
    Scroll {
        /// Towards the top.
        up: bool,
    },
    /// Text pasted into the terminal (bracketed paste), delivered whole so its line breaks
    /// do not act as Enter.
    Paste(String),
    /// The terminal window got the focus (terminals that report it; many never do).
    FocusGained,
    /// The terminal window lost the focus: nobody counts as watching it.
    FocusLost,
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
    /// The transport of the connection just made (QUIC, TCP, TCP via proxy).
    Transport(cm_client::transport::Transport),
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
        /// The relay said this login was revoked (not merely refused at login).
        revoked: bool,
    },
    /// The answer to a [`Request`] the app asked for.
    Reply {
        /// The request, echoed.
        request: Request,
        /// Its outcome.
        result: Result<Response, CallError>,
    },
    /// A frame of the stream the app opened with this id.
    StreamItem {
        /// The stream's id.
        id: u64,
        /// The frame.
        item: StreamItem,
    },
    /// The stream with this id ended: after its last item (`None`), or refused or broken.
    StreamEnded {
        /// The stream's id.
        id: u64,
        /// Why it ended early, if it did.
        error: Option<CallError>,
    },
    /// A workspace watch is open; live events will be numbered from `next_seq`.
    WatchStarted {
        /// Which watch.
        watch: WatchKey,
        /// The agent's next sequence number.
        next_seq: u64,
    },
    /// An event on a workspace watch.
    WatchFrame {
        /// Which watch.
        watch: WatchKey,
        /// The event with its sequence number.
        frame: EventFrame,
    },
    /// A workspace watch ended or could not start.
    WatchEnded {
        /// Which watch.
        watch: WatchKey,
        /// Why, in words.
        reason: String,
    },
    /// News of the forward the app started with this id.
    Forward {
        /// The forward's id.
        id: u64,
        /// What happened.
        news: crate::call::ForwardNews,
    },
    /// How this laptop reaches a host became known: verified end to end, or relay-trusted.
    HostMode {
        /// The host.
        host: HostId,
        /// How.
        mode: crate::e2e_channels::HostMode,
    },
    /// The principal's effective role on a host became known.
    Role {
        /// The host.
        host: HostId,
        /// The role.
        role: Role,
    },
}

/// A key as the app sees it: the terminal's key type is translated into this at the edge.
/// Shift is only recorded for non-character keys (shifted letters arrive upper-case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPress {
    /// Which key.
    pub code: KeyCode,
    /// Whether Ctrl was held.
    pub ctrl: bool,
    /// Whether Alt was held.
    pub alt: bool,
    /// Whether Shift was held (non-character keys only).
    pub shift: bool,
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
    /// Delete.
    Delete,
    /// Shift-Tab.
    BackTab,
    /// Anything else (function keys, media keys, …).
    Other,
}

impl KeyPress {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            ctrl: false,
            alt: false,
            shift: false,
        }
    }

    /// A character key without modifiers.
    pub const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    /// Ctrl plus a character key.
    pub const fn ctrl(c: char) -> Self {
        Self {
            ctrl: true,
            ..Self::char(c)
        }
    }

    /// Alt plus a key.
    pub const fn alt(code: KeyCode) -> Self {
        Self {
            alt: true,
            ..Self::plain(code)
        }
    }

    /// Shift plus a non-character key.
    pub const fn shift(code: KeyCode) -> Self {
        Self {
            shift: true,
            ..Self::plain(code)
        }
    }

    /// Whether any modifier is held.
    pub const fn modified(self) -> bool {
        self.ctrl || self.alt || self.shift
    }
}

impl fmt::Display for KeyPress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        if self.shift {
            f.write_str("Shift-")?;
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
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
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
        assert_eq!(KeyPress::alt(KeyCode::Enter).to_string(), "Alt-Enter");
        assert_eq!(KeyPress::shift(KeyCode::Enter).to_string(), "Shift-Enter");
    }
}
