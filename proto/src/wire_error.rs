//! The public error form that crosses the wire. Internal causes are precise and logged; what the
//! peer sees is a stable code plus a message that says what to do, never internal detail.

use serde::{Deserialize, Serialize};

/// Stable error codes. Clients match on these; the message is for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Authentication failed. Deliberately one code for every cause (unknown, revoked or
    /// expired credential, bad MAC, replay, clock skew) so a prober learns nothing.
    AuthFailed,
    /// Login refused (bad invite, bad password, locked out).
    LoginFailed,
    /// The peer sent something that is not valid protocol.
    BadRequest,
    /// The operation is not known to this peer (newer client, older relay).
    UnknownOp,
    /// The principal's role is too low for the operation.
    Forbidden,
    /// The target host is not known.
    UnknownHost,
    /// The target host is known but not connected.
    HostOffline,
    /// The target (workspace, session, request) does not exist.
    NotFound,
    /// The operation conflicts with current state (e.g. already answered).
    Conflict,
    /// The peer is busy or rate-limited; retry later.
    Unavailable,
    /// The relay or agent failed internally; details are in its log.
    Internal,
    /// A zero-trust host does not know the end-to-end channel the request names (it restarted
    /// or forgot an idle one): open a new channel (`e2e_open`) and retry.
    E2eChannelUnknown,
}

/// An error as sent on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct WireError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message that says what to do.
    pub message: String,
}

impl WireError {
    /// Builds an error from a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The single generic authentication failure sent for every handshake problem.
    pub fn auth_failed() -> Self {
        Self::new(
            ErrorCode::AuthFailed,
            "authentication failed: the credential is unknown, revoked or expired, or the clocks \
             differ by more than 30 s; log in again (cm-tui login) or re-enroll the host",
        )
    }
}
