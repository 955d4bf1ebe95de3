//! The stream header: the first frame of every request stream after the handshake.
//!
//! The relay parses only this header (never OpenCode payloads), authorizes it once, and then
//! either answers itself or forwards the stream to the target host's agent.

use crate::ids::{HostId, ReqId};
use serde::{Deserialize, Serialize};

/// Every operation a stream can carry. Unknown names from newer peers decode as
/// [`Op::Unknown`] and get a typed `unknown_op` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// List hosts with presence and status (answered by the relay).
    HostList,
    /// Subscribe to host list changes (answered by the relay).
    WatchHosts,
    /// List a host's workspaces with OpenCode state.
    WorkspaceList,
    /// List OpenCode sessions in a workspace.
    SessionList,
    /// Create an OpenCode session.
    SessionCreate,
    /// Delete an OpenCode session.
    SessionDelete,
    /// Rename an OpenCode session (body `RenameSession`).
    SessionRename,
    /// Send a prompt to a session.
    Prompt,
    /// Abort a session's running turn.
    Abort,
    /// Read a session's message history.
    Messages,
    /// Read a session's or the working tree's diff.
    Diff,
    /// List pending permission requests and questions.
    PermissionList,
    /// Answer a permission request.
    PermissionReply,
    /// Answer a question.
    QuestionReply,
    /// Subscribe to a workspace's events.
    WatchEvents,
    /// Start OpenCode in a workspace.
    OpencodeStart,
    /// Stop OpenCode in a workspace.
    OpencodeStop,
    /// OpenCode state in a workspace.
    OpencodeStatus,
    /// Enroll a host.
    HostAdd,
    /// Revoke a host.
    HostRevoke,
    /// Add, remove or change users up to operator.
    UserManage,
    /// The kill switch.
    Kill,
    /// Read the audit trail.
    AuditRead,
    /// Grant admin or owner.
    GrantAdmin,
    /// Change relay settings.
    RelaySettings,
    /// Revoke the credential this connection authenticated with (answered by the relay).
    Logout,
    /// List a folder beneath a workspace root (bounded; symlinks shown, not followed).
    FsList,
    /// Create a folder beneath a workspace root.
    FsMkdir,
    /// Rename a file or folder beneath a workspace root (never the root itself).
    FsRename,
    /// Delete an empty folder beneath a workspace root (never the root itself).
    FsRmdir,
    /// `git status` in a workspace.
    GitStatus,
    /// `git diff` in a workspace.
    GitDiff,
    /// `git log` in a workspace (bounded).
    GitLog,
    /// List branches.
    GitBranchList,
    /// `git add` paths.
    GitAdd,
    /// `git commit`.
    GitCommit,
    /// Create a branch.
    GitBranchCreate,
    /// Switch branches.
    GitCheckout,
    /// `git pull` (can be disabled in the agent's config).
    GitPull,
    /// `git push` (can be disabled in the agent's config).
    GitPush,
    /// List users and their grants (answered by the relay).
    UserList,
    /// List hosts with enrollment details, or rotate a host's key (answered by the relay).
    HostRotate,
    /// List live credentials (answered by the relay).
    CredsList,
    /// Revoke a credential (answered by the relay).
    CredsRevoke,
    /// List the prompts queued for offline hosts (answered by the relay).
    QueueList,
    /// Cancel a queued prompt (answered by the relay).
    QueueCancel,
    /// List a workspace's standing permission grants ("always" answers the agent keeps).
    PermissionGrants,
    /// Revoke a standing permission grant.
    PermissionRevoke,
    /// An operation this build does not know.
    #[serde(other)]
    Unknown,
}

impl Op {
    /// Every known operation (for the matrix test and help texts).
    pub const ALL: [Self; 48] = [
        Self::HostList,
        Self::WatchHosts,
        Self::WorkspaceList,
        Self::SessionList,
        Self::SessionCreate,
        Self::SessionDelete,
        Self::Prompt,
        Self::Abort,
        Self::Messages,
        Self::Diff,
        Self::PermissionList,
        Self::PermissionReply,
        Self::QuestionReply,
        Self::WatchEvents,
        Self::OpencodeStart,
        Self::OpencodeStop,
        Self::OpencodeStatus,
        Self::HostAdd,
        Self::HostRevoke,
        Self::UserManage,
        Self::Kill,
        Self::AuditRead,
        Self::GrantAdmin,
        Self::RelaySettings,
        Self::Logout,
        Self::FsList,
        Self::FsMkdir,
        Self::FsRename,
        Self::FsRmdir,
        Self::GitStatus,
        Self::GitDiff,
        Self::GitLog,
        Self::GitBranchList,
        Self::GitAdd,
        Self::GitCommit,
        Self::GitBranchCreate,
        Self::GitCheckout,
        Self::GitPull,
        Self::GitPush,
        Self::UserList,
        Self::HostRotate,
        Self::CredsList,
        Self::CredsRevoke,
        Self::QueueList,
        Self::QueueCancel,
        Self::PermissionGrants,
        Self::PermissionRevoke,
        Self::SessionRename,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HostList => "host_list",
            Self::WatchHosts => "watch_hosts",
            Self::WorkspaceList => "workspace_list",
            Self::SessionList => "session_list",
            Self::SessionCreate => "session_create",
            Self::SessionDelete => "session_delete",
            Self::Prompt => "prompt",
            Self::Abort => "abort",
            Self::Messages => "messages",
            Self::Diff => "diff",
            Self::PermissionList => "permission_list",
            Self::PermissionReply => "permission_reply",
            Self::QuestionReply => "question_reply",
            Self::WatchEvents => "watch_events",
            Self::OpencodeStart => "opencode_start",
            Self::OpencodeStop => "opencode_stop",
            Self::OpencodeStatus => "opencode_status",
            Self::HostAdd => "host_add",
            Self::HostRevoke => "host_revoke",
            Self::UserManage => "user_manage",
            Self::Kill => "kill",
            Self::AuditRead => "audit_read",
            Self::GrantAdmin => "grant_admin",
            Self::RelaySettings => "relay_settings",
            Self::Logout => "logout",
            Self::FsList => "fs_list",
            Self::FsMkdir => "fs_mkdir",
            Self::FsRename => "fs_rename",
            Self::FsRmdir => "fs_rmdir",
            Self::GitStatus => "git_status",
            Self::GitDiff => "git_diff",
            Self::GitLog => "git_log",
            Self::GitBranchList => "git_branch_list",
            Self::GitAdd => "git_add",
            Self::GitCommit => "git_commit",
            Self::GitBranchCreate => "git_branch_create",
            Self::GitCheckout => "git_checkout",
            Self::GitPull => "git_pull",
            Self::GitPush => "git_push",
            Self::UserList => "user_list",
            Self::HostRotate => "host_rotate",
            Self::CredsList => "creds_list",
            Self::CredsRevoke => "creds_revoke",
            Self::QueueList => "queue_list",
            Self::QueueCancel => "queue_cancel",
            Self::PermissionGrants => "permission_grants",
            Self::PermissionRevoke => "permission_revoke",
            Self::SessionRename => "session_rename",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the relay answers this operation itself rather than forwarding it to an agent.
    pub fn is_relay_local(self) -> bool {
        matches!(
            self,
            Self::HostList
                | Self::WatchHosts
                | Self::Logout
                | Self::HostAdd
                | Self::HostRevoke
                | Self::UserManage
                | Self::Kill
                | Self::AuditRead
                | Self::GrantAdmin
                | Self::RelaySettings
                | Self::UserList
                | Self::HostRotate
                | Self::CredsList
                | Self::CredsRevoke
                | Self::QueueList
                | Self::QueueCancel
        )
    }
}

/// The first frame of a request stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHeader {
    /// What the stream is for.
    pub op: Op,
    /// Client-chosen id, echoed in logs and replies.
    pub req_id: ReqId,
    /// Target host, for forwarded operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostId>,
    /// Target workspace on that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// Target OpenCode session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl StreamHeader {
    /// A header for `op` with no target.
    pub fn new(op: Op, req_id: ReqId) -> Self {
        Self {
            op,
            req_id,
            host: None,
            workspace: None,
            session: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for op in Op::ALL {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
            assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        }
    }

    #[test]
    fn unknown_ops_and_fields_are_tolerated() {
        let h: StreamHeader =
            serde_json::from_str(r#"{"op":"teleport","req_id":9,"future_field":true}"#).unwrap();
        assert_eq!(h.op, Op::Unknown);
        assert_eq!(h.req_id, ReqId(9));
    }

    #[test]
    fn header_golden_json() {
        let mut h = StreamHeader::new(Op::HostList, ReqId(1));
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"op":"host_list","req_id":1}"#
        );
        h.host = Some(HostId::from("box"));
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"op":"host_list","req_id":1,"host":"box"}"#
        );
    }
}
