//! What the screens show, as plain rows of text with semantic looks (no terminal types): the
//! transcript with its markdown, the diff, and the layout arithmetic. Both the app (to scroll
//! and to find a block) and `ui` (to draw, mapping looks to colours in `ui::theme`) use it, so
//! they cannot disagree about how many rows something takes.

pub mod clipboard;
pub mod diff;
pub mod markdown;
pub mod permission;
pub mod text;
pub mod transcript;

/// Rows a bordered panel loses to its borders.
pub const BORDER: u16 = 2;

/// Heights of the session screen's panels, top to bottom (the status bar is not included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLayout {
    /// The transcript panel, borders included.
    pub transcript: u16,
    /// The pending request box, borders included (0 when nothing is pending).
    pub permission: u16,
    /// The prompt box, borders included.
    pub prompt: u16,
}

/// Most prompt lines shown at once; longer prompts scroll inside the box.
pub const PROMPT_MAX_LINES: u16 = 6;
/// Smallest request box: one row of what is asked, one of keys, borders.
pub const PERMISSION_HEIGHT: u16 = 4;

/// The request box's rows besides what is asked: the keys line and the borders.
pub const PERMISSION_CHROME: u16 = 1 + BORDER;

/// Splits `height` rows (the screen minus the status bar) for the session screen. The request
/// box wants `request_rows` rows of what is asked (0: nothing waits) and gets at most half the
/// screen; what does not fit scrolls inside it.
pub fn session_layout(height: u16, prompt_lines: usize, request_rows: usize) -> SessionLayout {
    let lines = u16::try_from(prompt_lines)
        .unwrap_or(u16::MAX)
        .clamp(1, PROMPT_MAX_LINES);
    let mut prompt = lines + BORDER;
    let mut permission = if request_rows == 0 {
        0
    } else {
        let wanted = u16::try_from(request_rows)
            .unwrap_or(u16::MAX)
            .saturating_add(PERMISSION_CHROME);
        wanted.clamp(PERMISSION_HEIGHT, (height / 2).max(PERMISSION_HEIGHT))
    };
    // The transcript keeps at least a few rows: shrink the others on tiny terminals.
    let min_transcript = 3 + BORDER;
    if height < min_transcript + prompt + permission {
        let room = height.saturating_sub(min_transcript + prompt);
        permission = if room >= PERMISSION_HEIGHT { room } else { 0 };
    }
    if height < min_transcript + prompt {
        prompt = (1 + BORDER).min(height);
    }
    SessionLayout {
        transcript: height.saturating_sub(prompt + permission),
        permission,
        prompt,
    }
}

/// The text width inside a bordered panel `width` columns wide, with one column of padding on
/// each side.
pub fn inner_width(width: u16) -> usize {
    usize::from(width.saturating_sub(BORDER + 2)).max(1)
}

/// The width of the diff view's file list for a screen `width` columns wide.
pub fn diff_files_width(width: u16) -> u16 {
    (width / 3).clamp(16, 40).min(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_layout_gives_the_rest_to_the_transcript() {
        let l = session_layout(23, 1, 0);
        assert_eq!((l.transcript, l.permission, l.prompt), (20, 0, 3));
        let l = session_layout(23, 10, 1);
        assert_eq!((l.transcript, l.permission, l.prompt), (11, 4, 8));
        let l = session_layout(23, 1, 3);
        assert_eq!(l.permission, 6, "a command and its folder fit");
        let l = session_layout(23, 1, 40);
        assert_eq!(
            l.permission, 11,
            "a long diff gets half the screen and scrolls"
        );
        let l = session_layout(14, 3, 40);
        assert_eq!(
            (l.transcript, l.permission, l.prompt),
            (5, 4, 5),
            "small terminals shrink the box to one row before dropping it"
        );
        let l = session_layout(8, 3, 1);
        assert_eq!(l.permission, 0, "tiny terminals drop the box first");
        assert_eq!(l.transcript + l.prompt, 8);
        let l = session_layout(2, 3, 1);
        assert!(l.transcript + l.prompt + l.permission <= 2);
    }
}
