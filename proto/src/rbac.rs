//! Roles and the operation table (design §6) as data, and the one function that decides.
//!
//! `required_role` is a single exhaustive `match` with no wildcard arm, so a new operation
//! cannot compile without a decision. The whole matrix is snapshot-tested.

use crate::opcode::Op;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user's role on a host. **Order is privilege; do not reorder** (the derived `Ord` is used
/// for "at least this role").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May look: hosts, workspaces, sessions, messages, diffs, events.
    Viewer,
    /// May drive: sessions, prompts, aborts, permission answers, OpenCode start/stop.
    Operator,
    /// May administer: hosts, users up to operator, kill switch, audit; may take over sessions.
    Admin,
    /// May do everything, including granting admin or owner.
    Owner,
}

impl Role {
    /// All roles, least privileged first.
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Operator, Self::Admin, Self::Owner];

    /// Parses `viewer|operator|admin|owner`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation relates to an OpenCode session's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// The operation does not touch a session, or the session's owner is irrelevant.
    None,
    /// The principal created the session.
    Own,
    /// Someone else created it (acting on it is a take-over, audited).
    Other,
}

/// The minimum role for `op`. Session-scoped driving operations need one step more on a
/// session someone else owns (design §6: "take over; audited").
pub fn required_role(op: Op, ownership: Ownership) -> Option<Role> {
    let drive = |ownership| match ownership {
        Ownership::Other => Role::Admin,
        Ownership::Own | Ownership::None => Role::Operator,
    };
    Some(match op {
        Op::HostList
        | Op::WatchHosts
        | Op::WorkspaceList
        | Op::SessionList
        | Op::Messages
        | Op::Diff
        | Op::PermissionList
        | Op::PermissionGrants
        | Op::WatchEvents
        | Op::OpencodeStatus
        | Op::GitStatus
        | Op::GitDiff
        | Op::GitLog
        | Op::GitBranchList
        | Op::ModelList
        | Op::TemplateList
        | Op::TemplateShow
        | Op::McpList
        | Op::WorkspaceCandidates
        | Op::PortList
        | Op::E2eOpen
        | Op::TrustFetch
        | Op::Logout
        | Op::NotifyList
        | Op::NotifyFocus => Role::Viewer,
        Op::SessionCreate
        | Op::OpencodeStart
        | Op::OpencodeStop
        | Op::FsList
        | Op::FsMkdir
        | Op::FsRename
        | Op::FsRmdir
        | Op::GitAdd
        | Op::GitCommit
        | Op::GitBranchCreate
        | Op::GitCheckout
        | Op::GitPull
        | Op::GitPush
        | Op::GitInit
        | Op::GitClone
        | Op::GitConfig
        | Op::TemplateApply
        | Op::PortForward
        | Op::QueueList
        | Op::QueueCancel
        | Op::PermissionRevoke
        | Op::WorkspaceAdd
        | Op::WorkspaceRemove
        | Op::NotifyAdd
        | Op::NotifyTest
        | Op::NotifyRemove => Role::Operator,
        Op::SessionDelete
        | Op::SessionRename
        | Op::Prompt
        | Op::Abort
        | Op::PermissionReply
        | Op::QuestionReply => drive(ownership),
        Op::HostAdd
        | Op::HostRevoke
        | Op::HostRotate
        | Op::UserManage
        | Op::UserList
        | Op::CredsList
        | Op::CredsRevoke
        | Op::Kill
        | Op::AuditRead
        | Op::TemplatePublish
        | Op::TrustPublish => Role::Admin,
        Op::GrantAdmin | Op::RelaySettings => Role::Owner,
        // An operation this build does not know is never allowed.
        Op::Unknown => return None,
    })
}

/// Whether `op` only reads: everything a viewer may do ("may look", design §6) except giving up
/// one's own credential. The relay records these in the audit trail without waiting for the
/// row to be synced (see docs/security-model.md, "Audit trail").
pub fn is_read_only(op: Op) -> bool {
    op != Op::Logout && required_role(op, Ownership::Other) == Some(Role::Viewer)
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DenyReason {
    /// The principal has no grant on the target host.
    #[error("no grant on this host")]
    NoGrant,
    /// The principal's role is below what the operation needs.
    #[error("needs role {needed}, you have {have}")]
    RoleTooLow {
        /// Minimum role.
        needed: Role,
        /// The principal's effective role.
        have: Role,
    },
    /// The operation is unknown to this build.
    #[error("unknown operation")]
    UnknownOp,
}

/// The outcome of [`authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, with the reason for the operator and the audit trail.
    Deny(DenyReason),
}

/// Decides whether a principal whose effective role on the target host is `role` (`None`: no
/// grant) may perform `op` with the given session `ownership`.
pub fn authorize(role: Option<Role>, op: Op, ownership: Ownership) -> Decision {
    let Some(needed) = required_role(op, ownership) else {
        return Decision::Deny(DenyReason::UnknownOp);
    };
    // Giving up one's own credential needs no grant: a user whose grants were all removed
    // must still be able to log out.
    if op == Op::Logout {
        return Decision::Allow;
    }
    match role {
        None => Decision::Deny(DenyReason::NoGrant),
        Some(have) if have >= needed => Decision::Allow,
        Some(have) => Decision::Deny(DenyReason::RoleTooLow { needed, have }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_order_is_privilege() {
        assert!(Role::Viewer < Role::Operator);
        assert!(Role::Operator < Role::Admin);
        assert!(Role::Admin < Role::Owner);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn critical_cells() {
        use Decision::Allow;
        assert_eq!(
            authorize(Some(Role::Viewer), Op::HostList, Ownership::None),
            Allow
        );
        assert_eq!(
            authorize(Some(Role::Viewer), Op::Prompt, Ownership::Own),
            Decision::Deny(DenyReason::RoleTooLow {
                needed: Role::Operator,
                have: Role::Viewer
            })
        );
        assert_eq!(
            authorize(Some(Role::Operator), Op::Prompt, Ownership::Own),
            Allow
        );
        assert!(matches!(
            authorize(Some(Role::Operator), Op::Prompt, Ownership::Other),
            Decision::Deny(DenyReason::RoleTooLow {
                needed: Role::Admin,
                ..
            })
        ));
        assert_eq!(
            authorize(Some(Role::Admin), Op::Abort, Ownership::Other),
            Allow
        );
        assert!(matches!(
            authorize(Some(Role::Admin), Op::GrantAdmin, Ownership::None),
            Decision::Deny(_)
        ));
        assert_eq!(
            authorize(Some(Role::Owner), Op::GrantAdmin, Ownership::None),
            Allow
        );
        assert_eq!(
            authorize(None, Op::HostList, Ownership::None),
            Decision::Deny(DenyReason::NoGrant)
        );
        assert_eq!(
            authorize(Some(Role::Owner), Op::Unknown, Ownership::None),
            Decision::Deny(DenyReason::UnknownOp)
        );
    }

    /// `Op::ALL` (and so the snapshot) does not include `Op::Unknown`; check it here.
    #[test]
    fn unknown_op_is_denied_for_everyone() {
        for own in [Ownership::None, Ownership::Own, Ownership::Other] {
            assert_eq!(required_role(Op::Unknown, own), None);
            assert_eq!(
                authorize(None, Op::Unknown, own),
                Decision::Deny(DenyReason::UnknownOp)
            );
            for r in Role::ALL {
                assert_eq!(
                    authorize(Some(r), Op::Unknown, own),
                    Decision::Deny(DenyReason::UnknownOp),
                    "{r} {own:?}"
                );
            }
        }
    }

    #[test]
    fn read_only_ops_are_the_viewer_ops() {
        assert!(is_read_only(Op::Messages));
        assert!(is_read_only(Op::WatchEvents));
        assert!(is_read_only(Op::GitDiff));
        assert!(!is_read_only(Op::Logout));
        assert!(!is_read_only(Op::Prompt));
        assert!(!is_read_only(Op::GitPush));
        assert!(
            !is_read_only(Op::FsList),
            "folder listing needs operator (issue #5)"
        );
        assert!(!is_read_only(Op::Unknown));
    }

    /// The whole role × operation × ownership matrix as one reviewed table.
    #[test]
    fn full_matrix_snapshot() {
        let mut table = String::from("op                 ownership  viewer operator admin owner\n");
        for op in Op::ALL {
            for own in [Ownership::None, Ownership::Own, Ownership::Other] {
                let cells: Vec<&str> = Role::ALL
                    .iter()
                    .map(|r| match authorize(Some(*r), op, own) {
                        Decision::Allow => "allow",
                        Decision::Deny(_) => "-",
                    })
                    .collect();
                table.push_str(&format!(
                    "{:<18} {:<10} {:<6} {:<8} {:<5} {}\n",
                    op.as_str(),
                    format!("{own:?}").to_lowercase(),
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3]
                ));
            }
        }
        insta::assert_snapshot!(table);
    }
}
