//! The typed agent calls the full-screen app asks for and their answers, as plain data: the app
//! puts a [`Request`] into an effect, the connection task performs it and hands back a
//! [`Response`] (or a [`CallError`]) in a net event, with the request echoed so the app knows
//! what the answer is for.

use proto::header::Op;
use proto::ids::HostId;
use proto::ops::{
    Aborted, CreateSession, DiffQuery, FileDiff, Message, MessagesQuery, OpencodeInfo, Pending,
    PermissionReply, Prompt, PromptAccepted, QuestionReply, SessionInfo, WorkspaceInfo,
};
use proto::wire_error::ErrorCode;
use std::fmt;

/// Where a call goes: host, and optionally workspace and session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// Host id.
    pub host: HostId,
    /// Workspace name.
    pub workspace: Option<String>,
    /// OpenCode session id.
    pub session: Option<String>,
}

impl Scope {
    /// A host-wide scope.
    pub fn host(host: &HostId) -> Self {
        Self {
            host: host.clone(),
            workspace: None,
            session: None,
        }
    }

    /// A workspace scope.
    pub fn workspace(host: &HostId, workspace: &str) -> Self {
        Self {
            host: host.clone(),
            workspace: Some(workspace.to_owned()),
            session: None,
        }
    }

    /// A session scope.
    pub fn session(host: &HostId, workspace: &str, session: &str) -> Self {
        Self {
            host: host.clone(),
            workspace: Some(workspace.to_owned()),
            session: Some(session.to_owned()),
        }
    }
}

/// One workspace's event subscription.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    /// Host id.
    pub host: HostId,
    /// Workspace name.
    pub workspace: String,
}

impl WatchKey {
    /// The key for `workspace` on `host`.
    pub fn new(host: &HostId, workspace: &str) -> Self {
        Self {
            host: host.clone(),
            workspace: workspace.to_owned(),
        }
    }

    /// The workspace scope of this watch.
    pub fn scope(&self) -> Scope {
        Scope::workspace(&self.host, &self.workspace)
    }
}

impl fmt::Display for WatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.workspace)
    }
}

/// A request-response operation with its body.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `workspace_list`.
    WorkspaceList,
    /// `session_list`.
    SessionList,
    /// `session_create`.
    SessionCreate(CreateSession),
    /// `session_rename` (the session in the scope).
    SessionRename(proto::ops::RenameSession),
    /// `session_delete` (the session in the scope).
    SessionDelete,
    /// `prompt`.
    Prompt(Prompt),
    /// `abort`.
    Abort,
    /// `messages`.
    Messages(MessagesQuery),
    /// `diff`.
    Diff(DiffQuery),
    /// `permission_list`.
    PermissionList,
    /// `permission_reply`.
    PermissionReply(PermissionReply),
    /// `question_reply`.
    QuestionReply(QuestionReply),
    /// `opencode_start`.
    OpencodeStart,
    /// `opencode_stop`.
    OpencodeStop,
    /// `fs_list`: a folder of the workspace (`""` is the root).
    FsList(proto::fs::FsPath),
    /// `git_status` of the workspace.
    GitStatus(proto::git::GitScope),
    /// `permission_grants`: the workspace's standing "always" grants.
    PermissionGrants,
    /// `permission_revoke`.
    PermissionRevoke(proto::grant::GrantRevoke),
    /// `model_list`: the models and agents the workspace's OpenCode offers.
    ModelList,
    /// `template_list`: the relay's templates, each at its latest version (the relay answers
    /// it itself: the scope is not sent).
    TemplateList,
    /// `workspace_candidates`: folders beneath the host's roots that may become workspaces.
    WorkspaceCandidates,
    /// `workspace_add`: a folder beneath the root in the scope becomes a workspace.
    WorkspaceAdd(proto::workspace::WorkspaceAdd),
    /// `workspace_remove`: the workspace in the scope is forgotten (its files stay).
    WorkspaceRemove,
    /// `port_list`: the TCP ports listening on the host, whose they are, which may be
    /// forwarded.
    PortList,
    /// An administration operation the relay answers itself (the scope is not sent).
    Admin(AdminCall),
    /// `notify_focus`: this session is on screen (the relay answers it; no host is named).
    NotifyFocus(proto::notify::Focus),
    /// The caller's notification channels (the relay answers them; no host is named).
    Notify(NotifyCall),
}

/// The notification settings' operations (bodies in `proto::notify`), as `cm-tui notify`
/// makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyCall {
    /// `notify_list`.
    List,
    /// `notify_test` of the channel with this name.
    Test(String),
    /// `notify_remove` of the channel with this name.
    Remove(String),
}

impl NotifyCall {
    /// The wire operation.
    pub fn op(&self) -> Op {
        match self {
            Self::List => Op::NotifyList,
            Self::Test(_) => Op::NotifyTest,
            Self::Remove(_) => Op::NotifyRemove,
        }
    }
}

/// The administration operations (bodies in `proto::admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCall {
    /// `user_list`.
    UserList,
    /// `user_manage` or `grant_admin` (as `proto::admin::required_op` says).
    User(Op, proto::admin::UserRequest),
    /// `host_rotate` with `list`.
    HostList,
    /// `host_add`.
    HostAdd(proto::admin::HostAdd),
    /// `host_rotate` with `rotate`.
    HostRotate(String),
    /// `host_revoke`.
    HostRevoke(String),
    /// `creds_list`.
    CredsList(proto::admin::CredsQuery),
    /// `creds_revoke`.
    CredsRevoke(String),
    /// `kill`.
    Kill(proto::admin::KillTarget),
    /// `audit_read`.
    AuditRead(proto::admin::AuditQuery),
    /// `trust_fetch` (everything: certificates, pending device keys), as `admin trust show`.
    TrustFetch,
}

impl AdminCall {
    /// The wire operation.
    pub fn op(&self) -> Op {
        match self {
            Self::UserList => Op::UserList,
            Self::User(op, _) => *op,
            Self::HostList | Self::HostRotate(_) => Op::HostRotate,
            Self::HostAdd(_) => Op::HostAdd,
            Self::HostRevoke(_) => Op::HostRevoke,
            Self::CredsList(_) => Op::CredsList,
            Self::CredsRevoke(_) => Op::CredsRevoke,
            Self::Kill(_) => Op::Kill,
            Self::AuditRead(_) => Op::AuditRead,
            Self::TrustFetch => Op::TrustFetch,
        }
    }
}

impl Call {
    /// The wire operation.
    pub fn op(&self) -> Op {
        match self {
            Self::WorkspaceList => Op::WorkspaceList,
            Self::SessionList => Op::SessionList,
            Self::SessionCreate(_) => Op::SessionCreate,
            Self::SessionRename(_) => Op::SessionRename,
            Self::SessionDelete => Op::SessionDelete,
            Self::Prompt(_) => Op::Prompt,
            Self::Abort => Op::Abort,
            Self::Messages(_) => Op::Messages,
            Self::Diff(_) => Op::Diff,
            Self::PermissionList => Op::PermissionList,
            Self::PermissionReply(_) => Op::PermissionReply,
            Self::QuestionReply(_) => Op::QuestionReply,
            Self::OpencodeStart => Op::OpencodeStart,
            Self::OpencodeStop => Op::OpencodeStop,
            Self::FsList(_) => Op::FsList,
            Self::GitStatus(_) => Op::GitStatus,
            Self::PermissionGrants => Op::PermissionGrants,
            Self::PermissionRevoke(_) => Op::PermissionRevoke,
            Self::ModelList => Op::ModelList,
            Self::TemplateList => Op::TemplateList,
            Self::WorkspaceCandidates => Op::WorkspaceCandidates,
            Self::WorkspaceAdd(_) => Op::WorkspaceAdd,
            Self::WorkspaceRemove => Op::WorkspaceRemove,
            Self::PortList => Op::PortList,
            Self::Admin(a) => a.op(),
            Self::NotifyFocus(_) => Op::NotifyFocus,
            Self::Notify(n) => n.op(),
        }
    }
}

/// A call the app wants made, with the id its answer will carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Chosen by the app, unique for its lifetime.
    pub id: u64,
    /// Where it goes.
    pub scope: Scope,
    /// What it is.
    pub call: Call,
}

/// A streaming operation with its body: a first answer, then items until the last one.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamCall {
    /// `git_clone` beneath the workspace's root.
    GitClone(proto::git::GitClone),
    /// `template_apply` to the workspace.
    TemplateApply(proto::template::TemplateApply),
}

impl StreamCall {
    /// The wire operation.
    pub fn op(&self) -> Op {
        match self {
            Self::GitClone(_) => Op::GitClone,
            Self::TemplateApply(_) => Op::TemplateApply,
        }
    }
}

/// A stream the app wants opened, with the id its items will carry.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRequest {
    /// Chosen by the app from the same counter as request ids.
    pub id: u64,
    /// Where it goes.
    pub scope: Scope,
    /// What it is.
    pub call: StreamCall,
}

/// A port forward the app wants started: a local listener whose connections are each carried
/// to `port` on the host's loopback by a `port_forward` stream. Stopped with
/// `Effect::CloseStream(id)`; it ends with the relay connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRequest {
    /// Chosen by the app from the same counter as request ids.
    pub id: u64,
    /// The host.
    pub host: HostId,
    /// The port on the host's loopback.
    pub port: u16,
}

/// News of a running forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardNews {
    /// The host accepted the port and the local listener is up.
    Listening {
        /// The local address connections go to.
        local: std::net::SocketAddr,
    },
    /// The number of connections carried now.
    Connections(usize),
    /// A connection was not forwarded (the host's words).
    NotForwarded(String),
    /// The forward ended: refused by the host, the local port could not be bound, or the
    /// listener failed.
    Ended(CallError),
}

/// One frame of an open stream, by operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// `git_clone` accepted: the folder is created.
    CloneStarted(proto::git::GitCloneStarted),
    /// `git_clone` progress, or its end.
    Clone(proto::git::GitCloneEvent),
    /// `template_apply` accepted.
    Applied(proto::template::TemplateApplied),
    /// `template_apply` progress, or its end.
    Apply(proto::template::TemplateApplyEvent),
}

/// A successful answer, by operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `workspace_list`.
    Workspaces(Vec<WorkspaceInfo>),
    /// `session_list`.
    Sessions(Vec<SessionInfo>),
    /// `session_create`.
    Created(SessionInfo),
    /// `session_rename`: the session with its new title.
    Renamed(SessionInfo),
    /// `session_delete`.
    Deleted,
    /// `prompt`.
    Accepted(PromptAccepted),
    /// `prompt` for an offline host: kept by the relay until the host is back.
    Queued(proto::queue::Queued),
    /// `abort`.
    Aborted(Aborted),
    /// `messages`.
    Messages(Vec<Message>),
    /// `diff`.
    Diff(Vec<FileDiff>),
    /// `permission_list`.
    Pending(Pending),
    /// `permission_reply` or `question_reply`.
    Answered,
    /// `opencode_start` or `opencode_stop`.
    Opencode(OpencodeInfo),
    /// A folder listing.
    Folder(proto::fs::FsListing),
    /// A git status.
    Git(proto::git::GitStatus),
    /// Standing permission grants.
    Grants(Vec<proto::grant::StandingGrant>),
    /// A standing grant revoked.
    Revoked(proto::grant::StandingGrant),
    /// The models and agents on offer.
    Models(proto::ops::ModelCatalog),
    /// The relay's templates, each at its latest version.
    Templates(Vec<proto::template::TemplateSummary>),
    /// Folders that may become workspaces.
    Candidates(proto::workspace::WorkspaceCandidates),
    /// A folder became this workspace.
    WorkspaceAdded(WorkspaceInfo),
    /// A workspace was forgotten (its files stay).
    WorkspaceRemoved(proto::workspace::WorkspaceRemoved),
    /// The host's listening ports.
    Ports(Vec<proto::forward::ListeningPort>),
    /// Users and their grants.
    Users(Vec<proto::admin::UserInfo>),
    /// Enrolled hosts.
    AdminHosts(Vec<proto::admin::HostEntry>),
    /// A host enrolled or its token rotated: the one-time token.
    Enrolled(proto::admin::HostEnrolled),
    /// Credentials.
    Creds(Vec<proto::admin::CredInfo>),
    /// Audit rows, oldest first.
    Audit(Vec<proto::admin::AuditEntry>),
    /// An administrative change done.
    Done(proto::admin::AdminDone),
    /// What the relay stores for zero-trust (certificates, pending device keys).
    Trust {
        /// As served.
        bundle: proto::trust::TrustBundle,
        /// Per certificate, whether it chains to this laptop's roots (`None`: no roots here).
        vouched: Option<Vec<bool>>,
    },
    /// `notify_focus` noted.
    FocusNoted,
    /// `notify_list`: the caller's channels.
    Channels(Vec<proto::notify::ChannelInfo>),
    /// `notify_test`: the test notification went out, or why not.
    ChannelTested(proto::notify::NotifyTested),
    /// `notify_remove`: whether there was such a channel.
    ChannelRemoved(bool),
}

/// Why a call failed: a typed refusal from the relay or agent (with its code), or a transport
/// failure (no code; retrying after a reconnect may help).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The refusal's code, if the peer answered.
    pub code: Option<ErrorCode>,
    /// What happened, for the operator.
    pub message: String,
}

impl CallError {
    /// A transport failure.
    pub fn transport(message: impl Into<String>) -> Self {
        Self {
            code: None,
            message: message.into(),
        }
    }

    /// A typed refusal.
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            message: message.into(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
