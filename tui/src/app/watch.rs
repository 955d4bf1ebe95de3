//! Workspace watches: which are open, the last event number seen on each (so a reconnect
//! resumes without gaps), retrying ended ones with backoff, noticing resyncs and agent
//! restarts, and routing each event to the attention panel and the screens it concerns.

use super::App;
use super::attention::{Item, ItemKind};
use crate::call::{Call, WatchKey};
use crate::effect::Effect;
use proto::event::{Event, EventFrame};
use proto::ops::SessionStatus;

/// First wait before reopening an ended watch; doubles per failure up to [`WATCH_RETRY_MAX_MS`].
pub const WATCH_RETRY_MS: u64 = 2_000;
/// Longest wait before reopening an ended watch.
pub const WATCH_RETRY_MAX_MS: u64 = 30_000;

/// What the app knows about one watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchState {
    /// The last event number applied.
    pub last_seq: Option<u64>,
    /// The agent confirmed the watch on the current connection.
    pub open: bool,
    /// When to try again after it ended.
    pub retry_at_ms: Option<u64>,
    /// Consecutive failures.
    pub failures: u32,
    /// Why it last ended.
    pub error: Option<String>,
}

impl App {
    /// Starts watching `watch` unless already watching it.
    pub(super) fn ensure_watch(&mut self, watch: &WatchKey, fx: &mut Vec<Effect>) {
        if self.watches.contains_key(watch) {
            return;
        }
        self.watches.insert(watch.clone(), WatchState::default());
        if self.is_connected() {
            fx.push(Effect::Watch {
                watch: watch.clone(),
                after_seq: None,
            });
        }
    }

    /// After (re)connecting: reopen every watch where it left off.
    pub(super) fn rewatch_all(&mut self, fx: &mut Vec<Effect>) {
        for (watch, state) in &mut self.watches {
            state.open = false;
            state.retry_at_ms = None;
            fx.push(Effect::Watch {
                watch: watch.clone(),
                after_seq: state.last_seq,
            });
        }
    }

    /// The connection dropped: every watch ended with it.
    pub(super) fn watches_closed(&mut self) {
        for state in self.watches.values_mut() {
            state.open = false;
            state.retry_at_ms = None;
        }
    }

    /// Whether `watch` is open now.
    pub fn watching(&self, watch: &WatchKey) -> bool {
        self.watches.get(watch).is_some_and(|s| s.open)
    }

    pub(super) fn on_watch_started(
        &mut self,
        watch: &WatchKey,
        next_seq: u64,
        fx: &mut Vec<Effect>,
    ) {
        let Some(state) = self.watches.get_mut(watch) else {
            return;
        };
        state.open = true;
        state.failures = 0;
        state.error = None;
        match state.last_seq {
            None => state.last_seq = Some(next_seq.saturating_sub(1)),
            // Numbers went backwards: the agent restarted, its events since are gone.
            Some(last) if next_seq <= last => {
                state.last_seq = Some(next_seq.saturating_sub(1));
                self.resync(watch, fx);
            }
            Some(_) => {}
        }
    }

    pub(super) fn on_watch_frame(
        &mut self,
        watch: &WatchKey,
        frame: EventFrame,
        fx: &mut Vec<Effect>,
    ) {
        let Some(state) = self.watches.get_mut(watch) else {
            return;
        };
        let restarted = state.last_seq.is_some_and(|last| frame.seq <= last);
        state.last_seq = Some(frame.seq);
        if restarted {
            self.resync(watch, fx);
        }
        self.route(watch, frame.event, fx);
    }

    pub(super) fn on_watch_ended(&mut self, watch: &WatchKey, reason: String) {
        let now = self.now_ms;
        let connected = self.is_connected();
        let Some(state) = self.watches.get_mut(watch) else {
            return;
        };
        state.open = false;
        state.failures = state.failures.saturating_add(1);
        let wait = WATCH_RETRY_MS
            .saturating_mul(1 << state.failures.saturating_sub(1).min(8))
            .min(WATCH_RETRY_MAX_MS);
        state.retry_at_ms = connected.then_some(now.saturating_add(wait));
        state.error = Some(reason);
    }

    /// On a tick: reopen ended watches that are due; resend a lost prompt.
    pub(super) fn watch_tick(&mut self, fx: &mut Vec<Effect>) {
        if !self.is_connected() {
            return;
        }
        let now = self.now_ms;
        for (watch, state) in &mut self.watches {
            if state.retry_at_ms.is_some_and(|at| at <= now) {
                state.retry_at_ms = None;
                fx.push(Effect::Watch {
                    watch: watch.clone(),
                    after_seq: state.last_seq,
                });
            }
        }
        self.session_tick(fx);
    }

    /// Events were lost: re-read what the screens show from this workspace.
    fn resync(&mut self, watch: &WatchKey, fx: &mut Vec<Effect>) {
        if self
            .stack
            .sessions
            .as_ref()
            .is_some_and(|s| &s.watch() == watch)
        {
            self.request(watch.scope(), Call::SessionList, fx);
        }
        self.request(watch.scope(), Call::PermissionList, fx);
        if self
            .stack
            .session
            .as_ref()
            .is_some_and(|s| &s.watch() == watch)
        {
            self.reload_history(fx);
        }
    }

    /// Hands an event to everything it concerns.
    fn route(&mut self, watch: &WatchKey, event: Event, fx: &mut Vec<Effect>) {
        let now = self.now_ms;
        match &event {
            Event::Resync { .. } => return self.resync(watch, fx),
            Event::PermissionAsked { request } => {
                let item = Item::new(watch, ItemKind::Permission(request.clone()), now);
                self.raise(item);
            }
            Event::PermissionReplied { request_id, .. }
            | Event::QuestionReplied { request_id, .. } => {
                self.attention.remove_request(request_id)
            }
            Event::QuestionAsked { request } => {
                self.raise(Item::new(watch, ItemKind::Question(request.clone()), now));
            }
            Event::Opencode { info } => self.opencode_changed(&watch.host, info),
            Event::SessionUpdated { session } => {
                self.attention.set_title(watch, &session.id, &session.title);
            }
            Event::SessionStatus {
                session,
                status: SessionStatus::Busy,
            } => {
                self.attention.turn_started(watch, session);
                self.busy.insert((watch.clone(), session.clone()));
            }
            Event::SessionStatus {
                session,
                status: SessionStatus::Retry { .. },
            }
            | Event::TextDelta { session, .. }
            | Event::PartUpdated { session, .. } => {
                self.busy.insert((watch.clone(), session.clone()));
            }
            // A failed turn (an abort is the operator's own doing) is news in place of
            // "finished", unless the operator watched it.
            Event::SessionError {
                session,
                name,
                message,
            } if name != super::attention::ABORTED => {
                self.busy.remove(&(watch.clone(), session.clone()));
                if !self.viewing(watch, session) {
                    let error = if message.is_empty() {
                        name.clone()
                    } else {
                        format!("{name}: {message}")
                    };
                    let kind = ItemKind::TurnFailed {
                        session: session.clone(),
                        error: proto::text::RemoteText::new(&error),
                    };
                    self.raise(Item::new(watch, kind, now));
                }
            }
            Event::SessionIdle { session }
            | Event::SessionStatus {
                session,
                status: SessionStatus::Idle,
            } => {
                // A turn seen running has finished: news, unless the operator watched it.
                let ran = self.busy.remove(&(watch.clone(), session.clone()));
                if ran && !self.viewing(watch, session) {
                    let kind = ItemKind::Finished {
                        session: session.clone(),
                    };
                    self.raise(Item::new(watch, kind, now));
                }
            }
            _ => {}
        }
        if let Some(view) = self.stack.sessions.as_mut().filter(|s| &s.watch() == watch) {
            view.apply(&event);
        }
        let open = self.stack.session.as_ref().filter(|s| &s.watch() == watch);
        if open.is_some() {
            let mine = open.is_some_and(|s| event.session() == Some(s.id.as_str()));
            self.diff_event(&event, mine, fx);
        }
        if let Some(view) = self
            .stack
            .session
            .as_mut()
            .filter(|s| &s.watch() == watch && event.session() == Some(s.id.as_str()))
        {
            view.apply(event);
        }
    }
}
