//! The one mapping from what went wrong inside an operation to what the operator sees: a
//! stable [`ErrorCode`] and a message that says what to do. Internal detail (paths, OpenCode's
//! bodies, OS errors) goes to the agent's log only.

use crate::opencode::client::ClientError;
use crate::supervisor::StartError;
use proto::header::Op;
use proto::rbac::DenyReason;
use proto::wire_error::{ErrorCode, WireError};

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// The role does not allow the operation (the relay should have refused it already).
    #[error("denied: {0}")]
    Denied(DenyReason),
    /// The host's own policy refuses it (lock, disabled operation, raised role).
    #[error("refused by the host's policy: {0}")]
    Policy(#[from] crate::policy::PolicyDenied),
    /// The agent does not serve this operation.
    #[error("operation {} is not served by the agent", .0.as_str())]
    UnknownOp(Op),
    /// The request is malformed or incomplete.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such workspace.
    #[error("no workspace named {name}")]
    NoWorkspace {
        /// The name asked for.
        name: String,
        /// The names configured.
        known: Vec<String>,
    },
    /// The workspace's folder is gone or unreadable.
    #[error("workspace {name}: root {path} is not accessible: {reason}")]
    RootUnavailable {
        /// Workspace.
        name: String,
        /// Its root (logged, not sent).
        path: String,
        /// The OS error (logged, not sent).
        reason: String,
    },
    /// OpenCode could not be made ready.
    #[error(transparent)]
    Start(#[from] StartError),
    /// An OpenCode call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A session, request or question does not exist (operator-facing text).
    #[error("{0}")]
    NotFound(String),
    /// Conflicts with the current state (operator-facing text).
    #[error("{0}")]
    Conflict(String),
    /// Refused by a containment rule of a folder or git operation; the message names the rule
    /// and the path component or argument (operator-facing text).
    #[error("{message}")]
    Contained {
        /// The rule's short name (for the audit log).
        rule: &'static str,
        /// What was refused and why.
        message: String,
    },
    /// The host cannot do it now (git missing or too slow); operator-facing text.
    #[error("{0}")]
    Unavailable(String),
    /// A zero-trust check refused the request (signature, header, time, nonce, certificates,
    /// revocation freshness); the message says what to do.
    #[error("untrusted request: {0}")]
    Untrusted(#[from] proto::trust::TrustError),
    /// A zero-trust host got a request that is not on an end-to-end channel.
    #[error("the request names no end-to-end channel")]
    NoChannel,
    /// The request names an end-to-end channel this host does not hold.
    #[error("unknown end-to-end channel {0}")]
    ChannelUnknown(String),
    /// The channel was opened by another device key than the one that signed the request.
    #[error("end-to-end channel {0} belongs to another device key")]
    ChannelNotYours(String),
    /// The body frame is not the one the operator signed.
    #[error("the body does not match the signed hash: relay tampered")]
    BodyMismatch,
    /// The end-to-end handshake or a sealed box failed.
    #[error(transparent)]
    E2e(#[from] cm_client::e2e::E2eError),
    /// The answer does not fit in a frame.
    #[error("the answer is {len} bytes, over the {max}-byte frame limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl OpError {
    /// The public form. Everything the operator sees about a failure comes from here.
    pub fn public(&self) -> WireError {
        use ErrorCode as C;
        let e = |code: ErrorCode, message: String| WireError::new(code, message);
        match self {
            Self::Denied(DenyReason::UnknownOp) => e(
                C::UnknownOp,
                "this agent does not know that operation; update cm-agent".into(),
            ),
            Self::Denied(r) => e(C::Forbidden, format!("not allowed on this host: {r}")),
            Self::Policy(p) => e(C::Forbidden, p.to_string()),
            Self::UnknownOp(op) => e(
                C::UnknownOp,
                format!("operation {} is not served by the agent", op.as_str()),
            ),
            Self::BadRequest(m) => e(C::BadRequest, m.clone()),
            Self::NoWorkspace { name, known } => e(
                C::NotFound,
                if known.is_empty() {
                    format!(
                        "no workspace named {name} on this host; it has no workspaces configured"
                    )
                } else {
                    format!(
                        "no workspace named {name} on this host (workspaces: {})",
                        known.join(", ")
                    )
                },
            ),
            Self::RootUnavailable { name, .. } => e(
                C::Unavailable,
                format!(
                    "the folder of workspace {name} is missing or not accessible on this host; \
                     restore it or fix the agent's configuration"
                ),
            ),
            Self::Start(StartError::Failed { message }) => e(C::Unavailable, message.clone()),
            Self::Start(
                s @ (StartError::Timeout { .. } | StartError::Stopped | StartError::ShuttingDown),
            ) => e(
                C::Unavailable,
                format!("{s}; try again or check opencode_status"),
            ),
            Self::Client(c) => match c {
                ClientError::NotFound { .. } => e(
                    C::NotFound,
                    "OpenCode has no such session or request".into(),
                ),
                ClientError::BadId { kind, .. } => {
                    e(C::BadRequest, format!("that is not a valid {kind} id"))
                }
                ClientError::Status { status: 400, .. } => e(
                    C::BadRequest,
                    "OpenCode refused the request as malformed".into(),
                ),
                ClientError::Timeout { .. } | ClientError::Transport { .. } => e(
                    C::Unavailable,
                    "OpenCode did not answer; it may be restarting, try again".into(),
                ),
                ClientError::Status { .. } | ClientError::Decode { .. } => e(
                    C::Internal,
                    "OpenCode answered unexpectedly; details are in the agent's log".into(),
                ),
            },
            Self::NotFound(m) => e(C::NotFound, m.clone()),
            Self::Conflict(m) => e(C::Conflict, m.clone()),
            Self::Contained { message, .. } => e(C::Forbidden, message.clone()),
            Self::Unavailable(m) => e(C::Unavailable, m.clone()),
            Self::Untrusted(proto::trust::TrustError::NoncesFull) => e(
                C::Unavailable,
                proto::trust::TrustError::NoncesFull.to_string(),
            ),
            Self::Untrusted(t) => e(C::Forbidden, t.to_string()),
            Self::NoChannel => e(
                C::Forbidden,
                "this host encrypts end to end: open an end-to-end channel first (e2e_open); \
                 update cm-tui if it does not"
                    .into(),
            ),
            Self::ChannelUnknown(_) => e(
                C::E2eChannelUnknown,
                "this host does not hold that end-to-end channel (it restarted or forgot an idle \
                 one); open a new channel and retry"
                    .into(),
            ),
            Self::ChannelNotYours(_) => e(
                C::Forbidden,
                "that end-to-end channel was opened by another device key; open your own".into(),
            ),
            Self::BodyMismatch => e(
                C::Forbidden,
                "the request body is not the one its author signed (changed on the way: relay \
                 tampered?)"
                    .into(),
            ),
            Self::E2e(x) => e(C::BadRequest, x.to_string()),
            Self::TooLarge { len, max } => e(
                C::Unavailable,
                format!(
                    "the answer is {len} bytes, over the {max}-byte frame limit; ask for less (e.g. a message limit)"
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_stays_out_of_public_messages() {
        let err = OpError::RootUnavailable {
            name: "demo".into(),
            path: "/home/secret/demo".into(),
            reason: "No such file or directory".into(),
        };
        let w = err.public();
        assert_eq!(w.code, ErrorCode::Unavailable);
        assert!(
            w.message.contains("demo") && !w.message.contains("/home/secret"),
            "{}",
            w.message
        );
        let err = OpError::Client(ClientError::Status {
            what: "GET /session".into(),
            status: 500,
            body: "stack trace at /internal/file.ts".into(),
        });
        assert!(!err.public().message.contains("stack"));
        assert_eq!(err.public().code, ErrorCode::Internal);
        let err = OpError::NoWorkspace {
            name: "nope".into(),
            known: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            err.public().message,
            "no workspace named nope on this host (workspaces: a, b)"
        );
        assert_eq!(err.public().code, ErrorCode::NotFound);
        assert_eq!(
            OpError::Denied(DenyReason::UnknownOp).public().code,
            ErrorCode::UnknownOp
        );
    }
}
