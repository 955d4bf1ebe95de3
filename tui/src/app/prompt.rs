//! The prompt box: a small multi-line editor (cursor by character, not byte) and the history
//! of sent prompts, walked with Up on the first line and Down on the last.

/// Multi-line text with a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    lines: Vec<String>,
    row: usize,
    /// Cursor column in characters.
    col: usize,
}

impl Default for Editor {
    fn default() -> Self {
        Self {
            lines: vec![String::new()],
            row: 0,
            col: 0,
        }
    }
}

fn byte_at(s: &str, col: usize) -> usize {
    s.char_indices().nth(col).map_or(s.len(), |(i, _)| i)
}

impl Editor {
    /// The text, lines joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// The lines.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The cursor: line and character column.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.col)
    }

    /// Whether the character just before the cursor is `c`.
    pub fn before_cursor_is(&self, c: char) -> bool {
        self.col > 0 && self.current().chars().nth(self.col - 1) == Some(c)
    }

    /// Whether there is no text at all.
    pub fn is_empty(&self) -> bool {
        self.lines.len() == 1 && self.lines[0].is_empty()
    }

    /// Replaces the text; the cursor goes to its end.
    pub fn set_text(&mut self, text: &str) {
        self.lines = text.split('\n').map(str::to_owned).collect();
        if self.lines.is_empty() {
            self.lines.push(String::new());
        }
        self.row = self.lines.len() - 1;
        self.col = self.current().chars().count();
    }

    /// Empties the editor.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    fn current(&self) -> &str {
        self.lines.get(self.row).map_or("", String::as_str)
    }

    fn current_mut(&mut self) -> &mut String {
        if self.lines.is_empty() {
            self.lines.push(String::new());
        }
        self.row = self.row.min(self.lines.len() - 1);
        &mut self.lines[self.row]
    }

    fn line_len(&self) -> usize {
        self.current().chars().count()
    }

    /// Types `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        let col = self.col;
        let line = self.current_mut();
        let at = byte_at(line, col);
        line.insert(at, c);
        self.col += 1;
    }

    /// Inserts pasted text: line breaks (`\n`, `\r\n`) split lines, tabs become four spaces,
    /// other control characters are dropped.
    pub fn paste(&mut self, text: &str) {
        for c in text.replace("\r\n", "\n").chars() {
            match c {
                '\n' | '\r' => self.newline(),
                '\t' => (0..4).for_each(|_| self.insert(' ')),
                c if c.is_control() => {}
                c => self.insert(c),
            }
        }
    }

    /// Splits the line at the cursor.
    pub fn newline(&mut self) {
        let col = self.col;
        let line = self.current_mut();
        let at = byte_at(line, col);
        let rest = line.split_off(at);
        self.lines.insert(self.row + 1, rest);
        self.row += 1;
        self.col = 0;
    }

    /// Deletes the character before the cursor (joining lines at a line start).
    pub fn backspace(&mut self) {
        if self.col > 0 {
            let col = self.col;
            let line = self.current_mut();
            let at = byte_at(line, col - 1);
            line.remove(at);
            self.col -= 1;
        } else if self.row > 0 {
            let line = self.lines.remove(self.row);
            self.row -= 1;
            self.col = self.line_len();
            self.current_mut().push_str(&line);
        }
    }

    /// Deletes the character under the cursor (joining the next line at a line end).
    pub fn delete(&mut self) {
        if self.col < self.line_len() {
            let col = self.col;
            let line = self.current_mut();
            let at = byte_at(line, col);
            line.remove(at);
        } else if self.row + 1 < self.lines.len() {
            let next = self.lines.remove(self.row + 1);
            self.current_mut().push_str(&next);
        }
    }

    /// Deletes the word (and the spaces after it) before the cursor.
    pub fn delete_word(&mut self) {
        if self.col == 0 {
            self.backspace();
            return;
        }
        let chars: Vec<char> = self.current().chars().collect();
        let mut start = self.col;
        while start > 0 && chars[start - 1].is_whitespace() {
            start -= 1;
        }
        while start > 0 && !chars[start - 1].is_whitespace() {
            start -= 1;
        }
        let col = self.col;
        let line = self.current_mut();
        let (a, b) = (byte_at(line, start), byte_at(line, col));
        line.replace_range(a..b, "");
        self.col = start;
    }

    /// Deletes from the line start to the cursor.
    pub fn clear_line(&mut self) {
        let col = self.col;
        let line = self.current_mut();
        let at = byte_at(line, col);
        line.replace_range(..at, "");
        self.col = 0;
    }

    /// Cursor left (to the previous line's end at a line start).
    pub fn left(&mut self) {
        if self.col > 0 {
            self.col -= 1;
        } else if self.row > 0 {
            self.row -= 1;
            self.col = self.line_len();
        }
    }

    /// Cursor right (to the next line's start at a line end).
    pub fn right(&mut self) {
        if self.col < self.line_len() {
            self.col += 1;
        } else if self.row + 1 < self.lines.len() {
            self.row += 1;
            self.col = 0;
        }
    }

    /// Cursor up a line; false on the first line.
    pub fn up(&mut self) -> bool {
        if self.row == 0 {
            return false;
        }
        self.row -= 1;
        self.col = self.col.min(self.line_len());
        true
    }

    /// Cursor down a line; false on the last line.
    pub fn down(&mut self) -> bool {
        if self.row + 1 >= self.lines.len() {
            return false;
        }
        self.row += 1;
        self.col = self.col.min(self.line_len());
        true
    }

    /// Cursor to the line start.
    pub fn home(&mut self) {
        self.col = 0;
    }

    /// Cursor to the line end.
    pub fn end(&mut self) {
        self.col = self.line_len();
    }
}

/// Most prompts kept in the history.
pub const HISTORY_MAX: usize = 100;

/// Sent prompts, oldest first, and where the operator is while walking them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    entries: Vec<String>,
    /// Index being shown, if walking.
    at: Option<usize>,
    /// What was in the box before walking started.
    draft: String,
}

impl History {
    /// Records a sent prompt (consecutive duplicates once) and stops walking.
    pub fn push(&mut self, text: &str) {
        if self.entries.last().map(String::as_str) != Some(text) {
            self.entries.push(text.to_owned());
            if self.entries.len() > HISTORY_MAX {
                self.entries.remove(0);
            }
        }
        self.at = None;
        self.draft.clear();
    }

    /// The prompts, oldest first.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The next older prompt, given what the box holds now; `None` at the oldest.
    pub fn older(&mut self, current: &str) -> Option<&str> {
        let next = match self.at {
            None if self.entries.is_empty() => return None,
            None => {
                self.draft = current.to_owned();
                self.entries.len() - 1
            }
            Some(0) => return None,
            Some(i) => i - 1,
        };
        self.at = Some(next);
        self.entries.get(next).map(String::as_str)
    }

    /// The next newer prompt, or the draft after the newest; `None` when not walking.
    pub fn newer(&mut self) -> Option<&str> {
        let i = self.at?;
        if i + 1 < self.entries.len() {
            self.at = Some(i + 1);
            self.entries.get(i + 1).map(String::as_str)
        } else {
            self.at = None;
            Some(&self.draft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        for c in s.chars() {
            if c == '\n' {
                e.newline();
            } else {
                e.insert(c);
            }
        }
        e
    }

    #[test]
    fn editing_works_on_characters_not_bytes() {
        let mut e = typed("héllo");
        e.left();
        e.left();
        e.insert('X');
        assert_eq!(e.text(), "hélXlo");
        e.backspace();
        e.backspace();
        assert_eq!(e.text(), "hélo");
        e.home();
        e.delete();
        assert_eq!(e.text(), "élo");
        e.end();
        assert_eq!(e.cursor(), (0, 3));
    }

    #[test]
    fn lines_split_and_join() {
        let mut e = typed("ab\ncd");
        assert_eq!(e.lines(), ["ab", "cd"]);
        e.home();
        e.backspace();
        assert_eq!(e.text(), "abcd");
        assert_eq!(e.cursor(), (0, 2));
        e.newline();
        assert!(e.up());
        assert!(!e.up());
        e.end();
        e.delete();
        assert_eq!(e.text(), "abcd");
    }

    #[test]
    fn paste_keeps_line_breaks_and_drops_controls() {
        let mut e = typed("> ");
        e.paste("one\r\ntwo\tx\u{1b}[2J");
        assert_eq!(e.text(), "> one\ntwo    x[2J");
        assert_eq!(e.cursor(), (1, 11));
    }

    #[test]
    fn word_and_line_deletion() {
        let mut e = typed("fix the  tests");
        e.delete_word();
        assert_eq!(e.text(), "fix the  ");
        e.delete_word();
        assert_eq!(e.text(), "fix ");
        e.clear_line();
        assert!(e.is_empty());
    }

    #[test]
    fn history_walks_back_and_returns_to_the_draft() {
        let mut h = History::default();
        assert_eq!(h.older("x"), None);
        h.push("one");
        h.push("two");
        h.push("two");
        assert_eq!(h.entries(), ["one", "two"]);
        assert_eq!(h.older("draft"), Some("two"));
        assert_eq!(h.older("two"), Some("one"));
        assert_eq!(h.older("one"), None);
        assert_eq!(h.newer(), Some("two"));
        assert_eq!(h.newer(), Some("draft"));
        assert_eq!(h.newer(), None);
    }
}
