//! Selection and `/` filter of a list screen (hosts, workspaces, sessions), shared by all three.

use crate::action::Action;

/// Where a list's selection is and what it is filtered by. The selection indexes the
/// *filtered* rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListNav {
    selected: usize,
    filter: String,
    typing: bool,
}

/// Whether `text` matches `filter`: every word of the filter occurs in it, ignoring case.
pub fn matches(filter: &str, text: &str) -> bool {
    let text = text.to_lowercase();
    filter
        .split_whitespace()
        .all(|w| text.contains(&w.to_lowercase()))
}

impl ListNav {
    /// The selected row of the filtered list.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The filter text (empty: no filter).
    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Whether the filter is being typed.
    pub fn typing(&self) -> bool {
        self.typing
    }

    /// Selects row `index` (clamped later by [`Self::clamp`]).
    pub fn select(&mut self, index: usize) {
        self.selected = index;
    }

    /// Keeps the selection inside a list of `len` rows.
    pub fn clamp(&mut self, len: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
    }

    /// Applies a movement action over `len` rows with pages of `page`; false if `action` is
    /// not a movement.
    pub fn move_by(&mut self, action: Action, len: usize, page: usize) -> bool {
        let last = len.saturating_sub(1);
        let page = page.max(1);
        self.selected = match action {
            Action::SelectPrev | Action::CursorUp => self.selected.saturating_sub(1),
            Action::SelectNext | Action::CursorDown => (self.selected + 1).min(last),
            Action::PageUp => self.selected.saturating_sub(page),
            Action::PageDown => self.selected.saturating_add(page).min(last),
            Action::SelectFirst => 0,
            Action::SelectLast => last,
            _ => return false,
        };
        true
    }

    /// The keys every list screen shares: movement, `/` and `Esc` (which drops a filter
    /// first). Says what happened; the screen acts on [`ListKey::Back`] and [`ListKey::Other`].
    pub fn key(&mut self, action: Action, len: usize, page: usize) -> ListKey {
        if self.move_by(action, len, page) {
            return ListKey::Moved;
        }
        match action {
            Action::Filter => self.start_filter(),
            Action::Back if self.filter.is_empty() => return ListKey::Back,
            Action::Back => {
                self.clear_filter();
            }
            _ => return ListKey::Other,
        }
        ListKey::Handled
    }

    /// Drops a set filter; false if there was none.
    pub fn clear_filter(&mut self) -> bool {
        if self.filter.is_empty() {
            return false;
        }
        self.filter.clear();
        self.typing = false;
        self.selected = 0;
        true
    }

    /// Starts typing the filter (keeps what was there).
    pub fn start_filter(&mut self) {
        self.typing = true;
    }

    /// Handles a key while the filter is typed: a typed character, or a filter action.
    /// Returns whether the filter text changed.
    pub fn edit(&mut self, action: Option<Action>, typed: Option<char>) -> bool {
        let before = self.filter.len();
        match (action, typed) {
            (_, Some(c)) => self.filter.push(c),
            (Some(Action::DeleteBack), _) => {
                self.filter.pop();
            }
            (Some(Action::ClearLine), _) => self.filter.clear(),
            (Some(Action::AcceptFilter), _) => self.typing = false,
            (Some(Action::ClearFilter), _) => {
                self.filter.clear();
                self.typing = false;
            }
            _ => {}
        }
        let changed = self.filter.len() != before;
        if changed {
            self.selected = 0;
        }
        changed
    }
}

/// What a key did to a list ([`ListNav::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKey {
    /// The selection moved.
    Moved,
    /// The filter started or was dropped.
    Handled,
    /// `Esc` with no filter: leave the screen.
    Back,
    /// Not a list key: the screen's own.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_every_word_ignoring_case() {
        assert!(matches("", "anything"));
        assert!(matches("Fix", "fix the tests"));
        assert!(matches("tests fix", "fix the tests"));
        assert!(!matches("fix docs", "fix the tests"));
    }

    #[test]
    fn typing_edits_and_esc_clears() {
        let mut nav = ListNav::default();
        nav.select(3);
        nav.start_filter();
        assert!(nav.edit(None, Some('a')));
        assert_eq!(nav.selected(), 0, "a new filter starts at the top");
        nav.edit(None, Some('b'));
        nav.edit(Some(Action::DeleteBack), None);
        assert_eq!(nav.filter(), "a");
        nav.edit(Some(Action::AcceptFilter), None);
        assert!(!nav.typing());
        assert_eq!(nav.filter(), "a", "Enter keeps the filter");
        nav.start_filter();
        nav.edit(Some(Action::ClearFilter), None);
        assert_eq!((nav.filter(), nav.typing()), ("", false));
    }

    #[test]
    fn list_keys_move_filter_and_leave_in_that_order() {
        let mut nav = ListNav::default();
        assert_eq!(nav.key(Action::SelectNext, 3, 10), ListKey::Moved);
        assert_eq!(nav.selected(), 1);
        assert_eq!(nav.key(Action::Filter, 3, 10), ListKey::Handled);
        assert!(nav.typing());
        nav.edit(None, Some('x'));
        nav.edit(Some(Action::AcceptFilter), None);
        assert_eq!(
            nav.key(Action::Back, 3, 10),
            ListKey::Handled,
            "Esc drops the filter first"
        );
        assert_eq!(nav.filter(), "");
        assert_eq!(nav.key(Action::Back, 3, 10), ListKey::Back);
        assert_eq!(nav.key(Action::Open, 3, 10), ListKey::Other);
    }
}
