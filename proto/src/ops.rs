//! Request and response bodies of the operations the agent serves (forwarded by the relay).
//!
//! Flow of a forwarded stream: operator → relay: [`StreamHeader`](crate::header::StreamHeader)
//! then at most one request body frame; relay → agent: [`ForwardHeader`] then the same body;
//! agent → operator (spliced back by the relay): one [`Reply`](crate::message::Reply) frame, or
//! for `watch_events` first a `Reply<u64>` (the next sequence number, or an error) and then a
//! stream of [`EventFrame`](crate::event::EventFrame)s. The relay never
//! parses the bodies.

use crate::header::StreamHeader;
use crate::ids::{CredId, UserId};
use crate::rbac::Role;
use serde::{Deserialize, Serialize};

/// What the relay sends the agent first on a forwarded stream: the operator's header plus who
/// is asking, so the agent can apply its own limits (defence in depth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardHeader {
    /// The operator's header, verbatim.
    pub header: StreamHeader,
    /// The authenticated user.
    pub principal: UserId,
    /// Their effective role on this host.
    pub role: Role,
    /// The credential they used.
    pub cred_id: CredId,
}

/// Lifecycle of one workspace's `opencode serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpencodeState {
    /// Not running.
    Stopped,
    /// Spawned, waiting for the listening line and a healthy answer.
    Starting,
    /// Serving.
    Ready,
    /// Died; waiting to restart.
    Backoff,
    /// Gave up after repeated crashes.
    Failed,
    /// Being stopped.
    Stopping,
}

/// OpenCode process state of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpencodeInfo {
    /// The workspace.
    pub workspace: String,
    /// Current state.
    pub state: OpencodeState,
    /// OpenCode's version, once known.
    #[serde(default)]
    pub version: Option<String>,
    /// Restarts since the last explicit start.
    #[serde(default)]
    pub restarts: u32,
    /// The last error (crash output, start failure), for operators.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// One workspace as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// Name operators use.
    pub name: String,
    /// Whether the root folder exists and is accessible now.
    pub available: bool,
    /// OpenCode state.
    pub opencode: OpencodeInfo,
    /// The kernel sandbox around this workspace's OpenCode (absent from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
    /// The relay template this workspace's OpenCode config was merged with (absent: none, or
    /// an older agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<crate::template::TemplateRef>,
}

/// What holds a workspace's OpenCode besides its own permission config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// `enforced`, `warn`, `off` or `refused` (enforce asked, the kernel cannot: OpenCode is
    /// not started).
    pub state: String,
    /// One line for operators: why, and what is enforced.
    pub detail: String,
}

/// A session's run state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionStatus {
    /// Waiting for a prompt.
    Idle,
    /// Working on a turn.
    Busy,
    /// Retrying after a model error.
    Retry {
        /// Attempt number.
        #[serde(default)]
        attempt: u32,
        /// OpenCode's message.
        #[serde(default)]
        message: String,
    },
}

/// An OpenCode session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// OpenCode's session id (`ses_…`).
    pub id: String,
    /// Title.
    pub title: String,
    /// Creation time, unix ms.
    pub created_ms: u64,
    /// Last update, unix ms.
    pub updated_ms: u64,
    /// Current status.
    pub status: SessionStatus,
    /// The session this one was started from (a sub-agent's session, from OpenCode's `task`
    /// tool); it belongs to the parent's owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Longest session title passed on, in bytes (longer ones are cut): a session list carries
/// every title of a workspace in one frame.
pub const MAX_TITLE_LEN: usize = 512;

/// Body of `session_create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSession {
    /// Title; OpenCode generates one from the first prompt when absent.
    #[serde(default)]
    pub title: Option<String>,
}

/// Body of `session_rename` (target session in the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameSession {
    /// The new title.
    pub title: String,
}

/// Body of `prompt` (target session in the header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The prompt text.
    pub text: String,
    /// A client-chosen key: a retry with the same key is answered with the first result and is
    /// never sent to OpenCode twice.
    pub idempotency_key: String,
    /// The model for this prompt as `provider/model` (`None`: OpenCode's default). The agent
    /// refuses one its OpenCode does not offer or its host does not allow (see `model_list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The OpenCode agent for this prompt, e.g. `plan` or `build` (`None`: OpenCode's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// Answer to `model_list`: the models and agents a workspace's OpenCode offers, filtered by the
/// host's `[opencode] allowed_models`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCatalog {
    /// Every model an operator may pick, sorted by `provider/model`.
    pub models: Vec<ModelChoice>,
    /// OpenCode's default model as `provider/model`, if it has one.
    #[serde(default)]
    pub default: Option<String>,
    /// The agents a prompt may name (primary agents, not hidden ones), sorted by name.
    #[serde(default)]
    pub agents: Vec<AgentChoice>,
    /// The host's restriction (`[opencode] allowed_models`), empty when it allows all.
    #[serde(default)]
    pub allowed: Vec<String>,
}

/// One model in a [`ModelCatalog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Display name (the model's `name`, else its id).
    #[serde(default)]
    pub name: String,
    /// Whether this is OpenCode's default model.
    #[serde(default)]
    pub default: bool,
}

impl ModelChoice {
    /// `provider/model`.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

/// One agent in a [`ModelCatalog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentChoice {
    /// Name to pass as a prompt's `agent`.
    pub name: String,
    /// OpenCode's description, if any.
    #[serde(default)]
    pub description: Option<String>,
}

/// Answer to `prompt`: accepted; the answer streams as events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptAccepted {
    /// The session.
    pub session: String,
    /// The user message id OpenCode will use (for per-turn diffs).
    pub message_id: String,
    /// Whether this was a retry answered from the idempotency record.
    #[serde(default)]
    pub duplicate: bool,
}

/// Answer to `abort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aborted {
    /// Permission requests of the session that were rejected because of the abort.
    pub rejected_permissions: Vec<String>,
}

/// Body of `messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesQuery {
    /// At most this many of the newest messages.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A message in a session's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Message id (`msg_…`).
    pub id: String,
    /// `user` or `assistant`.
    pub role: String,
    /// Creation time, unix ms.
    pub created_ms: u64,
    /// Why an assistant message ended (`stop`, `tool-calls`), if it did.
    #[serde(default)]
    pub finish: Option<String>,
    /// Error name, if the turn failed (e.g. `MessageAbortedError`).
    #[serde(default)]
    pub error: Option<String>,
    /// Its parts.
    pub parts: Vec<Part>,
}

/// A part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// Part id.
        id: String,
        /// The text.
        text: String,
    },
    /// Model reasoning.
    Reasoning {
        /// Part id.
        id: String,
        /// The text.
        text: String,
    },
    /// A tool call.
    Tool {
        /// Part id.
        id: String,
        /// Tool name (`bash`, `write`, …).
        tool: String,
        /// `pending`, `running`, `completed` or `error`.
        status: String,
        /// Title OpenCode gives the call.
        #[serde(default)]
        title: Option<String>,
        /// Tool input.
        #[serde(default)]
        input: serde_json::Value,
        /// Output, when completed.
        #[serde(default)]
        output: Option<String>,
        /// Error, when failed.
        #[serde(default)]
        error: Option<String>,
    },
    /// Files changed by the turn.
    Patch {
        /// Part id.
        id: String,
        /// Changed files.
        files: Vec<String>,
    },
    /// Any other part type (step markers and future types), kept by name.
    Other {
        /// Part id.
        id: String,
        /// OpenCode's part type.
        kind: String,
    },
}

/// Body of `diff`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum DiffQuery {
    /// The changes of one turn of the header's session (the user message that started it);
    /// without a message id, every turn of the session.
    Session {
        /// User message id.
        #[serde(default)]
        message_id: Option<String>,
    },
    /// Everything uncommitted in the workspace's git working tree.
    Worktree,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Path relative to the workspace.
    pub file: String,
    /// Unified diff.
    pub patch: String,
    /// Added lines.
    pub additions: u64,
    /// Removed lines.
    pub deletions: u64,
    /// `added`, `modified`, `deleted`…
    pub status: String,
}

/// A pending permission request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionRequest {
    /// Request id (`per_…`).
    pub id: String,
    /// The session asking.
    pub session: String,
    /// What is asked (`edit`, `bash`, `webfetch`, `external_directory`…).
    pub permission: String,
    /// Patterns it covers (file paths, commands).
    pub patterns: Vec<String>,
    /// OpenCode's details (the command, the diff of an edit).
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Patterns an `always` answer would approve.
    #[serde(default)]
    pub always: Vec<String>,
}

/// A pending question from the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuestionRequest {
    /// Request id (`que_…`).
    pub id: String,
    /// The session asking.
    pub session: String,
    /// The questions, as OpenCode sends them.
    pub questions: serde_json::Value,
}

/// Answer to `permission_list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Permission requests.
    pub permissions: Vec<PermissionRequest>,
    /// Questions.
    pub questions: Vec<QuestionRequest>,
}

/// An answer to a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionAnswer {
    /// Allow this call.
    Once,
    /// Allow this call and set up a standing grant for the confirmed patterns in this session
    /// (kept by the agent until OpenCode restarts; see [`crate::grant`]). The agent answers
    /// OpenCode "once" and never sends it "always".
    Always,
    /// Refuse; the model is told (with the message).
    Reject,
}

/// Body of `permission_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionReply {
    /// Which request.
    pub request_id: String,
    /// The answer.
    pub answer: PermissionAnswer,
    /// Optional message to the model.
    #[serde(default)]
    pub message: Option<String>,
    /// For `always`: the patterns the operator was shown and confirmed, either the request's
    /// `always` list or its own `patterns` ("always for this file"). Required for `always`;
    /// the agent refuses anything else, so a grant is never wider than what was shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_patterns: Option<Vec<String>>,
}

/// Body of `question_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionReply {
    /// Which question.
    pub request_id: String,
    /// One list of chosen labels per question; `None` rejects the question.
    #[serde(default)]
    pub answers: Option<Vec<Vec<String>>>,
}

/// Body of `watch_events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchQuery {
    /// Resume after this sequence number (events the agent still buffers are replayed).
    #[serde(default)]
    pub after_seq: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_model_and_agent_are_optional_on_the_wire() {
        let old: Prompt = serde_json::from_str(r#"{"text":"hi","idempotency_key":"k1"}"#).unwrap();
        assert_eq!((old.model, old.agent), (None, None));
        let p = Prompt {
            text: "hi".into(),
            idempotency_key: "k1".into(),
            model: Some("mock/m2".into()),
            agent: Some("plan".into()),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"text":"hi","idempotency_key":"k1","model":"mock/m2","agent":"plan"}"#
        );
        assert_eq!(serde_json::from_str::<Prompt>(&json).unwrap(), p);
    }

    #[test]
    fn golden_json() {
        let p = Prompt {
            text: "hi".into(),
            idempotency_key: "k1".into(),
            model: None,
            agent: None,
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"text":"hi","idempotency_key":"k1"}"#
        );
        let d = DiffQuery::Session { message_id: None };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"scope":"session","message_id":null}"#
        );
        assert_eq!(
            serde_json::to_string(&DiffQuery::Worktree).unwrap(),
            r#"{"scope":"worktree"}"#
        );
        let r = PermissionReply {
            request_id: "per_1".into(),
            answer: PermissionAnswer::Once,
            message: None,
            always_patterns: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"request_id":"per_1","answer":"once","message":null}"#
        );
        let s = SessionStatus::Retry {
            attempt: 2,
            message: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"type":"retry","attempt":2,"message":"x"}"#
        );
    }

    #[test]
    fn bodies_tolerate_unknown_fields() {
        let q: CreateSession = serde_json::from_str(r#"{"title":"t","future":1}"#).unwrap();
        assert_eq!(q.title.as_deref(), Some("t"));
        let w: WatchQuery = serde_json::from_str("{}").unwrap();
        assert_eq!(w.after_seq, None);
    }
}
