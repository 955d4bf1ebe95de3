//! Every operation of the protocol, defined once: its wire name, who answers it, its body type
//! and its reply type. The list in [`with_operations!`] generates the [`Op`] enum (with
//! [`Op::ALL`], [`Op::as_str`], [`Op::is_relay_local`]), one zero-sized type per operation in
//! [`op`] implementing [`Operation`], and the [`OPERATIONS`] table. Other crates walk the same
//! list: the agent generates its dispatch from it (an agent operation without a handler, or a
//! handler returning another reply type, does not compile) and the clients call
//! `call::<op::X>(…)`, which takes `X`'s body and returns `X`'s reply.
//!
//! # Adding an operation
//! 1. One entry below: `Name = "wire_name", agent|relay, None|Optional|Required BodyType =>
//!    ReplyType;` (`, then ItemType` for a stream). Give it a role in `rbac::required_role` (the
//!    compiler asks) and a row in `docs/protocol.md`'s operation table (a test asks).
//! 2. One handler: for an `agent` operation, `impl Handler for op::Name` in `agent/src/ops/`
//!    (the compiler asks); for a `relay` one, `impl LocalHandler for op::Name` (`LocalStream`
//!    for a stream) in `relay/src/net/` (the compiler asks too).
//! 3. The UI that shows it: `call::<op::Name>(…)` from `cm-tui`.
//!
//! Body kinds: `None` (the client sends no body frame; the type is `()`), `Optional` (one body
//! frame, or the end of the send side without one: the type's `Default`), `Required` (exactly
//! one body frame). Replies are one `Reply<Reply>` frame; a stream (`then Item`) sends its
//! first `Reply<Reply>` frame and then `Item` frames until it ends.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

pub use crate::opcode::{OP_COUNT, Op};

#[macro_use]
mod generate;
#[cfg(test)]
mod tests;

/// Whether and how an operation carries a request body after its stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body frame; nothing further is read.
    None,
    /// One body frame, or the end of the send side without one (the body's default).
    Optional,
    /// Exactly one body frame.
    Required,
}

/// One operation of the protocol, bound to its body and reply types (see the module docs).
pub trait Operation: Copy + Default + Debug + Send + Sync + 'static {
    /// Its wire operation.
    const OP: Op;
    /// Whether it carries a body.
    const BODY: BodyKind;
    /// The request body (`()` for [`BodyKind::None`]).
    type Body: Serialize + DeserializeOwned + Debug + Send + Sync + 'static;
    /// The answer inside the first `Reply` frame.
    type Reply: Serialize + DeserializeOwned + Debug + Send + 'static;

    /// The body a receiver uses when none was sent: `Some(())` for [`BodyKind::None`], the
    /// default for [`BodyKind::Optional`], `None` for [`BodyKind::Required`].
    fn absent_body() -> Option<Self::Body>;
}

/// An operation answered with exactly one `Reply` frame.
pub trait Unary: Operation {}

/// An operation answered with a first `Reply` frame and then a stream of items.
pub trait Streaming: Operation {
    /// Each frame after the first, as it is on the wire.
    type Item: Serialize + DeserializeOwned + Debug + Send + 'static;
}

/// One row of [`OPERATIONS`]: an operation as data (for tests, docs and help texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpInfo {
    /// The operation.
    pub op: Op,
    /// Answered by the relay itself (else forwarded to the host's agent).
    pub relay_local: bool,
    /// Whether it carries a body.
    pub body: BodyKind,
    /// The body type, as written in the list.
    pub body_type: &'static str,
    /// The reply type, as written in the list.
    pub reply_type: &'static str,
    /// For streams, the type of the frames after the first.
    pub item_type: Option<&'static str>,
}

/// The list of operations. Invokes `$callback!` with one entry per operation:
/// `/// docs  Name = "wire", agent|relay, None|Optional|Required Body => Reply $(, then Item)?;`
///
/// Types in the list are written relative to this crate's root modules; a callback in another
/// crate should use only `Name`, the side and whether `then` is present, and reach the types
/// through `proto::op::Name` and [`Operation`].
#[macro_export]
macro_rules! with_operations {
    ($callback:ident) => {
        $callback! {
            /// List hosts with presence and status (answered by the relay).
            HostList = "host_list", relay, None () => host_watch::HostUpdate,
                then message::Reply<host_watch::HostUpdate>;
            /// Subscribe to host list changes (answered by the relay).
            WatchHosts = "watch_hosts", relay, None () => host_watch::HostUpdate,
                then message::Reply<host_watch::HostUpdate>;
            /// List a host's workspaces with OpenCode state.
            WorkspaceList = "workspace_list", agent, None () => Vec<ops::WorkspaceInfo>;
            /// List OpenCode sessions in a workspace.
            SessionList = "session_list", agent, None () => Vec<ops::SessionInfo>;
            /// Create an OpenCode session.
            SessionCreate = "session_create", agent, Optional ops::CreateSession
                => ops::SessionInfo;
            /// Delete an OpenCode session.
            SessionDelete = "session_delete", agent, None () => bool;
            /// Send a prompt to a session (the relay queues it for an offline host).
            Prompt = "prompt", agent, Required ops::Prompt => queue::PromptOutcome;
            /// Abort a session's running turn.
            Abort = "abort", agent, None () => ops::Aborted;
            /// Read a session's message history.
            Messages = "messages", agent, Optional ops::MessagesQuery => Vec<ops::Message>;
            /// Read a session's or the working tree's diff.
            Diff = "diff", agent, Required ops::DiffQuery => Vec<ops::FileDiff>;
            /// List pending permission requests and questions.
            PermissionList = "permission_list", agent, None () => ops::Pending;
            /// Answer a permission request.
            PermissionReply = "permission_reply", agent, Required ops::PermissionReply => bool;
            /// Answer a question.
            QuestionReply = "question_reply", agent, Required ops::QuestionReply => bool;
            /// Subscribe to a workspace's events: the next sequence number, then events.
            WatchEvents = "watch_events", agent, Optional ops::WatchQuery => u64,
                then event::EventFrame;
            /// Start OpenCode in a workspace.
            OpencodeStart = "opencode_start", agent, None () => ops::OpencodeInfo;
            /// Stop OpenCode in a workspace.
            OpencodeStop = "opencode_stop", agent, None () => ops::OpencodeInfo;
            /// OpenCode state in a workspace.
            OpencodeStatus = "opencode_status", agent, None () => ops::OpencodeInfo;
            /// Enroll a host.
            HostAdd = "host_add", relay, Required admin::HostAdd => admin::HostEnrolled;
            /// Revoke a host.
            HostRevoke = "host_revoke", relay, Required admin::HostName => admin::AdminDone;
            /// Add, remove or change users up to operator.
            UserManage = "user_manage", relay, Required admin::UserRequest => admin::AdminDone;
            /// The kill switch.
            Kill = "kill", relay, Required admin::KillTarget => admin::AdminDone;
            /// Read the audit trail.
            AuditRead = "audit_read", relay, Optional admin::AuditQuery
                => Vec<admin::AuditEntry>;
            /// Grant admin or owner.
            GrantAdmin = "grant_admin", relay, Required admin::UserRequest => admin::AdminDone;
            /// Change relay settings (always refused: change `relay.toml`).
            RelaySettings = "relay_settings", relay, None () => ();
            /// Revoke the credential this connection authenticated with (answered by the relay).
            Logout = "logout", relay, None () => bool;
            /// List a folder beneath a workspace root (bounded; symlinks shown, not followed).
            FsList = "fs_list", agent, Optional fs::FsPath => fs::FsListing;
            /// Create a folder beneath a workspace root.
            FsMkdir = "fs_mkdir", agent, Required fs::FsPath => fs::FsDone;
            /// Rename a file or folder beneath a workspace root (never the root itself).
            FsRename = "fs_rename", agent, Required fs::FsRename => fs::FsDone;
            /// Delete an empty folder beneath a workspace root (never the root itself).
            FsRmdir = "fs_rmdir", agent, Required fs::FsPath => fs::FsDone;
            /// `git status` in a workspace.
            GitStatus = "git_status", agent, Optional git::GitScope => git::GitStatus;
            /// `git diff` in a workspace.
            GitDiff = "git_diff", agent, Optional git::GitDiffQuery => git::GitDiff;
            /// `git log` in a workspace (bounded).
            GitLog = "git_log", agent, Optional git::GitLogQuery => git::GitLog;
            /// List branches.
            GitBranchList = "git_branch_list", agent, Optional git::GitScope
                => git::GitBranches;
            /// `git add` paths.
            GitAdd = "git_add", agent, Required git::GitAdd => git::GitStatus;
            /// `git commit`.
            GitCommit = "git_commit", agent, Required git::GitCommit => git::GitCommitted;
            /// Create a branch.
            GitBranchCreate = "git_branch_create", agent, Required git::GitBranchCreate
                => git::GitBranches;
            /// Switch branches.
            GitCheckout = "git_checkout", agent, Required git::GitCheckout => git::GitBranches;
            /// `git pull` (can be disabled in the agent's config).
            GitPull = "git_pull", agent, Optional git::GitRemoteQuery => git::GitOutput;
            /// `git push` (can be disabled in the agent's config).
            GitPush = "git_push", agent, Optional git::GitRemoteQuery => git::GitOutput;
            /// List users and their grants (answered by the relay).
            UserList = "user_list", relay, None () => Vec<admin::UserInfo>;
            /// List hosts with enrollment details, or rotate a host's key (answered by the relay).
            HostRotate = "host_rotate", relay, Required admin::HostRequest
                => admin::HostRotated;
            /// List live credentials (answered by the relay).
            CredsList = "creds_list", relay, Optional admin::CredsQuery => Vec<admin::CredInfo>;
            /// Revoke a credential (answered by the relay).
            CredsRevoke = "creds_revoke", relay, Required admin::CredName => admin::AdminDone;
            /// List the prompts queued for offline hosts (answered by the relay).
            QueueList = "queue_list", relay, None () => queue::QueueList;
            /// Cancel a queued prompt (answered by the relay).
            QueueCancel = "queue_cancel", relay, Required queue::QueueCancel
                => queue::QueueEntry;
            /// List a workspace's standing permission grants ("always" answers the agent keeps).
            PermissionGrants = "permission_grants", agent, None ()
                => Vec<grant::StandingGrant>;
            /// Revoke a standing permission grant.
            PermissionRevoke = "permission_revoke", agent, Required grant::GrantRevoke
                => grant::StandingGrant;
            /// Rename an OpenCode session (body `RenameSession`).
            SessionRename = "session_rename", agent, Required ops::RenameSession
                => ops::SessionInfo;
            /// The models and agents a workspace's OpenCode offers, as the host allows them.
            ModelList = "model_list", agent, None () => ops::ModelCatalog;
            /// `git init` a new or empty folder beneath the root.
            GitInit = "git_init", agent, Required git::GitScope => git::GitInitialized;
            /// `git clone` an allowed URL (`[git] clone_from`) into a new folder: accepted, then
            /// progress until done or failed (closing the stream aborts it).
            GitClone = "git_clone", agent, Required git::GitClone => git::GitCloneStarted,
                then git::GitCloneEvent;
            /// Set an allowlisted key of a repository's own config.
            GitConfig = "git_config", agent, Required git::GitConfigSet => git::GitConfigDone;
            /// List the relay's OpenCode config templates, latest version of each.
            TemplateList = "template_list", relay, None () => Vec<template::TemplateSummary>;
            /// One version of a template (the latest by default).
            TemplateShow = "template_show", relay, Required template::TemplateQuery
                => template::Template;
            /// Publish a new version of a template (admins).
            TemplatePublish = "template_publish", relay, Required template::TemplatePublish
                => template::TemplateSummary;
            /// Apply a stored template version to a workspace (the relay resolves it; the host
            /// merges it under its policy): accepted, then restart progress.
            TemplateApply = "template_apply", agent, Required template::TemplateApply
                => template::TemplateApplied, then template::TemplateApplyEvent;
            /// The MCP servers of a workspace's OpenCode and their status.
            McpList = "mcp_list", agent, None () => Vec<template::McpServerInfo>;
            /// The immediate subfolders of roots that allow subworkspaces (the header's
            /// workspace's, or every root's without one).
            WorkspaceCandidates = "workspace_candidates", agent, None ()
                => workspace::WorkspaceCandidates;
            /// Make a subfolder of the header's workspace (a root with `subworkspaces = true`)
            /// a workspace of its own.
            WorkspaceAdd = "workspace_add", agent, Required workspace::WorkspaceAdd
                => ops::WorkspaceInfo;
            /// Forget a workspace added with `workspace_add` (its OpenCode stops; no file is
            /// touched).
            WorkspaceRemove = "workspace_remove", agent, None () => workspace::WorkspaceRemoved;
            /// TCP ports on the host's loopback or wildcard addresses that a workspace's OpenCode
            /// started or the host lets be forwarded, with their process and workspace (the
            /// header's workspace, if any, narrows the list).
            PortList = "port_list", agent, None () => Vec<forward::ListeningPort>;
            /// One TCP connection to a port on the host's loopback, as the host's `[forward]`
            /// policy allows: connected, then raw bytes both ways (see `forward`).
            PortForward = "port_forward", agent, Required forward::ForwardTarget
                => forward::ForwardOpened, then forward::RawBytes;
            /// Open an end-to-end channel to a zero-trust host (Noise NK; see `trust`): every
            /// later stream to it is sealed with keys only the operator and the host hold.
            E2eOpen = "e2e_open", agent, Required trust::E2eOpen => trust::E2eOpened;
            /// Certificates, revocation lists, host key claims and pending device keys the
            /// relay stores (answered by the relay; it serves them, it cannot make them).
            TrustFetch = "trust_fetch", relay, Optional trust::TrustQuery => trust::TrustBundle;
            /// Store certificates and revocation lists signed on an owner's or admin's laptop
            /// (answered by the relay, which checks the signatures and pushes new lists to
            /// agents).
            TrustPublish = "trust_publish", relay, Required trust::TrustBundle
                => admin::AdminDone;
            /// Subscribe a notification channel of the caller (ntfy topic or webhook;
            /// answered by the relay, which keeps its secret and never shows it).
            NotifyAdd = "notify_add", relay, Required notify::ChannelSpec
                => notify::ChannelInfo;
            /// The caller's notification channels with their last deliveries and failures.
            NotifyList = "notify_list", relay, None () => Vec<notify::ChannelInfo>;
            /// Send a test notification to one of the caller's channels, now.
            NotifyTest = "notify_test", relay, Required notify::ChannelName
                => notify::NotifyTested;
            /// Remove one of the caller's notification channels.
            NotifyRemove = "notify_remove", relay, Required notify::ChannelName => bool;
            /// The caller's TUI has this session on screen (sent every few seconds): no
            /// notification about it meanwhile.
            NotifyFocus = "notify_focus", relay, Required notify::Focus => ();
        }
    };
}

// The modules the list's types are written against.
#[allow(unused_imports)]
use crate::{
    admin, event, forward, fs, git, grant, host_watch, message, notify, ops, queue, template,
    trust, workspace,
};

with_operations!(generate_operations);
