//! Where input goes: the context the keys are in (overlays first, then the screen on top),
//! and the routing of keys, scroll and paste to the screen or overlay that owns them.

use super::list::ListNav;
use super::overlay::Overlay;
use super::{App, CHROME_ROWS, ConnState, Screen};
use crate::action::Action;
use crate::effect::Effect;
use crate::event::KeyPress;
use crate::keymap::Context;

impl App {
    /// Where keys go now.
    pub fn context(&self) -> Context {
        match self.overlay.as_ref() {
            Some(Overlay::Clone) if self.clone.as_ref().is_some_and(|c| !c.editing()) => {
                Context::CloneProgress
            }
            Some(Overlay::Folders) if self.folders.as_ref().is_some_and(|f| f.naming()) => {
                Context::FolderName
            }
            Some(o) => o.context(),
            None => self.screen_context(),
        }
    }

    /// Where keys go under the help overlay (what the overlay describes).
    pub fn screen_context(&self) -> Context {
        if self.attention_open {
            return Context::Attention;
        }
        let typing = |nav: Option<&ListNav>| nav.is_some_and(ListNav::typing);
        match self.screen {
            Screen::Hosts if self.stack.hosts.nav.typing() => Context::Filter,
            Screen::Hosts => Context::Hosts,
            Screen::Workspaces if typing(self.stack.workspaces.as_ref().map(|w| &w.nav)) => {
                Context::Filter
            }
            Screen::Workspaces => Context::Workspaces,
            Screen::Sessions if typing(self.stack.sessions.as_ref().map(|s| &s.nav)) => {
                Context::Filter
            }
            Screen::Sessions => Context::Sessions,
            Screen::Session if self.stack.session.as_ref().is_some_and(|s| s.focus) => {
                Context::Prompt
            }
            Screen::Session => Context::Session,
            Screen::Diff => Context::Diff,
            Screen::Admin if self.stack.admin.as_ref().is_some_and(|a| a.input.is_some()) => {
                Context::AdminInput
            }
            Screen::Admin => Context::Admin,
        }
    }

    pub(super) fn on_key(&mut self, key: KeyPress, fx: &mut Vec<Effect>) {
        let context = self.context();
        let action = self.keymap.action_for(context, key);
        let typed = self.keymap.typed_char(context, key);
        match context {
            Context::Help => match action {
                Some(Action::ToggleHelp) => self.overlay = None,
                // The renderer stops at the last row.
                Some(Action::SelectNext) => self.help_top = self.help_top.saturating_add(1),
                Some(Action::SelectPrev) => self.help_top = self.help_top.saturating_sub(1),
                Some(Action::Quit) => fx.push(Effect::Quit),
                _ => {}
            },
            Context::Filter => match action {
                Some(Action::Quit) => fx.push(Effect::Quit),
                Some(a @ (Action::CursorUp | Action::CursorDown)) => self.move_selection(a),
                _ => self.edit_filter(action, typed),
            },
            Context::Prompt => self.prompt_key(action, typed, fx),
            Context::Palette => self.palette_key(action, typed, fx),
            Context::AdminInput => self.admin_input_key(action, typed, fx),
            Context::Question => {
                if let Some(action) = action {
                    self.question_action(action, fx);
                }
            }
            Context::ModelPicker => {
                if let Some(action) = action {
                    self.model_picker_action(action, fx);
                }
            }
            Context::CloneForm | Context::CloneProgress => self.clone_key(action, typed, fx),
            Context::Folders | Context::FolderName => self.folders_key(action, typed, fx),
            Context::Templates => {
                if let Some(action) = action {
                    self.templates_action(action, fx);
                }
            }
            Context::Ports => {
                if let Some(action) = action {
                    self.ports_action(action, fx);
                }
            }
            Context::Notify => {
                if let Some(action) = action {
                    self.notify_action(action, fx);
                }
            }
            _ => {
                if let Some(action) = action {
                    self.on_action(context, action, fx);
                }
            }
        }
    }

    /// The mouse wheel scrolls what is under the keys: the transcript or diff by a few rows,
    /// a list or the attention panel by one row. Ignored under the help and the palette.
    pub(super) fn on_scroll(&mut self, up: bool, fx: &mut Vec<Effect>) {
        let (context, notches) = match self.context() {
            Context::Help
            | Context::Palette
            | Context::Question
            | Context::ModelPicker
            | Context::CloneForm
            | Context::CloneProgress
            | Context::FolderName
            | Context::AdminInput => return,
            Context::Prompt => (Context::Session, 3),
            Context::Filter => (self.list_context(), 1),
            c @ (Context::Session | Context::Diff) => (c, 3),
            c => (c, 1),
        };
        let action = if up {
            Action::SelectPrev
        } else {
            Action::SelectNext
        };
        for _ in 0..notches {
            self.on_action(context, action, fx);
        }
    }

    /// The list screen's own context (under its filter).
    pub(super) fn list_context(&self) -> Context {
        match self.screen {
            Screen::Workspaces => Context::Workspaces,
            Screen::Sessions => Context::Sessions,
            _ => Context::Hosts,
        }
    }

    /// Pasted text goes into the prompt box (line breaks kept), or the first line into the
    /// filter, the palette or the admin input line.
    pub(super) fn on_paste(&mut self, text: &str) {
        match self.context() {
            Context::Prompt => {
                if let Some(view) = self.stack.session.as_mut() {
                    view.editor.paste(text);
                }
            }
            Context::Filter => {
                let line = text.lines().next().unwrap_or_default();
                for c in line.chars().filter(|c| !c.is_control()) {
                    self.edit_filter(None, Some(c));
                }
            }
            Context::CloneForm => {
                if let Some(form) = self.clone.as_mut() {
                    form.paste(text);
                }
            }
            Context::FolderName => {
                let line = text.lines().next().unwrap_or_default();
                for c in line.chars().filter(|c| !c.is_control()) {
                    if let Some(p) = self.folders.as_mut() {
                        p.update(None, Some(c));
                    }
                }
            }
            Context::Palette | Context::AdminInput => {
                // One line: a name, a filter, a confirmation (never a key press).
                let line: String = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect();
                if let Some(Overlay::Palette(p)) = self.overlay.as_mut() {
                    p.input.push_str(&line);
                    p.selected = 0;
                } else if let Some(i) = self.stack.admin.as_mut().and_then(|a| a.input.as_mut()) {
                    i.text.push_str(&line);
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_action(&mut self, context: Context, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Quit => fx.push(Effect::Quit),
            Action::ToggleHelp => {
                self.overlay = Some(Overlay::Help);
                self.help_top = 0;
            }
            Action::OpenPalette => self.open_palette(),
            Action::OpenAdmin => self.open_admin(fx),
            Action::OpenNotifications => self.open_notifications(fx),
            Action::ToggleAttention => self.attention_open = !self.attention_open,
            Action::ToggleBell => {
                self.bell = !self.bell;
                let text = if self.bell { "bell on" } else { "bell off" };
                self.notify(text, false);
            }
            Action::Reconnect => {
                // After a fatal refusal the same credential would be refused again.
                if !matches!(self.conn, ConnState::Offline { .. }) {
                    self.conn = ConnState::Connecting;
                    self.rtt = None;
                    fx.push(Effect::Reconnect);
                }
            }
            _ => match context {
                Context::Hosts => self.hosts_action(action, fx),
                Context::Workspaces if action == Action::CloneRepo => self.open_clone(),
                Context::Workspaces if action == Action::OpenTemplates => {
                    self.open_templates(fx);
                }
                Context::Workspaces if action == Action::OpenFolders => self.open_folders(fx),
                Context::Workspaces if action == Action::OpenPorts => self.open_ports(fx),
                Context::Ports => self.ports_action(action, fx),
                Context::Notify => self.notify_action(action, fx),
                Context::Folders => self.folders_key(Some(action), None, fx),
                Context::Workspaces => self.workspaces_action(action, fx),
                Context::Templates => self.templates_action(action, fx),
                Context::Sessions => self.sessions_action(action, fx),
                Context::Session if action == Action::PickModel => self.ask_models(fx),
                Context::Session => self.session_action(action, fx),
                Context::Diff => self.diff_action(action, fx),
                Context::Attention => self.attention_action(action, fx),
                Context::Admin => self.admin_action(action, fx),
                Context::Prompt
                | Context::Filter
                | Context::Help
                | Context::Palette
                | Context::Question
                | Context::ModelPicker
                | Context::CloneForm
                | Context::CloneProgress
                | Context::FolderName
                | Context::AdminInput => {}
            },
        }
    }

    pub(super) fn nav_mut(&mut self) -> Option<&mut ListNav> {
        match self.screen {
            Screen::Hosts => Some(&mut self.stack.hosts.nav),
            Screen::Workspaces => self.stack.workspaces.as_mut().map(|w| &mut w.nav),
            Screen::Sessions => self.stack.sessions.as_mut().map(|s| &mut s.nav),
            Screen::Session | Screen::Diff | Screen::Admin => None,
        }
    }

    /// Moves the selection of the list on screen.
    pub(super) fn move_selection(&mut self, action: Action) {
        let len = match self.screen {
            Screen::Hosts => self.visible_hosts().len(),
            Screen::Workspaces => self
                .stack
                .workspaces
                .as_ref()
                .map_or(0, |w| w.visible().len()),
            Screen::Sessions => self
                .stack
                .sessions
                .as_ref()
                .map_or(0, |s| s.visible().len()),
            Screen::Session | Screen::Diff | Screen::Admin => 0,
        };
        let page = self.list_page();
        if let Some(nav) = self.nav_mut() {
            nav.move_by(action, len, page);
        }
    }

    pub(super) fn edit_filter(&mut self, action: Option<Action>, typed: Option<char>) {
        if let Some(nav) = self.nav_mut() {
            nav.edit(action, typed);
        }
    }

    /// Rows of a list page.
    pub(super) fn list_page(&self) -> usize {
        usize::from(self.height.saturating_sub(CHROME_ROWS).max(1))
    }
}
