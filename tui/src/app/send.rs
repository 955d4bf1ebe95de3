//! Sending the session screen's prompt: with an idempotency key, resent with the same key
//! after a dropped connection or a lost answer, given back to the prompt box when it cannot be
//! sent; a draft session is created by its first prompt.

use super::App;
use super::SessionView;
use crate::call::{Call, CallError, Scope};
use crate::effect::Effect;
use proto::ops::{Prompt, PromptAccepted, SessionStatus};

/// How often a prompt whose answer was lost in transport is sent again (same key) before the
/// app gives up and puts the text back into the box.
pub(super) const PROMPT_ATTEMPTS: u32 = 3;

/// A prompt sent and not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The text.
    pub text: String,
    /// Its idempotency key (the same on every attempt).
    pub key: String,
    /// The request in flight, if any (none while disconnected).
    pub request: Option<u64>,
    /// Attempts so far.
    pub attempts: u32,
}

/// What became of the prompt after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptFailed {
    /// The failure was of another request (an older one, or another session's).
    NotAwaited,
    /// Lost in transport: the same key makes a resend safe, so it goes out again.
    WillResend,
    /// Refused, or too many attempts: the text is back in the prompt box.
    GivenBack,
}

impl SessionView {
    /// Whether `request` is the prompt (or the draft's `session_create`) in flight.
    fn awaits(&self, request: u64) -> bool {
        self.outbox
            .as_ref()
            .is_some_and(|o| o.request == Some(request))
    }

    /// The prompt of `request` was accepted: the session is working.
    pub fn prompt_accepted(&mut self, request: u64) {
        if self.awaits(request) {
            self.outbox = None;
            self.status = SessionStatus::Busy;
        }
    }

    /// The prompt of `request` was queued by the relay (the host is offline).
    pub fn prompt_queued(&mut self, request: u64) {
        if self.awaits(request) {
            self.outbox = None;
        }
    }

    /// The prompt of `request` failed with `e`: kept to send again, or given back.
    pub fn prompt_failed(&mut self, request: u64, e: &CallError) -> PromptFailed {
        if !self.awaits(request) {
            return PromptFailed::NotAwaited;
        }
        let Some(out) = self.outbox.as_mut() else {
            return PromptFailed::NotAwaited;
        };
        out.request = None;
        if e.code.is_none() && out.attempts < PROMPT_ATTEMPTS {
            return PromptFailed::WillResend;
        }
        let text = out.text.clone();
        self.outbox = None;
        if self.editor.is_empty() {
            self.editor.set_text(&text);
        }
        self.focus = true;
        PromptFailed::GivenBack
    }
}

impl App {
    pub(super) fn send_prompt(&mut self, fx: &mut Vec<Effect>) {
        let Some(view) = self.stack.session.as_ref() else {
            return;
        };
        let text = view.editor.text();
        if text.trim().is_empty() {
            return;
        }
        if view.outbox.is_some() {
            self.notify("still sending the previous prompt", false);
            return;
        }
        let key = self.idempotency_key();
        self.history.push(&text);
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        view.editor.clear();
        view.follow_bottom();
        view.outbox = Some(Outgoing {
            text,
            key,
            request: None,
            attempts: 0,
        });
        if !self.is_connected() {
            self.notify(
                "not connected: the prompt goes out when the connection is back",
                false,
            );
        }
        self.flush_outbox(fx);
    }

    /// Sends the pending prompt (again, with the same key) if connected.
    pub(super) fn flush_outbox(&mut self, fx: &mut Vec<Effect>) {
        let Some((scope, call)) = self.stack.session.as_ref().and_then(|v| {
            let out = v.outbox.as_ref().filter(|o| o.request.is_none())?;
            // A session not created yet (`n`) is created first; the prompt follows.
            if v.id.is_draft() {
                let create = Call::SessionCreate(proto::ops::CreateSession::default());
                return Some((Scope::workspace(&v.host, v.workspace.as_str()), create));
            }
            let prompt = Prompt {
                text: out.text.clone(),
                idempotency_key: out.key.clone(),
                model: v.pick.model.clone(),
                agent: v.pick.agent.clone(),
            };
            Some((v.scope(), Call::Prompt(prompt)))
        }) else {
            return;
        };
        let id = self.request(scope, call, fx);
        if let Some(out) = self.stack.session.as_mut().and_then(|v| v.outbox.as_mut()) {
            out.request = id;
            if id.is_some() {
                out.attempts += 1;
            }
        }
    }

    pub(super) fn prompt_accepted(&mut self, request: u64, _accepted: &PromptAccepted) {
        if let Some(view) = self.stack.session.as_mut() {
            view.prompt_accepted(request);
        }
    }

    /// The host is offline: the relay keeps the prompt and delivers it once when it is back.
    pub(super) fn prompt_queued(&mut self, request: u64, queued: &proto::queue::Queued) {
        if let Some(view) = self.stack.session.as_mut() {
            view.prompt_queued(request);
        }
        let line = crate::queue_cli::queued_line(queued, self.now_ms);
        self.notify(line, false);
    }

    pub(super) fn prompt_failed(&mut self, request: u64, e: &CallError) {
        let connected = self.is_connected();
        let Some(view) = self.stack.session.as_mut() else {
            return;
        };
        match view.prompt_failed(request, e) {
            PromptFailed::NotAwaited => {}
            // Resent on reconnect, or on the next tick if the connection is still up.
            PromptFailed::WillResend if connected => {
                self.notify(format!("prompt not confirmed ({e}); resending"), true);
            }
            PromptFailed::WillResend => {}
            PromptFailed::GivenBack => self.notify(format!("prompt not sent: {e}"), true),
        }
    }

    /// On a tick: resend a prompt whose answer was lost while the connection stayed up.
    pub(super) fn session_tick(&mut self, fx: &mut Vec<Effect>) {
        self.flush_outbox(fx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::session::SessionRef;
    use proto::ids::{HostId, SessionId, WorkspaceName};
    use proto::wire_error::ErrorCode;

    fn sending(request: u64, attempts: u32) -> SessionView {
        let demo = WorkspaceName::try_from("demo").expect("valid");
        let id = SessionRef::Id(SessionId::try_from("ses_1").expect("valid"));
        let mut v = SessionView::new(&HostId::from("box"), demo, id, "t");
        v.outbox = Some(Outgoing {
            text: "fix it".into(),
            key: "k".into(),
            request: Some(request),
            attempts,
        });
        v
    }

    #[test]
    fn the_session_view_keeps_a_lost_prompt_and_gives_a_refused_one_back() {
        let lost = CallError::transport("stream reset");
        let mut v = sending(5, 1);
        assert_eq!(v.prompt_failed(4, &lost), PromptFailed::NotAwaited);
        assert_eq!(v.prompt_failed(5, &lost), PromptFailed::WillResend);
        assert!(v.outbox.as_ref().is_some_and(|o| o.request.is_none()));
        assert!(v.editor.is_empty(), "kept to resend, not given back");

        let mut v = sending(5, PROMPT_ATTEMPTS);
        assert_eq!(v.prompt_failed(5, &lost), PromptFailed::GivenBack);
        assert_eq!(v.editor.text(), "fix it", "too many attempts");

        let mut v = sending(5, 1);
        let refused = CallError::refused(ErrorCode::Forbidden, "viewer");
        assert_eq!(v.prompt_failed(5, &refused), PromptFailed::GivenBack);
        assert!(v.outbox.is_none() && v.focus);

        let mut v = sending(5, 1);
        v.prompt_accepted(5);
        assert!(v.outbox.is_none());
        assert_eq!(v.status, SessionStatus::Busy);
    }
}
