//! Acting on attention items: answering permission requests and questions from the panel or
//! the session screen, confirming "always", opening what an item is about.

use super::*;

impl App {
    /// Keys on the open attention panel.
    pub(in crate::app) fn attention_action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let len = self.attention.items.len();
        match action {
            Action::SelectPrev => {
                self.attention.selected = self.attention.selected.saturating_sub(1)
            }
            Action::SelectNext => {
                self.attention.selected = (self.attention.selected + 1).min(len.saturating_sub(1));
            }
            Action::Back if self.cancel_always(self.attention.selected) => {}
            Action::Back => self.attention_open = false,
            Action::Dismiss => {
                let i = self.attention.selected;
                if i < len {
                    self.attention.items.remove(i);
                    self.attention.clamp();
                }
            }
            Action::AllowOnce => {
                self.answer_item(self.attention.selected, PermissionAnswer::Once, fx)
            }
            Action::AllowAlways => {
                self.answer_item(self.attention.selected, PermissionAnswer::Always, fx);
            }
            Action::AllowAlwaysThis => self.answer_always_this(self.attention.selected, fx),
            Action::Reject => {
                self.answer_item(self.attention.selected, PermissionAnswer::Reject, fx)
            }
            Action::Open if !self.open_question(self.attention.selected) => self.open_item(fx),
            _ => {}
        }
    }

    /// Answers the item at `index`: a permission with `answer`, a question only by rejecting.
    pub(in crate::app) fn answer_item(
        &mut self,
        index: usize,
        answer: PermissionAnswer,
        fx: &mut Vec<Effect>,
    ) {
        let Some(item) = self.attention.items.get(index) else {
            return;
        };
        if item.answering.is_some() {
            return;
        }
        let (call, session) = match &item.kind {
            ItemKind::Permission(p) => {
                let always_patterns = match answer {
                    // "Always" first shows what it would allow; the second press confirms.
                    PermissionAnswer::Always if !item.confirming_always => {
                        self.confirm_always(index);
                        return;
                    }
                    PermissionAnswer::Always => Some(p.always.clone()),
                    PermissionAnswer::Once | PermissionAnswer::Reject => None,
                };
                (
                    Call::PermissionReply(PermissionReply {
                        request_id: p.id.clone(),
                        answer,
                        message: None,
                        always_patterns,
                    }),
                    p.session.clone(),
                )
            }
            ItemKind::Question(q) if answer == PermissionAnswer::Reject => (
                Call::QuestionReply(QuestionReply {
                    request_id: q.id.clone(),
                    answers: None,
                }),
                q.session.clone(),
            ),
            ItemKind::Question(_) => {
                self.open_question(index);
                return;
            }
            ItemKind::OpencodeFailed { .. }
            | ItemKind::TurnFailed { .. }
            | ItemKind::Finished { .. } => return,
        };
        let scope = Scope::session(&item.watch.host, &item.watch.workspace, &session);
        self.send_answer(index, scope, call, answer, fx);
    }

    fn send_answer(
        &mut self,
        index: usize,
        scope: Scope,
        call: Call,
        answer: PermissionAnswer,
        fx: &mut Vec<Effect>,
    ) {
        if self.act(scope, call, fx).is_some()
            && let Some(item) = self.attention.items.get_mut(index)
        {
            item.answering = Some(answer);
            item.error = None;
            item.confirming_always = false;
        }
    }

    /// Opens the "always" confirmation of the permission request at `index`, unless it offers
    /// nothing to allow always.
    fn confirm_always(&mut self, index: usize) {
        let Some(item) = self.attention.items.get_mut(index) else {
            return;
        };
        let offers = matches!(&item.kind, ItemKind::Permission(p) if !p.always.is_empty() || !p.patterns.is_empty());
        if offers {
            item.confirming_always = true;
        } else {
            self.notify(
                "this request cannot be allowed always; y allows it once",
                true,
            );
        }
    }

    /// `f`: "always", but only for this request's own patterns (this file, this exact
    /// command). Like `A`, it first shows what it would allow.
    pub(in crate::app) fn answer_always_this(&mut self, index: usize, fx: &mut Vec<Effect>) {
        let Some(item) = self.attention.items.get(index) else {
            return;
        };
        if item.answering.is_some() {
            return;
        }
        let ItemKind::Permission(p) = &item.kind else {
            return;
        };
        if !item.confirming_always {
            self.confirm_always(index);
            return;
        }
        if p.patterns.is_empty() {
            self.notify(
                "this request names no file or command; A allows what it offers",
                true,
            );
            return;
        }
        let call = Call::PermissionReply(PermissionReply {
            request_id: p.id.clone(),
            answer: PermissionAnswer::Always,
            message: None,
            always_patterns: Some(p.patterns.clone()),
        });
        let scope = Scope::session(&item.watch.host, &item.watch.workspace, &p.session);
        self.send_answer(index, scope, call, PermissionAnswer::Always, fx);
    }

    /// Esc on a request whose "always" confirmation is open closes it; `false` if none was.
    pub(in crate::app) fn cancel_always(&mut self, index: usize) -> bool {
        match self.attention.items.get_mut(index) {
            Some(item) if item.confirming_always => {
                item.confirming_always = false;
                true
            }
            _ => false,
        }
    }

    /// Scrolls what the request at `index` asks (a long diff) by `delta` rows.
    pub(in crate::app) fn scroll_request(&mut self, index: usize, down: bool) {
        if let Some(item) = self.attention.items.get_mut(index) {
            item.scroll = if down {
                item.scroll.saturating_add(1)
            } else {
                item.scroll.saturating_sub(1)
            };
        }
    }

    /// The index of the request the open session's box shows (its first waiting request).
    pub(in crate::app) fn shown_request(&self) -> Option<usize> {
        let view = self.stack.session.as_ref()?;
        let watch = view.watch();
        let first = self
            .attention
            .requests_for(&watch, view.id.as_str())
            .first()?
            .request_id()?;
        self.attention
            .items
            .iter()
            .position(|i| i.request_id() == Some(first))
    }

    /// Answers the oldest pending permission request of the open session.
    pub(in crate::app) fn answer_in_session(
        &mut self,
        answer: PermissionAnswer,
        fx: &mut Vec<Effect>,
    ) {
        let Some((watch, id)) = self
            .stack
            .session
            .as_ref()
            .map(|s| (s.watch(), s.id.clone()))
        else {
            return;
        };
        let waiting = |question: bool| {
            self.attention.items.iter().position(|i| {
                i.watch == watch
                    && i.answering.is_none()
                    && match &i.kind {
                        ItemKind::Permission(p) => !question && p.session == id.as_str(),
                        ItemKind::Question(q) => question && q.session == id.as_str(),
                        _ => false,
                    }
            })
        };
        // A permission first (it holds a tool call), else a question: y opens its form.
        match waiting(false).or_else(|| waiting(true)) {
            Some(i) => self.answer_item(i, answer, fx),
            None => self.notify(
                "no permission request or question is waiting in this session",
                false,
            ),
        }
    }

    /// A permission or question answer was accepted.
    pub(in crate::app) fn answer_done(&mut self, request_id: &str) {
        self.attention.remove_request(request_id);
    }

    /// A permission or question answer failed; a request that no longer exists goes.
    pub(in crate::app) fn answer_failed(&mut self, request_id: &str, message: &str, gone: bool) {
        if gone {
            self.attention.remove_request(request_id);
            self.notify(format!("already answered or gone: {message}"), true);
            return;
        }
        if let Some(item) = self.attention.find_request_mut(request_id) {
            item.answering = None;
            item.error = Some(RemoteText::new(message));
        }
        self.notify(format!("answer not delivered: {message}"), true);
    }

    /// Enter on an item: go to its session (or its workspace for a failed OpenCode).
    fn open_item(&mut self, fx: &mut Vec<Effect>) {
        let Some(item) = self.attention.items.get(self.attention.selected).cloned() else {
            return;
        };
        self.attention_open = false;
        match item.session() {
            Some(session) => {
                let title = self
                    .attention
                    .title(&item.watch, session)
                    .unwrap_or_default()
                    .to_owned();
                self.go_to_session(&item.watch, session, &title, fx);
            }
            None => {
                self.go_to_workspaces(&item.watch.host, fx);
                if let Some(ws) = self.stack.workspaces.as_mut() {
                    ws.select_name(&item.watch.workspace);
                }
            }
        }
    }

    /// Whether the operator is looking at `session` right now.
    pub(in crate::app) fn viewing(&self, watch: &WatchKey, session: &str) -> bool {
        matches!(self.screen, Screen::Session | Screen::Diff)
            && self
                .stack
                .session
                .as_ref()
                .is_some_and(|s| s.id == session && &s.watch() == watch)
    }

    /// Adds an item, remembering to ring the bell if it is new.
    ///
    /// (The notification for the newest item is built at the end of the update.)
    pub(in crate::app) fn raise(&mut self, item: Item) {
        let before = self.open_session_requests();
        if self.attention.add(item) {
            self.rang = true;
        }
        self.request_takes_the_keys(before);
    }

    /// How many requests wait in the open session.
    pub(in crate::app) fn open_session_requests(&self) -> usize {
        self.stack.session.as_ref().map_or(0, |view| {
            self.attention
                .requests_for(&view.watch(), view.id.as_str())
                .len()
        })
    }

    /// Called after requests may have arrived (`before` = [`Self::open_session_requests`]
    /// until then): if a new one waits in the open session while the prompt box has the keys,
    /// an empty box hands them to the request box (so `y` answers instead of typing "y"); a
    /// draft keeps them, and the operator is told how to answer.
    pub(in crate::app) fn request_takes_the_keys(&mut self, before: usize) {
        if self.open_session_requests() <= before {
            return;
        }
        let Some(view) = self.stack.session.as_ref() else {
            return;
        };
        if self.screen != Screen::Session || !view.focus {
            return;
        }
        if view.editor.is_empty() {
            if let Some(view) = self.stack.session.as_mut() {
                view.focus = false;
            }
        } else {
            self.notify(
                "a request waits in this session: Esc leaves the prompt box, then y, A or r",
                false,
            );
        }
    }
}
