//! Bodies of the offline prompt queue operations the relay answers itself.
//!
//! A `prompt` to a host that is enrolled but offline is kept by the relay and answered with
//! [`PromptOutcome::Queued`] instead of `host_offline`. When the host comes back, the relay
//! re-checks the author's role and forwards the prompt once, as its author, with the same
//! idempotency key. `queue_list` shows the caller's queued prompts; `queue_cancel` drops one.

use crate::ops::PromptAccepted;
use serde::{Deserialize, Serialize};

/// Answer to `prompt`: either the agent accepted it, or the relay queued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptOutcome {
    /// The relay keeps the prompt until the host is back (`{"queued":{…}}`).
    Queued {
        /// The queue entry.
        queued: Queued,
    },
    /// The agent accepted it.
    Accepted(PromptAccepted),
}

/// A prompt the relay keeps for an offline host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Queue entry id (`q_…`), for `queue_cancel`.
    pub id: String,
    /// When it is dropped if the host has not come back, unix ms.
    pub expires_ms: u64,
}

/// Where a queued prompt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for the host.
    Queued,
    /// Being handed to the agent now.
    Delivering,
    /// The agent accepted it.
    Delivered,
    /// The host did not come back in time.
    Expired,
    /// Cancelled by its author.
    Cancelled,
    /// Not delivered: the author's role no longer allows it, or the agent refused it.
    Refused,
}

impl QueueState {
    /// The name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Delivering => "delivering",
            Self::Delivered => "delivered",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "delivering" => Self::Delivering,
            "delivered" => Self::Delivered,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            "refused" => Self::Refused,
            _ => return None,
        })
    }
}

/// One queued prompt as `queue_list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Entry id.
    pub id: String,
    /// Target host.
    pub host: String,
    /// Target workspace.
    pub workspace: String,
    /// Target session.
    pub session: String,
    /// Author.
    pub user: String,
    /// The prompt's first characters.
    pub preview: String,
    /// Queued at, unix ms.
    pub created_ms: u64,
    /// Expires at, unix ms.
    pub expires_ms: u64,
    /// State now.
    pub state: QueueState,
    /// Why it was refused, or the agent's message id once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Answer to `queue_list`: the caller's entries, newest first (finished ones for a while too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueList {
    /// The entries.
    pub entries: Vec<QueueEntry>,
}

/// Body of `queue_cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueCancel {
    /// Entry id.
    pub id: String,
}

/// Answer to `queue_cancel`: the entry after the cancel.
pub type QueueCancelled = QueueEntry;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_outcome_reads_both_answers() {
        let q: PromptOutcome =
            serde_json::from_str(r#"{"queued":{"id":"q_1","expires_ms":5}}"#).unwrap();
        assert_eq!(
            q,
            PromptOutcome::Queued {
                queued: Queued {
                    id: "q_1".into(),
                    expires_ms: 5
                }
            }
        );
        let a: PromptOutcome =
            serde_json::from_str(r#"{"session":"ses_1","message_id":"msg_1"}"#).unwrap();
        assert!(matches!(a, PromptOutcome::Accepted(p) if p.session == "ses_1" && !p.duplicate));
    }

    #[test]
    fn states_round_trip() {
        for s in [
            QueueState::Queued,
            QueueState::Delivering,
            QueueState::Delivered,
            QueueState::Expired,
            QueueState::Cancelled,
            QueueState::Refused,
        ] {
            assert_eq!(QueueState::parse(s.as_str()), Some(s));
        }
        assert_eq!(QueueState::parse("other"), None);
    }
}
