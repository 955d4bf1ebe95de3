//! The full-screen terminal: raw mode, the alternate screen and the input modes the app asks
//! for, turned on when the app starts and off again on every way out.

use super::RuntimeError;
use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste,
    EnableFocusChange, EnableMouseCapture, KeyboardEnhancementFlags, PopKeyboardEnhancementFlags,
    PushKeyboardEnhancementFlags,
};
use ratatui::DefaultTerminal;
use std::io::{self, Write};

/// Owns the full-screen terminal and gives it back on drop, whichever way the loop ends.
pub(super) struct Screen {
    pub(super) terminal: DefaultTerminal,
    /// Whether the terminal reports modified keys (Shift-Enter) and must be told to stop.
    enhanced: bool,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").finish_non_exhaustive()
    }
}

impl Screen {
    /// Raw mode + alternate screen; also installs ratatui's restoring panic hook (it chains to
    /// the closed-pipe hook `main` installed first, `cm_client::pipe`).
    pub(super) fn enter() -> Result<Self, RuntimeError> {
        match ratatui::try_init() {
            Ok(terminal) => {
                // Where the terminal supports it, ask for unambiguous modified keys, so
                // Shift-Enter can add a line to the prompt (Alt-Enter works everywhere).
                let enhanced = crossterm::terminal::supports_keyboard_enhancement()
                    .unwrap_or(false)
                    && crossterm::execute!(
                        io::stdout(),
                        PushKeyboardEnhancementFlags(
                            KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
                        )
                    )
                    .is_ok();
                let _ = enter_modes(&mut io::stdout());
                Ok(Self { terminal, enhanced })
            }
            Err(e) => {
                // try_init may have enabled raw mode before failing.
                ratatui::restore();
                Err(RuntimeError::Terminal(e))
            }
        }
    }
}

/// The input modes the app turns on besides raw mode and the alternate screen: a paste
/// arrives whole (so its line breaks do not send the prompt), the wheel scrolls the transcript
/// and lists (Shift-drag still selects text in most terminals), and focus changes are reported
/// (the presence signal of the notifications stops while the window is in the background;
/// terminals that do not report them ignore the request).
fn enter_modes(out: &mut impl Write) -> io::Result<()> {
    crossterm::execute!(
        out,
        EnableBracketedPaste,
        EnableMouseCapture,
        EnableFocusChange
    )
}

/// Turns off what [`enter_modes`] and the keyboard enhancement (`enhanced`) turned on. Run on
/// every way out: a normal quit, an error, a signal, and a panic (the screen is dropped while
/// unwinding, after ratatui's hook left the alternate screen).
fn leave_modes(out: &mut impl Write, enhanced: bool) -> io::Result<()> {
    if enhanced {
        crossterm::queue!(out, PopKeyboardEnhancementFlags)?;
    }
    crossterm::execute!(
        out,
        DisableFocusChange,
        DisableMouseCapture,
        DisableBracketedPaste
    )
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = leave_modes(&mut io::stdout(), self.enhanced);
        let _ = self.terminal.show_cursor();
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode turned on is turned off again on the way out (focus reports included), and
    /// the keyboard enhancement only when it was pushed.
    #[test]
    fn leaving_turns_off_every_mode_entering_turned_on() {
        let mut on = Vec::new();
        enter_modes(&mut on).expect("to a buffer");
        let on = String::from_utf8(on).expect("escape sequences");
        for (mode, enable) in [("focus", "\x1b[?1004h"), ("paste", "\x1b[?2004h")] {
            assert!(on.contains(enable), "{mode} not enabled: {on:?}");
        }
        let mut off = Vec::new();
        leave_modes(&mut off, false).expect("to a buffer");
        let off = String::from_utf8(off).expect("escape sequences");
        for (mode, disable) in [
            ("focus", "\x1b[?1004l"),
            ("paste", "\x1b[?2004l"),
            ("mouse", "\x1b[?1000l"),
        ] {
            assert!(off.contains(disable), "{mode} not disabled: {off:?}");
        }
        assert!(!off.contains("\x1b[<1u"), "nothing pushed, nothing popped");
        let mut off = Vec::new();
        leave_modes(&mut off, true).expect("to a buffer");
        assert!(String::from_utf8_lossy(&off).contains("\x1b[<1u"));
    }
}
