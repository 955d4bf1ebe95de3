//! The attention panel: everything waiting for a human across the workspaces being watched
//! (permission requests, questions, failed OpenCode, sessions that finished since you looked),
//! and answering permission requests from it or from the session screen.

mod answer;

use super::{App, Screen};
use crate::action::Action;
use crate::call::{Call, Scope, WatchKey};
use crate::effect::Effect;
use crate::view::text::sanitize;
use proto::ops::{
    OpencodeInfo, OpencodeState, Pending, PermissionAnswer, PermissionReply, PermissionRequest,
    QuestionReply, QuestionRequest,
};
use proto::text::RemoteText;
use std::collections::HashMap;

/// OpenCode's error name for a turn the operator aborted (not news: they did it).
pub const ABORTED: &str = "MessageAbortedError";

/// What an item is about.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// OpenCode asks permission for a tool call.
    Permission(PermissionRequest),
    /// The model asks a question.
    Question(QuestionRequest),
    /// The workspace's OpenCode gave up restarting.
    OpencodeFailed {
        /// Its last error.
        error: Option<RemoteText>,
    },
    /// A session's turn failed (not aborted) while you were elsewhere.
    TurnFailed {
        /// The session.
        session: String,
        /// OpenCode's error name and message.
        error: RemoteText,
    },
    /// A session finished a turn while you were elsewhere.
    Finished {
        /// The session.
        session: String,
    },
}

/// One thing waiting for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Where.
    pub watch: WatchKey,
    /// What.
    pub kind: ItemKind,
    /// When it arrived (local clock, unix ms).
    pub since_ms: u64,
    /// The answer sent and not yet confirmed.
    pub answering: Option<PermissionAnswer>,
    /// Why the last answer failed.
    pub error: Option<RemoteText>,
    /// "Always" was asked for: the box shows what it would allow and waits for confirmation.
    pub confirming_always: bool,
    /// First row of what is asked shown in the request box (long diffs scroll).
    pub scroll: usize,
}

impl Item {
    /// What it is in one line, as the notification hook and `cm-tui attention` say it.
    pub fn notification(&self) -> crate::effect::Notification {
        let first_line = |t: &str| sanitize(t.lines().next().unwrap_or_default());
        let (kind, text) = match &self.kind {
            ItemKind::Permission(p) => {
                let what = p
                    .metadata
                    .get("command")
                    .and_then(serde_json::Value::as_str)
                    .map_or_else(|| p.patterns.join(" "), |c| format!("$ {c}"));
                (
                    "permission",
                    format!(
                        "permission {}: {}",
                        first_line(&p.permission),
                        first_line(&what)
                    ),
                )
            }
            ItemKind::Question(q) => {
                let text = q
                    .questions
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|q| q.get("question").or_else(|| q.get("header")))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("the model asks a question");
                ("question", format!("question: {}", first_line(text)))
            }
            ItemKind::OpencodeFailed { error } => (
                "opencode_failed",
                format!(
                    "OpenCode failed: {}",
                    first_line(error.as_deref().unwrap_or("stopped restarting"))
                ),
            ),
            ItemKind::TurnFailed { error, .. } => (
                "turn_failed",
                format!("turn failed: {}", first_line(error.as_str())),
            ),
            ItemKind::Finished { .. } => ("finished", "session finished its turn".to_owned()),
        };
        crate::effect::Notification {
            kind,
            host: self.watch.host.to_string(),
            workspace: self.watch.workspace.clone(),
            session: self.session().map(str::to_owned),
            text,
        }
    }

    /// The session it belongs to, if any.
    pub fn session(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Permission(p) => Some(&p.session),
            ItemKind::Question(q) => Some(&q.session),
            ItemKind::Finished { session } | ItemKind::TurnFailed { session, .. } => Some(session),
            ItemKind::OpencodeFailed { .. } => None,
        }
    }

    /// Urgency order: requests first, then failures, then finished sessions.
    fn rank(&self) -> u8 {
        match self.kind {
            ItemKind::Permission(_) | ItemKind::Question(_) => 0,
            ItemKind::OpencodeFailed { .. } | ItemKind::TurnFailed { .. } => 1,
            ItemKind::Finished { .. } => 2,
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (ItemKind::Permission(a), ItemKind::Permission(b)) => a.id == b.id,
            (ItemKind::Question(a), ItemKind::Question(b)) => a.id == b.id,
            (ItemKind::OpencodeFailed { .. }, ItemKind::OpencodeFailed { .. }) => {
                self.watch == other.watch
            }
            (ItemKind::TurnFailed { session: a, .. }, ItemKind::TurnFailed { session: b, .. })
            | (ItemKind::Finished { session: a }, ItemKind::Finished { session: b }) => {
                self.watch == other.watch && a == b
            }
            _ => false,
        }
    }

    /// The request id, for permissions and questions.
    pub fn request_id(&self) -> Option<&str> {
        match &self.kind {
            ItemKind::Permission(p) => Some(&p.id),
            ItemKind::Question(q) => Some(&q.id),
            _ => None,
        }
    }
}

/// The panel's items and selection, plus session titles for naming them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attention {
    items: Vec<Item>,
    selected: usize,
    titles: HashMap<(WatchKey, String), RemoteText>,
}

impl Attention {
    /// What the notification hook is told about the newest item.
    pub fn newest_notification(&self) -> Option<crate::effect::Notification> {
        self.items
            .iter()
            .max_by_key(|i| i.since_ms)
            .map(Item::notification)
    }

    /// The items, most urgent first.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The selected row.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// A session's title, if known.
    pub fn title(&self, watch: &WatchKey, session: &str) -> Option<&str> {
        self.titles
            .get(&(watch.clone(), session.to_owned()))
            .map(RemoteText::as_str)
    }

    /// Remembers a session's title.
    pub fn set_title(&mut self, watch: &WatchKey, session: &str, title: &str) {
        self.titles
            .insert((watch.clone(), session.to_owned()), RemoteText::new(title));
    }

    /// Adds an item unless the same one is there; returns whether it is new.
    pub fn add(&mut self, item: Item) -> bool {
        if let Some(existing) = self.items.iter_mut().find(|i| i.same(&item)) {
            existing.kind = item.kind;
            return false;
        }
        let at = self
            .items
            .iter()
            .position(|i| i.rank() > item.rank())
            .unwrap_or(self.items.len());
        self.items.insert(at, item);
        if at <= self.selected && self.items.len() > 1 {
            self.selected += 1;
        }
        self.clamp();
        true
    }

    fn retain(&mut self, keep: impl Fn(&Item) -> bool) {
        let before_selected = self.selected;
        let removed_before = self
            .items
            .iter()
            .take(before_selected)
            .filter(|i| !keep(i))
            .count();
        self.items.retain(keep);
        self.selected = before_selected.saturating_sub(removed_before);
        self.clamp();
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.items.len().saturating_sub(1));
    }

    /// Removes the permission request or question `id` (answered).
    pub fn remove_request(&mut self, id: &str) {
        self.retain(|i| i.request_id() != Some(id));
    }

    /// Replaces a workspace's pending requests with `pending`; returns whether any is new.
    pub fn set_pending(&mut self, watch: &WatchKey, pending: Pending, now_ms: u64) -> bool {
        let ids: Vec<&str> = pending
            .permissions
            .iter()
            .map(|p| p.id.as_str())
            .chain(pending.questions.iter().map(|q| q.id.as_str()))
            .collect();
        self.retain(|i| &i.watch != watch || i.request_id().is_none_or(|id| ids.contains(&id)));
        let kinds = pending
            .permissions
            .into_iter()
            .map(ItemKind::Permission)
            .chain(pending.questions.into_iter().map(ItemKind::Question));
        let mut new = false;
        for kind in kinds {
            new |= self.add(Item::new(watch, kind, now_ms));
        }
        new
    }

    /// Tracks a workspace's OpenCode: a failure is an item until it runs again.
    pub fn set_opencode(&mut self, watch: &WatchKey, info: &OpencodeInfo, now_ms: u64) -> bool {
        if info.state == OpencodeState::Failed {
            let kind = ItemKind::OpencodeFailed {
                error: info.last_error.as_deref().map(RemoteText::new),
            };
            self.add(Item::new(watch, kind, now_ms))
        } else {
            self.retain(|i| {
                !(&i.watch == watch && matches!(i.kind, ItemKind::OpencodeFailed { .. }))
            });
            false
        }
    }

    /// The operator looked at a session: its "finished" and "turn failed" items go.
    pub fn seen(&mut self, watch: &WatchKey, session: &str) {
        self.retain(|i| {
            !(&i.watch == watch
                && matches!(&i.kind,
                    ItemKind::Finished { session: s } | ItemKind::TurnFailed { session: s, .. }
                    if s == session))
        });
    }

    /// A session started a new turn: its failed one is no longer news.
    pub fn turn_started(&mut self, watch: &WatchKey, session: &str) {
        self.retain(|i| {
            !(&i.watch == watch
                && matches!(&i.kind, ItemKind::TurnFailed { session: s, .. } if s == session))
        });
    }

    /// The pending permission requests and questions of a session: permissions first (they
    /// hold a tool call), each oldest first.
    pub fn requests_for<'a>(&'a self, watch: &'a WatchKey, session: &'a str) -> Vec<&'a Item> {
        let questions = self.items.iter().filter(move |i| {
            &i.watch == watch && matches!(&i.kind, ItemKind::Question(q) if q.session == session)
        });
        self.permissions_for(watch, session)
            .chain(questions)
            .collect()
    }

    /// The pending permission requests of a session, oldest first.
    pub fn permissions_for<'a>(
        &'a self,
        watch: &'a WatchKey,
        session: &'a str,
    ) -> impl Iterator<Item = &'a Item> + 'a {
        self.items.iter().filter(move |i| {
            &i.watch == watch && matches!(&i.kind, ItemKind::Permission(p) if p.session == session)
        })
    }

    /// Marks the request `id` as answered with `answer`, awaiting confirmation.
    pub(super) fn mark_answering(&mut self, id: &str, answer: PermissionAnswer) {
        if let Some(item) = self.find_request_mut(id) {
            item.answering = Some(answer);
            item.error = None;
        }
    }

    fn find_request_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.items.iter_mut().find(|i| i.request_id() == Some(id))
    }
}

impl Item {
    /// A new item arriving now.
    pub fn new(watch: &WatchKey, kind: ItemKind, now_ms: u64) -> Self {
        Self {
            watch: watch.clone(),
            kind,
            since_ms: now_ms,
            answering: None,
            error: None,
            confirming_always: false,
            scroll: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::HostId;

    fn watch() -> WatchKey {
        WatchKey::new(&HostId::from("h"), "w")
    }

    fn permission(id: &str) -> PermissionRequest {
        PermissionRequest {
            id: id.into(),
            session: "ses_1".into(),
            permission: "bash".into(),
            patterns: vec!["ls".into()],
            metadata: serde_json::Value::Null,
            always: vec![],
        }
    }

    #[test]
    fn requests_come_before_finished_sessions_and_dedupe() {
        let mut a = Attention::default();
        let w = watch();
        assert!(a.add(Item::new(
            &w,
            ItemKind::Finished {
                session: "s".into()
            },
            1
        )));
        assert!(a.add(Item::new(&w, ItemKind::Permission(permission("per_1")), 2)));
        assert!(!a.add(Item::new(&w, ItemKind::Permission(permission("per_1")), 3)));
        assert!(matches!(a.items()[0].kind, ItemKind::Permission(_)));
        assert_eq!(a.items().len(), 2);
        a.remove_request("per_1");
        assert_eq!(a.items().len(), 1);
    }

    #[test]
    fn pending_lists_replace_a_workspaces_requests() {
        let mut a = Attention::default();
        let w = watch();
        a.add(Item::new(
            &w,
            ItemKind::Permission(permission("per_old")),
            1,
        ));
        let new = a.set_pending(
            &w,
            Pending {
                permissions: vec![permission("per_new")],
                questions: vec![],
            },
            2,
        );
        assert!(new);
        let ids: Vec<_> = a.items().iter().filter_map(Item::request_id).collect();
        assert_eq!(ids, ["per_new"]);
    }

    #[test]
    fn opencode_failure_is_an_item_until_it_recovers() {
        let mut a = Attention::default();
        let w = watch();
        let mut info = OpencodeInfo {
            workspace: "w".into(),
            state: OpencodeState::Failed,
            version: None,
            restarts: 3,
            last_error: Some("exit 1".into()),
        };
        assert!(a.set_opencode(&w, &info, 1));
        assert!(!a.set_opencode(&w, &info, 2), "same failure, no new bell");
        info.state = OpencodeState::Ready;
        a.set_opencode(&w, &info, 3);
        assert!(a.items().is_empty());
    }
}
