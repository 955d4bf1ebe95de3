//! The one mapping from what went wrong with an operator's request to what the operator sees:
//! a stable [`ErrorCode`] and a message that says what to do. Internal detail (store errors,
//! I/O) goes to the relay's log only; [`RequestError::wire`] is the only place a request's
//! error reply is built.

use crate::admin::AdminError;
use crate::authz;
use crate::store::StoreError;
use proto::header::Op;
use proto::ids::{HostId, UserId};
use proto::rbac::DenyReason;
use proto::wire_error::{ErrorCode, WireError};

/// Why a request stream was not answered as asked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// The stream header could not be read.
    #[error("bad stream header: {0}")]
    BadHeader(String),
    /// No stream header arrived in time.
    #[error("no stream header in time")]
    HeaderTimeout,
    /// A name in the header is not a plain name.
    #[error(
        "the {field} name is not valid: letters, digits, '-', '_' and '.', at most {} bytes",
        proto::ids::MAX_ID_LEN
    )]
    BadName {
        /// `host`, `workspace` or `session`.
        field: &'static str,
    },
    /// An answer to a permission or question without its session.
    #[error("{} needs the request's session in the header", .0.as_str())]
    NeedsSession(Op),
    /// An operation that must name a host did not.
    #[error("{} needs a target host", .0.as_str())]
    NeedsHost(Op),
    /// The one authorization point refused the header.
    #[error("{}: denied: {reason}", op.as_str())]
    Denied {
        /// The operation.
        op: Op,
        /// Why.
        reason: DenyReason,
        /// The session's owner, when it is someone else's.
        owner: Option<UserId>,
        /// The session is someone else's because nobody is on record for it.
        unowned: bool,
    },
    /// The body did not arrive before the stream ended.
    #[error("{} needs a request body", .0.as_str())]
    NoBody(Op),
    /// The body is not what the operation takes.
    #[error("malformed body for {}: {detail}", op.as_str())]
    BadBody {
        /// The operation.
        op: Op,
        /// The decoder's message.
        detail: String,
    },
    /// The body did not arrive in time.
    #[error("no {} body in time", .0.as_str())]
    BodyTimeout(Op),
    /// The target host is enrolled but its agent is not connected.
    #[error("host {0} is offline; its agent is not connected")]
    HostOffline(HostId),
    /// The target host is offline and the request cannot wait for it.
    #[error(
        "host {0} is offline; its agent is not connected (only prompts to an existing session can be queued)"
    )]
    HostOfflineNotQueueable(HostId),
    /// No such host.
    #[error("no host named {0}; see `cm-tui hosts`")]
    UnknownHost(HostId),
    /// Every stream the host's agent allows is in use.
    #[error("host {host} has all {streams} streams in use (open watches); close some and retry")]
    AgentBusy {
        /// The host.
        host: HostId,
        /// How many it allows.
        streams: u32,
    },
    /// The host's agent went away while the stream was being opened.
    #[error("host {0} went away; retry when it is back")]
    AgentGone(HostId),
    /// The per-principal or viewer share of a host's streams is used up.
    #[error("{}", quota_message(*.full, .host))]
    Quota {
        /// Which share.
        full: super::stream_quota::Full,
        /// The host.
        host: HostId,
    },
    /// The host list cannot be encoded (one host's status is too large).
    #[error("a host's status does not fit in a frame ({0}); see the relay log")]
    HostStatusTooLarge(String),
    /// The caller has no queued prompt of that id.
    #[error("you have no queued prompt {0}; see `cm-tui queue list`")]
    NotQueued(String),
    /// The queued prompt is past waiting.
    #[error("{id} is already {state}; only waiting prompts can be cancelled")]
    NoLongerWaiting {
        /// Entry id.
        id: String,
        /// Its state.
        state: &'static str,
    },
    /// An administration operation the relay does not serve over the network.
    #[error(
        "{} is not served through the relay; change it in relay.toml on the relay host",
        .0.as_str()
    )]
    NotServed(Op),
    /// An administrative change was refused or failed.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// An access rule of the administration body refused it.
    #[error(transparent)]
    Refused(#[from] authz::AdminRefusal),
    /// The audit row could not be made durable, so the request was not acted on.
    #[error("audit trail unavailable")]
    AuditUnavailable,
    /// The database is away (the audit row could not be written, or the request needs it);
    /// the relay reconnects by itself.
    #[error("{STORE_UNAVAILABLE}")]
    StoreUnavailable,
    /// Logout could not revoke the credential.
    #[error("logout failed: {0}")]
    Logout(StoreError),
    /// A template request refused (bad publish, unknown template, content from an operator).
    #[error(transparent)]
    Template(#[from] super::templates::TemplateError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Anything else inside the relay (logged, not sent).
    #[error("internal: {0}")]
    Internal(String),
}

fn quota_message(full: super::stream_quota::Full, host: &HostId) -> String {
    use super::stream_quota::{Full, PER_PRINCIPAL};
    match full {
        Full::Principal => format!(
            "you have {PER_PRINCIPAL} streams open to host {host}, the most one user may; close some (watches) and retry"
        ),
        Full::ViewerShare => format!(
            "viewers hold every stream of host {host} they may (the rest is kept for operators); retry later"
        ),
    }
}

/// What an operator (or a login) is told while the database is away.
pub(crate) const STORE_UNAVAILABLE: &str =
    "store unavailable, retrying: the relay cannot reach its database; try again in a few seconds";

/// The answer while the database is away.
pub(crate) fn store_unavailable() -> WireError {
    WireError::new(ErrorCode::Unavailable, STORE_UNAVAILABLE)
}

/// What the operator sees for a store failure: [`store_unavailable`] when the database is
/// away, else the internal failure (logged).
fn store_error(e: &StoreError) -> WireError {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "request refused: the database is away");
        return store_unavailable();
    }
    store_failure(e)
}

fn store_failure(e: &dyn std::fmt::Display) -> WireError {
    tracing::error!(error = %e, "request failed inside the relay");
    WireError::new(ErrorCode::Internal, "relay store failure; see its log")
}

impl RequestError {
    /// The public form. Everything the operator sees about a failed request comes from here.
    pub(crate) fn wire(&self) -> WireError {
        let says = |code: ErrorCode| WireError::new(code, self.to_string());
        match self {
            Self::BadHeader(_)
            | Self::HeaderTimeout
            | Self::BadName { .. }
            | Self::NeedsSession(_)
            | Self::NeedsHost(_)
            | Self::NoBody(_)
            | Self::BadBody { .. }
            | Self::BodyTimeout(_) => says(ErrorCode::BadRequest),
            Self::Denied {
                op,
                reason,
                owner,
                unowned,
            } => deny_error(reason, *op, owner.as_ref(), *unowned),
            Self::HostOffline(_) | Self::HostOfflineNotQueueable(_) | Self::AgentGone(_) => {
                says(ErrorCode::HostOffline)
            }
            Self::UnknownHost(_) => says(ErrorCode::UnknownHost),
            Self::AgentBusy { .. } | Self::Quota { .. } | Self::HostStatusTooLarge(_) => {
                says(ErrorCode::Unavailable)
            }
            Self::NotQueued(_) => says(ErrorCode::NotFound),
            Self::NoLongerWaiting { .. } => says(ErrorCode::Conflict),
            Self::NotServed(_) => says(ErrorCode::UnknownOp),
            Self::Admin(e) => admin_error(e),
            Self::Refused(authz::AdminRefusal::Store(e)) => store_error(e),
            Self::Refused(e @ authz::AdminRefusal::NotAdminRights { .. }) => {
                WireError::new(ErrorCode::BadRequest, e.to_string())
            }
            Self::Refused(e) => WireError::new(ErrorCode::Forbidden, e.to_string()),
            Self::AuditUnavailable => WireError::new(
                ErrorCode::Internal,
                "audit trail unavailable; see the relay log",
            ),
            Self::StoreUnavailable => store_unavailable(),
            Self::Logout(e) => {
                tracing::error!(error = %e, "logout failed");
                WireError::new(
                    ErrorCode::Internal,
                    "logout failed inside the relay; see its log",
                )
            }
            Self::Template(
                super::templates::TemplateError::Unknown(_)
                | super::templates::TemplateError::UnknownVersion { .. },
            ) => says(ErrorCode::NotFound),
            Self::Template(_) => says(ErrorCode::BadRequest),
            Self::Store(e) => store_error(e),
            Self::Internal(e) => store_failure(e),
        }
    }
}

/// What the operator sees for a failed administrative change.
fn admin_error(e: &AdminError) -> WireError {
    match e {
        AdminError::Input(m) => WireError::new(ErrorCode::BadRequest, m.clone()),
        AdminError::Forbidden(m) => WireError::new(ErrorCode::Forbidden, m.clone()),
        AdminError::NotFound(m) => WireError::new(ErrorCode::NotFound, m.clone()),
        AdminError::Store(e @ StoreError::NoGrant { .. }) => WireError::new(
            ErrorCode::NotFound,
            format!("{e}; see `cm-tui admin user list`"),
        ),
        AdminError::Store(StoreError::Missing { what, name }) => WireError::new(
            ErrorCode::NotFound,
            format!("no {what} named {name:?}; see the list"),
        ),
        AdminError::Store(e @ StoreError::Exists { .. }) => {
            WireError::new(ErrorCode::Conflict, e.to_string())
        }
        AdminError::Store(StoreError::Refused(m)) => WireError::new(ErrorCode::Conflict, m.clone()),
        AdminError::Store(e) if e.is_unavailable() => store_error(e),
        other => store_failure(other),
    }
}

/// What the operator is told for a header the one authorization point refused.
fn deny_error(reason: &DenyReason, op: Op, owner: Option<&UserId>, unowned: bool) -> WireError {
    match (reason, owner) {
        (DenyReason::UnknownOp, _) => WireError::new(
            ErrorCode::UnknownOp,
            "this relay does not know that operation; upgrade the relay or use an older cm-tui",
        ),
        (DenyReason::NoGrant, _) if authz::is_relay_admin(op) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: administering the relay needs an admin grant on every host (*); ask an owner",
                op.as_str()
            ),
        ),
        (DenyReason::NoGrant, _) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: you have no grant on this host; ask an admin",
                op.as_str()
            ),
        ),
        // Someone else's session: say so, or "you have operator" reads as a role problem.
        (DenyReason::RoleTooLow { needed, have }, Some(owner)) => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: this session belongs to {}; taking it over needs role {needed}, you have {have}",
                op.as_str(),
                owner.as_str()
            ),
        ),
        (DenyReason::RoleTooLow { needed, have }, None) if unowned => WireError::new(
            ErrorCode::Forbidden,
            format!(
                "{}: this session has no recorded owner (it was not created through CodeMantle); \
                 taking it over needs role {needed}, you have {have}",
                op.as_str()
            ),
        ),
        (DenyReason::RoleTooLow { needed, have }, None) => WireError::new(
            ErrorCode::Forbidden,
            format!("{}: needs role {needed}, you have {have}", op.as_str()),
        ),
    }
}

/// Why a connection's hello (before any request) is refused. Authentication failures are one
/// answer whatever the cause, so a prober learns nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HelloError {
    /// The hello frame could not be read (the reason is cut and sanitized).
    #[error("bad handshake frame: {0}")]
    BadFrame(String),
    /// Too many failed logins from the address.
    #[error("too many failed attempts from your address; try again in {} s", .wait_ms.div_ceil(1000))]
    LoginsLimited {
        /// Until the address may try again.
        wait_ms: u64,
    },
    /// Authentication failed (or the address is limited, for a credential hello).
    #[error("authentication failed")]
    AuthFailed,
}

impl HelloError {
    /// The public form.
    pub(crate) fn wire(&self) -> WireError {
        match self {
            Self::BadFrame(_) => WireError::new(ErrorCode::BadRequest, self.to_string()),
            Self::LoginsLimited { .. } => WireError::new(ErrorCode::LoginFailed, self.to_string()),
            Self::AuthFailed => WireError::auth_failed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_operator() {
        let e = RequestError::Store(StoreError::Task("/var/lib/secret path".into()));
        let w = e.wire();
        assert_eq!(w.code, ErrorCode::Internal);
        assert!(!w.message.contains("/var/lib"), "{}", w.message);
        let e = RequestError::Admin(AdminError::Input("choose a longer name".into()));
        assert_eq!(e.wire().code, ErrorCode::BadRequest);
        assert_eq!(e.wire().message, "choose a longer name");
    }

    #[test]
    fn a_database_that_is_away_is_named_with_a_retry_hint_not_an_internal_failure() {
        for e in [
            RequestError::Store(StoreError::Connect("connection refused".into())),
            RequestError::Store(StoreError::Unavailable("closed".into())),
            RequestError::Admin(AdminError::Store(StoreError::Connect("refused".into()))),
            RequestError::StoreUnavailable,
        ] {
            let w = e.wire();
            assert_eq!(w.code, ErrorCode::Unavailable, "{e:?}");
            assert!(
                w.message.starts_with("store unavailable, retrying"),
                "{w:?}"
            );
            assert!(!w.message.contains("refused"), "no internal detail: {w:?}");
        }
        let other = RequestError::Store(StoreError::WriteFailed("constraint".into())).wire();
        assert_eq!(other.code, ErrorCode::Internal);
    }

    #[test]
    fn body_errors_name_the_operation() {
        assert_eq!(
            RequestError::NoBody(Op::Kill).wire().message,
            "kill needs a request body"
        );
        assert_eq!(
            RequestError::BodyTimeout(Op::QueueCancel).wire().message,
            "no queue_cancel body in time"
        );
        assert_eq!(
            RequestError::BodyTimeout(Op::Kill).wire().code,
            ErrorCode::BadRequest
        );
    }
}
