//! What kind of failure ended a command: its exit code, and its `kind` in the one JSON object
//! `--json` commands print on stderr (`{"error":{"kind":…,"message":…}}`), so scripts can
//! branch on either without parsing prose.

use crate::commands::CommandError;
use crate::login::LoginError;
use crate::profile::ProfileError;
use cm_client::LinkError;
use proto::token::TokenError;
use proto::wire_error::{ErrorCode, WireError};
use serde::Serialize;

/// The documented exit codes, for `cm-tui --help` (a macro so it can be `concat!`ed into
/// clap's `after_help`; also in docs/deployment.md).
#[macro_export]
macro_rules! exit_codes_help {
    () => {
        "Exit codes:\n  0  success\n  1  any other failure\n  2  usage: a bad argument, option or token\n  3  auth: not logged in, login expired or refused, relay key pin mismatch\n  4  forbidden: your role does not allow it\n  5  not found: no such host, workspace, session or request\n  6  unavailable: relay unreachable, host offline, busy or rate-limited\n  7  the turn failed or was aborted (send --wait)\n  8  conflict: already answered or changed meanwhile\nWith --json, a failure is one JSON object on stderr: {\"error\":{\"kind\":…,\"message\":…}}\nwith kind failed, usage, auth, forbidden, not_found, unavailable, turn_failed or conflict."
    };
}

/// The kinds of failure, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Anything else.
    Failed,
    /// A bad argument or option.
    Usage,
    /// Not logged in, the login expired or was refused, or the relay is not the pinned one.
    Auth,
    /// The role does not allow it.
    Forbidden,
    /// No such host, workspace, session or request.
    NotFound,
    /// The relay or the host cannot be reached, or is busy.
    Unavailable,
    /// The turn failed or was aborted.
    TurnFailed,
    /// Already answered, or changed meanwhile.
    Conflict,
}

impl FailureKind {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Failed => 1,
            Self::Usage => 2,
            Self::Auth => 3,
            Self::Forbidden => 4,
            Self::NotFound => 5,
            Self::Unavailable => 6,
            Self::TurnFailed => 7,
            Self::Conflict => 8,
        }
    }

    /// The kind of a failure, from the first error in its chain that says.
    pub fn of(error: &anyhow::Error) -> Self {
        error.chain().find_map(kind_of).unwrap_or(Self::Failed)
    }
}

fn kind_of(e: &(dyn std::error::Error + 'static)) -> Option<FailureKind> {
    if let Some(e) = e.downcast_ref::<CommandError>() {
        return command_kind(e);
    }
    if let Some(e) = e.downcast_ref::<LoginError>() {
        return Some(match e {
            LoginError::Token(_) | LoginError::Usage(_) => FailureKind::Usage,
            LoginError::Link(l) => link_kind(l),
            LoginError::Profile(p) => profile_kind(p)?,
            LoginError::Trust(_) => return None,
        });
    }
    if let Some(e) = e.downcast_ref::<ProfileError>() {
        return profile_kind(e);
    }
    if let Some(e) = e.downcast_ref::<LinkError>() {
        return Some(link_kind(e));
    }
    if let Some(e) = e.downcast_ref::<WireError>() {
        return Some(wire_kind(e.code));
    }
    e.downcast_ref::<TokenError>().map(|_| FailureKind::Usage)
}

fn command_kind(e: &CommandError) -> Option<FailureKind> {
    Some(match e {
        CommandError::Link(l) => link_kind(l),
        CommandError::NotPending(_) | CommandError::NoQuestion(_) => FailureKind::NotFound,
        CommandError::Turn(_) => FailureKind::TurnFailed,
        CommandError::Interrupted(_) => FailureKind::Failed,
        CommandError::Ended(_) => FailureKind::Auth,
        CommandError::BadInput(_) => FailureKind::Usage,
        CommandError::OfflineNewSession(_) | CommandError::Stream(_) => FailureKind::Unavailable,
        CommandError::Output(_) | CommandError::Json(_) => return None,
    })
}

fn profile_kind(e: &ProfileError) -> Option<FailureKind> {
    match e {
        ProfileError::NotLoggedIn | ProfileError::Expired { .. } => Some(FailureKind::Auth),
        ProfileError::File { .. } | ProfileError::Secret(_) => None,
    }
}

fn link_kind(e: &LinkError) -> FailureKind {
    match e {
        LinkError::Refused(w) => wire_kind(w.code),
        LinkError::Address(_) => FailureKind::Usage,
        LinkError::PinMismatch { .. } | LinkError::RelayProof(_) => FailureKind::Auth,
        LinkError::Resolve { .. }
        | LinkError::Connect { .. }
        | LinkError::Connection(_)
        | LinkError::Stream(_)
        | LinkError::Timeout(_) => FailureKind::Unavailable,
        LinkError::Socket(_) | LinkError::Tls(_) | LinkError::Protocol(_) => FailureKind::Failed,
    }
}

fn wire_kind(code: ErrorCode) -> FailureKind {
    match code {
        ErrorCode::AuthFailed | ErrorCode::LoginFailed => FailureKind::Auth,
        ErrorCode::Forbidden => FailureKind::Forbidden,
        ErrorCode::UnknownHost | ErrorCode::NotFound => FailureKind::NotFound,
        ErrorCode::HostOffline | ErrorCode::Unavailable | ErrorCode::E2eChannelUnknown => {
            FailureKind::Unavailable
        }
        ErrorCode::Conflict => FailureKind::Conflict,
        ErrorCode::BadRequest => FailureKind::Usage,
        ErrorCode::UnknownOp | ErrorCode::Internal => FailureKind::Failed,
    }
}

/// The JSON object a `--json` command prints on stderr when it fails.
pub fn json_error(kind: FailureKind, message: &str) -> String {
    serde_json::json!({ "error": { "kind": kind, "message": message } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_kind_through_the_command_error() {
        let refused = |code| {
            anyhow::Error::from(CommandError::Link(LinkError::Refused(WireError::new(
                code, "no",
            ))))
        };
        assert_eq!(
            FailureKind::of(&refused(ErrorCode::Forbidden)).exit_code(),
            4
        );
        assert_eq!(
            FailureKind::of(&refused(ErrorCode::UnknownHost)).exit_code(),
            5
        );
        assert_eq!(
            FailureKind::of(&refused(ErrorCode::HostOffline)).exit_code(),
            6
        );
        assert_eq!(
            FailureKind::of(&refused(ErrorCode::AuthFailed)).exit_code(),
            3
        );
        let turn = anyhow::Error::from(CommandError::Turn("aborted".into()));
        assert_eq!(FailureKind::of(&turn), FailureKind::TurnFailed);
        let context = anyhow::Error::from(ProfileError::NotLoggedIn).context("loading");
        assert_eq!(FailureKind::of(&context), FailureKind::Auth);
        assert_eq!(FailureKind::of(&anyhow::anyhow!("other")).exit_code(), 1);
    }

    #[test]
    fn the_json_error_is_one_object_with_kind_and_message() {
        let v: serde_json::Value =
            serde_json::from_str(&json_error(FailureKind::NotFound, "no \"x\""))
                .unwrap_or_default();
        assert_eq!(v["error"]["kind"], "not_found");
        assert_eq!(v["error"]["message"], "no \"x\"");
    }
}
