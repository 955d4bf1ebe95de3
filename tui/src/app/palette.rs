//! The `:` command palette: every action of the screen underneath, by name and description,
//! fuzzy matched as you type; plus `help`, `quit` and `relay NAME` (switch to another relay
//! profile of `tui.toml`). Entries come from the keymap, so the palette cannot offer what the
//! screen does not do.

use super::App;
use super::overlay::Overlay;
use crate::action::Action;
use crate::effect::Effect;
use crate::keymap::{Context, Keymap};

/// Most matches shown (and selectable) at once.
pub const MAX_MATCHES: usize = 12;

/// What an entry does when run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// An action of the screen underneath.
    Action(Action),
    /// Switch to the relay profile with this name.
    Relay(String),
}

/// One line of the palette.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What is typed to find it (`abort`, `relay work`).
    pub name: String,
    /// What it does.
    pub what: String,
    /// The keys that do the same on this screen (empty for commands).
    pub keys: String,
    /// What it runs.
    pub command: Command,
}

/// The palette's state while it is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Palette {
    /// What has been typed.
    pub input: String,
    /// The highlighted match (index into [`matches`]).
    pub selected: usize,
}

/// The palette's name for an action (`help` for the help overlay, else the config name).
fn entry_name(action: Action) -> &'static str {
    match action {
        Action::ToggleHelp => "help",
        a => a.name(),
    }
}

/// Everything the palette offers on `context`'s screen, relays last.
pub fn entries(keymap: &Keymap, context: Context, relays: &[String]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (_, action) in keymap.bindings(context) {
        if action == Action::OpenPalette || out.iter().any(|e| e.command == Command::Action(action))
        {
            continue;
        }
        out.push(Entry {
            name: entry_name(action).to_owned(),
            what: action.description(context).to_owned(),
            keys: keymap.keys_of(context, action),
            command: Command::Action(action),
        });
    }
    for relay in relays {
        out.push(Entry {
            name: format!("relay {relay}"),
            what: format!("switch to the relay profile {relay:?}"),
            keys: String::new(),
            command: Command::Relay(relay.clone()),
        });
    }
    out
}

/// How well `query` matches `text` as a subsequence (case-insensitive), higher is better;
/// `None` when it does not. Consecutive characters and word starts score; gaps cost.
pub fn score(query: &str, text: &str) -> Option<i64> {
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let mut score = 0i64;
    let mut at = 0usize;
    let mut last: Option<usize> = None;
    for q in query
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
    {
        let found = at + text.get(at..)?.iter().position(|&c| c == q)?;
        let word_start = found == 0 || matches!(text.get(found - 1), Some(' ' | '_' | '/' | '-'));
        score += 1;
        if word_start {
            score += 8;
        }
        match last {
            Some(l) if l + 1 == found => score += 5,
            Some(l) => score -= i64::try_from(found - l).unwrap_or(i64::MAX).min(10),
            None => score -= i64::try_from(found).unwrap_or(i64::MAX).min(10),
        }
        last = Some(found);
        at = found + 1;
    }
    Some(score)
}

/// The entries matching `query`, best first (all of them, in order, for an empty query).
pub fn matches<'a>(entries: &'a [Entry], query: &str) -> Vec<&'a Entry> {
    let mut scored: Vec<(i64, usize, &Entry)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            // The name counts double: it is what people type.
            let by_name = score(query, &e.name).map(|s| s * 2);
            let by_text = score(query, &format!("{} {}", e.name, e.what));
            by_name.max(by_text).map(|s| (s, i, e))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, e)| e).collect()
}

impl App {
    /// What the palette offers now (for the screen underneath it).
    pub fn palette_entries(&self) -> Vec<Entry> {
        let mut list = entries(&self.keymap, self.screen_context(), &self.relays);
        // Administration is hidden from lower roles.
        if self
            .admin_role()
            .is_none_or(|r| r < proto::rbac::Role::Admin)
        {
            list.retain(|e| e.command != Command::Action(Action::OpenAdmin));
        }
        list
    }

    /// The open palette, if any.
    pub fn palette(&self) -> Option<&Palette> {
        match self.overlay.as_ref() {
            Some(Overlay::Palette(p)) => Some(p),
            _ => None,
        }
    }

    fn palette_mut(&mut self) -> Option<&mut Palette> {
        match self.overlay.as_mut() {
            Some(Overlay::Palette(p)) => Some(p),
            _ => None,
        }
    }

    /// Closes the palette, giving back what it held.
    fn take_palette(&mut self) -> Option<Palette> {
        match self.overlay.take() {
            Some(Overlay::Palette(p)) => Some(p),
            other => {
                self.overlay = other;
                None
            }
        }
    }

    pub(super) fn open_palette(&mut self) {
        self.overlay = Some(Overlay::Palette(Palette::default()));
    }

    /// Opens the palette with `input` already typed (e.g. `rename ` and the current title).
    pub(super) fn open_palette_with(&mut self, input: &str) {
        self.overlay = Some(Overlay::Palette(Palette {
            input: input.to_owned(),
            selected: 0,
        }));
    }

    /// Keys while the palette is open.
    pub(super) fn palette_key(
        &mut self,
        action: Option<Action>,
        typed: Option<char>,
        fx: &mut Vec<Effect>,
    ) {
        let count = {
            let entries = self.palette_entries();
            let query = self.palette().map_or("", |p| p.input.as_str());
            matches(&entries, query).len().min(MAX_MATCHES)
        };
        let Some(palette) = self.palette_mut() else {
            return;
        };
        if let Some(c) = typed {
            palette.input.push(c);
            palette.selected = 0;
            return;
        }
        match action {
            Some(Action::LeaveInput) => self.overlay = None,
            Some(Action::Quit) => fx.push(Effect::Quit),
            Some(Action::CursorUp) => palette.selected = palette.selected.saturating_sub(1),
            Some(Action::CursorDown) => {
                palette.selected = (palette.selected + 1).min(count.saturating_sub(1));
            }
            Some(Action::DeleteBack) => {
                palette.input.pop();
                palette.selected = 0;
            }
            Some(Action::ClearLine) => {
                palette.input.clear();
                palette.selected = 0;
            }
            Some(Action::Send) => self.run_palette(fx),
            _ => {}
        }
    }

    /// Runs what the palette's input says: `relay NAME` as typed, else the selected match.
    fn run_palette(&mut self, fx: &mut Vec<Effect>) {
        let Some(palette) = self.take_palette() else {
            return;
        };
        let input = palette.input.trim();
        // `rename NEW TITLE` on the sessions screen (what `R` opens).
        if self.screen == super::Screen::Sessions
            && let Some(title) = palette.input.strip_prefix(super::session_manage::RENAME)
        {
            return self.rename_selected(title, fx);
        }
        let typed_relay = input.strip_prefix("relay ").map(|n| n.trim().to_owned());
        let entries = self.palette_entries();
        let selected = matches(&entries, input)
            .get(palette.selected)
            .map(|e| e.command.clone());
        let command = match (typed_relay, selected) {
            (Some(name), _) if self.relays.contains(&name) => Some(Command::Relay(name)),
            (_, Some(found @ Command::Relay(_))) => Some(found),
            // An unknown profile: switch_relay says which ones exist.
            (Some(name), _) => Some(Command::Relay(name)),
            (None, found) => found,
        };
        match command {
            Some(Command::Action(action)) => {
                let context = self.screen_context();
                self.on_action(context, action, fx);
            }
            Some(Command::Relay(name)) => self.switch_relay(&name, fx),
            None => self.notify(
                format!("no command matches “{input}”; Esc closes, ? lists the keys"),
                true,
            ),
        }
    }

    fn switch_relay(&mut self, name: &str, fx: &mut Vec<Effect>) {
        if self.relay.as_deref() == Some(name) {
            self.notify(format!("already on relay {name}"), false);
        } else if self.relays.iter().any(|r| r == name) {
            fx.push(Effect::SwitchRelay(name.to_owned()));
        } else if self.relays.is_empty() {
            self.notify(
                format!("no relay profile {name:?}: add [relays.{name}] to tui.toml"),
                true,
            );
        } else {
            self.notify(
                format!(
                    "no relay profile {name:?} in tui.toml; known: {}",
                    self.relays.join(", ")
                ),
                true,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_scores_prefer_word_starts_and_runs() {
        assert!(score("abt", "abort").is_some());
        assert!(score("xyz", "abort").is_none());
        assert!(score("", "anything").is_some());
        let tight = score("sd", "show_diff").unwrap_or(i64::MIN);
        let loose = score("sd", "session_diff_whatever_words").unwrap_or(i64::MIN);
        assert!(tight >= loose, "{tight} vs {loose}");
        assert!(score("quit", "quit") > score("quit", "quiet time"));
    }

    #[test]
    fn entries_follow_the_keymap_and_matches_rank_them() {
        let relays = vec!["work".to_owned(), "home".to_owned()];
        let list = entries(&Keymap::default(), Context::Session, &relays);
        let abort = list
            .iter()
            .find(|e| e.name == "abort")
            .expect("abort offered on the session screen");
        assert_eq!(abort.keys, "a");
        assert!(list.iter().all(|e| e.name != "open_palette"));
        assert!(list.iter().any(|e| e.name == "help"));
        assert!(list.iter().all(|e| e.name != "new_session"), "not here");
        let found = matches(&list, "abrt");
        assert_eq!(found.first().map(|e| e.name.as_str()), Some("abort"));
        let found = matches(&list, "relay wo");
        assert_eq!(found.first().map(|e| e.name.as_str()), Some("relay work"));
        assert_eq!(matches(&list, "").len(), list.len());
    }
}
