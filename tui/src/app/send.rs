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

    fn outbox_for(&mut self, request: u64) -> Option<&mut SessionView> {
        self.stack.session.as_mut().filter(|v| {
            v.outbox
                .as_ref()
                .is_some_and(|o| o.request == Some(request))
        })
    }

    pub(super) fn prompt_accepted(&mut self, request: u64, _accepted: &PromptAccepted) {
        if let Some(view) = self.outbox_for(request) {
            view.outbox = None;
            view.status = SessionStatus::Busy;
        }
    }

    /// The host is offline: the relay keeps the prompt and delivers it once when it is back.
    pub(super) fn prompt_queued(&mut self, request: u64, queued: &proto::queue::Queued) {
        if let Some(view) = self.outbox_for(request) {
            view.outbox = None;
        }
        let line = crate::queue_cli::queued_line(queued, self.now_ms);
        self.notify(line, false);
    }

    pub(super) fn prompt_failed(&mut self, request: u64, e: &CallError) {
        let connected = self.is_connected();
        let Some(view) = self.outbox_for(request) else {
            return;
        };
        let Some(out) = view.outbox.as_mut() else {
            return;
        };
        out.request = None;
        if e.code.is_none() && out.attempts < PROMPT_ATTEMPTS {
            // Lost in transport: the same key makes a resend safe. Resent on reconnect, or on
            // the next tick if the connection is still up.
            if connected {
                self.notify(format!("prompt not confirmed ({e}); resending"), true);
            }
            return;
        }
        let text = out.text.clone();
        view.outbox = None;
        if view.editor.is_empty() {
            view.editor.set_text(&text);
        }
        view.focus = true;
        self.notify(format!("prompt not sent: {e}"), true);
    }

    /// On a tick: resend a prompt whose answer was lost while the connection stayed up.
    pub(super) fn session_tick(&mut self, fx: &mut Vec<Effect>) {
        self.flush_outbox(fx);
    }
}
