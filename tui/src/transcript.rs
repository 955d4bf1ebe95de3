//! One session's conversation as the app knows it: the history read with `messages`, kept
//! current by the workspace's events (text deltas appended in order, whole parts replacing
//! what the deltas built, tool state changes), plus which blocks the operator expanded.

use proto::event::Event;
use proto::ids::MessageId;
use proto::ops::{Message, Part};
use std::collections::HashSet;

/// Whether `id` is a valid message id.
fn valid_message_id(id: &str) -> bool {
    MessageId::try_from(id).is_ok()
}

/// The conversation of one session.
///
/// Every message carries a revision, unique across the transcript and changed whenever the
/// message (or the expansion of one of its blocks) changes, so a layout cache can tell which
/// messages to lay out again (`view::transcript::Layout`).
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    messages: Vec<Message>,
    /// Part ids of expanded tool calls and reasoning blocks (collapsed by default).
    expanded: HashSet<String>,
    /// The revision of each message (same order as `messages`).
    revs: Vec<u64>,
    /// The next revision handed out.
    next_rev: u64,
}

/// Equal when the same conversation is shown the same way (revisions are bookkeeping).
impl PartialEq for Transcript {
    fn eq(&self, other: &Self) -> bool {
        self.messages == other.messages && self.expanded == other.expanded
    }
}

/// The id of a part.
pub fn part_id(part: &Part) -> &str {
    match part {
        Part::Text { id, .. }
        | Part::Reasoning { id, .. }
        | Part::Tool { id, .. }
        | Part::Patch { id, .. }
        | Part::Other { id, .. } => id,
    }
}

/// Whether a part is drawn as a collapsible block.
pub fn is_block(part: &Part) -> bool {
    matches!(part, Part::Reasoning { .. } | Part::Tool { .. })
}

impl Transcript {
    /// A transcript from a session's history (oldest first).
    pub fn from_history(messages: Vec<Message>) -> Self {
        let mut t = Self::default();
        t.replace_history(messages);
        t
    }

    /// Replaces the history, keeping what the operator expanded. Messages whose id is not a
    /// valid [`MessageId`] are left out (the boundary where message ids are decoded).
    pub fn replace_history(&mut self, mut messages: Vec<Message>) {
        messages.retain(|m| valid_message_id(&m.id));
        self.messages = messages;
        let start = self.next_rev;
        self.next_rev += self.messages.len() as u64;
        self.revs = (start..self.next_rev).collect();
    }

    /// The revision of each message, oldest first.
    pub fn revisions(&self) -> &[u64] {
        &self.revs
    }

    /// Marks message `index` as changed.
    fn bump(&mut self, index: usize) {
        if let Some(rev) = self.revs.get_mut(index) {
            *rev = self.next_rev;
            self.next_rev += 1;
        }
    }

    /// The messages, oldest first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Whether a part with this id is known.
    pub fn has_part(&self, id: &str) -> bool {
        self.messages
            .iter()
            .flat_map(|m| m.parts.iter())
            .any(|p| part_id(p) == id)
    }

    /// Part ids of the collapsible blocks, in display order.
    pub fn blocks(&self) -> Vec<&str> {
        self.messages
            .iter()
            .flat_map(|m| m.parts.iter())
            .filter(|p| is_block(p))
            .map(part_id)
            .collect()
    }

    /// Whether the block with this part id is expanded.
    pub fn is_expanded(&self, id: &str) -> bool {
        self.expanded.contains(id)
    }

    /// Expands or collapses a block.
    pub fn toggle(&mut self, id: &str) {
        if !self.expanded.remove(id) {
            self.expanded.insert(id.to_owned());
        }
        if let Some(index) = self
            .messages
            .iter()
            .position(|m| m.parts.iter().any(|p| part_id(p) == id))
        {
            self.bump(index);
        }
    }

    /// The message with this id (created at the end if new), marked as changed.
    fn message_mut(&mut self, id: &str, role: &str) -> &mut Message {
        // Events nearly always concern the newest messages: search from the end.
        let index = match self.messages.iter().rposition(|m| m.id == id) {
            Some(i) => i,
            None => {
                self.messages.push(Message {
                    id: id.to_owned(),
                    role: role.to_owned(),
                    created_ms: 0,
                    finish: None,
                    error: None,
                    parts: Vec::new(),
                });
                self.revs.push(0);
                self.messages.len() - 1
            }
        };
        self.bump(index);
        &mut self.messages[index]
    }

    /// Applies one event of this session; returns whether anything changed. An event about a
    /// message whose id is not a valid [`MessageId`] changes nothing.
    pub fn apply(&mut self, event: &Event) -> bool {
        if let Event::MessageUpdated { message_id, .. }
        | Event::PartUpdated { message_id, .. }
        | Event::TextDelta { message_id, .. } = event
            && !valid_message_id(message_id)
        {
            return false;
        }
        match event {
            Event::MessageUpdated {
                message_id,
                role,
                finish,
                ..
            } => {
                let m = self.message_mut(message_id, role);
                m.role.clone_from(role);
                if finish.is_some() {
                    m.finish.clone_from(finish);
                }
                true
            }
            Event::PartUpdated {
                message_id, part, ..
            } => {
                let m = self.message_mut(message_id, "assistant");
                match m.parts.iter_mut().find(|p| part_id(p) == part_id(part)) {
                    Some(existing) => *existing = part.clone(),
                    None => m.parts.push(part.clone()),
                }
                true
            }
            Event::TextDelta {
                message_id,
                part_id: id,
                delta,
                ..
            } => {
                let m = self.message_mut(message_id, "assistant");
                match m.parts.iter_mut().find(|p| part_id(p) == id) {
                    Some(Part::Text { text, .. } | Part::Reasoning { text, .. }) => {
                        text.push_str(delta);
                    }
                    // A delta for a non-text part: the next whole update will say what it is.
                    Some(_) => return false,
                    None => m.parts.push(Part::Text {
                        id: id.clone(),
                        text: delta.clone(),
                    }),
                }
                true
            }
            Event::SessionError { name, message, .. } => {
                let text = if name == "MessageAbortedError" {
                    "aborted".to_owned()
                } else if message.is_empty() {
                    name.clone()
                } else {
                    format!("{name}: {message}")
                };
                match self.messages.iter().rposition(|m| m.role == "assistant") {
                    Some(i) => {
                        self.messages[i].error = Some(text);
                        self.bump(i);
                    }
                    None => return false,
                }
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(part: &str, text: &str) -> Event {
        Event::TextDelta {
            session: "ses_1".into(),
            message_id: "msg_2".into(),
            part_id: part.into(),
            delta: text.into(),
        }
    }

    fn text_of(t: &Transcript, part: &str) -> Option<String> {
        t.messages()
            .iter()
            .flat_map(|m| m.parts.iter())
            .find_map(|p| match p {
                Part::Text { id, text } if id == part => Some(text.clone()),
                _ => None,
            })
    }

    #[test]
    fn deltas_append_in_order_and_whole_parts_reconcile() {
        let mut t = Transcript::default();
        for d in ["Hel", "lo ", "wor"] {
            assert!(t.apply(&delta("prt_1", d)));
        }
        assert_eq!(text_of(&t, "prt_1").as_deref(), Some("Hello wor"));
        assert_eq!(t.messages()[0].role, "assistant");
        t.apply(&Event::PartUpdated {
            session: "ses_1".into(),
            message_id: "msg_2".into(),
            part: Part::Text {
                id: "prt_1".into(),
                text: "Hello world.".into(),
            },
        });
        assert_eq!(text_of(&t, "prt_1").as_deref(), Some("Hello world."));
        assert_eq!(t.messages()[0].parts.len(), 1, "no duplicate part");
    }

    #[test]
    fn blocks_toggle_and_errors_attach_to_the_answer() {
        let mut t = Transcript::default();
        t.apply(&Event::PartUpdated {
            session: "ses_1".into(),
            message_id: "msg_2".into(),
            part: Part::Reasoning {
                id: "prt_r".into(),
                text: "hmm".into(),
            },
        });
        assert_eq!(t.blocks(), ["prt_r"]);
        assert!(!t.is_expanded("prt_r"), "reasoning starts collapsed");
        t.toggle("prt_r");
        assert!(t.is_expanded("prt_r"));
        t.apply(&Event::SessionError {
            session: "ses_1".into(),
            name: "MessageAbortedError".into(),
            message: String::new(),
        });
        assert_eq!(t.messages()[0].error.as_deref(), Some("aborted"));
        assert!(!t.apply(&Event::SessionIdle {
            session: "ses_1".into()
        }));
    }

    #[test]
    fn messages_with_invalid_ids_are_neither_loaded_nor_created_by_events() {
        let mut t = Transcript::from_history(Vec::new());
        t.replace_history(vec![
            Message {
                id: "../msg".into(),
                role: "user".into(),
                created_ms: 0,
                finish: None,
                error: None,
                parts: Vec::new(),
            },
            Message {
                id: "msg_1".into(),
                role: "user".into(),
                created_ms: 0,
                finish: None,
                error: None,
                parts: Vec::new(),
            },
        ]);
        assert_eq!(t.messages().len(), 1);
        let bad = Event::TextDelta {
            session: "ses_1".into(),
            message_id: "msg\u{1b}[2J".into(),
            part_id: "prt_1".into(),
            delta: "hi".into(),
        };
        assert!(!t.apply(&bad));
        assert_eq!(t.messages().len(), 1, "no message is made for a bad id");
    }
}
