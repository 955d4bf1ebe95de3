//! Bodies of the administration operations the relay answers itself (design §6: admins manage
//! hosts, users up to operator, the kill switch and the audit trail; owners grant admin and
//! owner). Each request is one body frame after the [`StreamHeader`](crate::header::StreamHeader);
//! the answer is one [`Reply`](crate::message::Reply) frame.
//!
//! | op | body | answer |
//! | --- | --- | --- |
//! | `user_list` | none | `Vec<UserInfo>` |
//! | `user_manage` | [`UserRequest`] (roles up to operator) | [`AdminDone`] |
//! | `grant_admin` | [`UserRequest`] touching admin or owner | [`AdminDone`] |
//! | `host_add` | [`HostAdd`] | [`HostEnrolled`] |
//! | `host_revoke` | [`HostName`] | [`AdminDone`] |
//! | `host_rotate` | [`HostRequest`] | `Vec<HostEntry>` for `list`, [`HostEnrolled`] for `rotate` |
//! | `creds_list` | optional [`CredsQuery`] | `Vec<CredInfo>` |
//! | `creds_revoke` | [`CredName`] | [`AdminDone`] |
//! | `kill` | [`KillTarget`] | [`AdminDone`] |
//! | `audit_read` | optional [`AuditQuery`] | `Vec<AuditEntry>` |
//!
//! A [`UserRequest`] that grants, revokes or changes anything about admin or owner rights must
//! be sent as `grant_admin` (owner only); sent as `user_manage` the relay refuses it with a
//! `forbidden` error that names the role needed, and the reverse mismatch is a `bad_request`.

use crate::header::Op;
use crate::rbac::Role;
use serde::{Deserialize, Serialize};

/// Most audit rows one `audit_read` returns.
pub const MAX_AUDIT_ROWS: usize = 1_000;

/// A change to users and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum UserRequest {
    /// Create a user with one grant; the answer carries their one-time invite.
    Add {
        /// User name.
        name: String,
        /// Their role on `host`.
        role: Role,
        /// Host or `*`.
        host: String,
    },
    /// Remove a user, their grants and credentials (never the last owner).
    Remove {
        /// User name.
        name: String,
    },
    /// Set a user's password.
    Passwd {
        /// User name.
        name: String,
        /// The new password (at least the relay's minimum length).
        password: String,
    },
    /// Grant a role on a host (replaces an earlier grant on that host).
    Grant {
        /// User name.
        name: String,
        /// Role.
        role: Role,
        /// Host or `*`.
        host: String,
    },
    /// Remove a user's grant on a host.
    Revoke {
        /// User name.
        name: String,
        /// Host or `*`.
        host: String,
    },
}

impl UserRequest {
    /// The user the request is about.
    pub fn user(&self) -> &str {
        match self {
            Self::Add { name, .. }
            | Self::Remove { name }
            | Self::Passwd { name, .. }
            | Self::Grant { name, .. }
            | Self::Revoke { name, .. } => name,
        }
    }

    /// The role the request gives, if it gives one.
    pub fn role_given(&self) -> Option<Role> {
        match self {
            Self::Add { role, .. } | Self::Grant { role, .. } => Some(*role),
            Self::Remove { .. } | Self::Passwd { .. } | Self::Revoke { .. } => None,
        }
    }
}

/// The operation a user change must be sent as, given the target's current grants:
/// `grant_admin` when it gives, takes or touches admin or owner rights, else `user_manage`.
/// The relay refuses a request whose header operation differs.
pub fn required_op(req: &UserRequest, target_grants: &[GrantInfo]) -> Op {
    let held = |host: Option<&str>| {
        target_grants
            .iter()
            .filter(|g| host.is_none_or(|x| x == g.host))
            .map(|g| g.role)
            .max()
    };
    let touched = match req {
        UserRequest::Add { role, .. } => Some(*role),
        UserRequest::Grant { role, host, .. } => held(Some(host)).max(Some(*role)),
        UserRequest::Revoke { host, .. } => held(Some(host)),
        UserRequest::Remove { .. } | UserRequest::Passwd { .. } => held(None),
    };
    if touched.is_some_and(|r| r > Role::Operator) {
        Op::GrantAdmin
    } else {
        Op::UserManage
    }
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantInfo {
    /// Host or `*`.
    pub host: String,
    /// Role there.
    pub role: Role,
}

/// A user as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Name.
    pub name: String,
    /// Whether a password is set (else only an invite can log them in).
    pub has_password: bool,
    /// Their grants.
    pub grants: Vec<GrantInfo>,
}

/// The answer to a change: what was done, in words (also what the audit row says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminDone {
    /// E.g. `bob is operator on box`.
    pub summary: String,
    /// For `user_manage` `add`: the encoded one-time invite (`cm-tui login --invite …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// `host_add`: enroll a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAdd {
    /// Host name.
    pub name: String,
    /// The relay address to put in the token (default: the relay's public address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_addr: Option<String>,
}

/// A host named in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostName {
    /// Host name.
    pub name: String,
}

/// `host_rotate` bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HostRequest {
    /// Every enrolled host with its enrollment details.
    List,
    /// Issue the host a new secret: the old one stops working (its agent disconnects) and the
    /// answer's token re-enrolls it (`cm-agent enroll`).
    Rotate {
        /// Host name.
        name: String,
    },
}

/// Answer to `host_rotate`: the list for [`HostRequest::List`], the new token for
/// [`HostRequest::Rotate`] (untagged: each is sent as it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostRotated {
    /// Every enrolled host.
    List(Vec<HostEntry>),
    /// The rotated host's new enrollment token.
    Rotated(HostEnrolled),
}

/// An enrolled host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// Host name.
    pub name: String,
    /// Revoked hosts cannot connect.
    pub revoked: bool,
    /// Enrollment time, unix ms.
    pub created_ms: u64,
}

/// A host's enrollment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEnrolled {
    /// Host name.
    pub name: String,
    /// The encoded token for `cm-agent enroll` (a secret: hand it over privately).
    pub token: String,
}

/// `creds_list` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CredsQuery {
    /// Only this user's credentials.
    pub user: Option<String>,
    /// Include revoked and expired ones.
    pub all: bool,
}

/// A login credential (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredInfo {
    /// Credential id.
    pub id: String,
    /// Owner.
    pub user: String,
    /// Issue time, unix ms.
    pub created_ms: u64,
    /// Expiry, unix ms.
    pub expires_ms: u64,
    /// Revoked.
    pub revoked: bool,
    /// Label given at login (device name).
    #[serde(default)]
    pub label: Option<String>,
}

/// A credential named in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredName {
    /// Credential id.
    pub id: String,
}

/// What the kill switch hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum KillTarget {
    /// Every credential of a user.
    User {
        /// User name.
        name: String,
    },
    /// A host (revoked; its agent stops its OpenCode processes).
    Host {
        /// Host name.
        name: String,
    },
    /// One credential.
    Cred {
        /// Credential id.
        id: String,
    },
    /// Every operator credential and every host.
    All,
}

/// `audit_read` filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    /// Only rows whose actor is this user.
    pub user: Option<String>,
    /// Only rows about this host.
    pub host: Option<String>,
    /// Only rows older than this id (paging backwards).
    pub before_id: Option<i64>,
    /// Newest rows to return (at most [`MAX_AUDIT_ROWS`]; 0 means 50).
    pub limit: usize,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// Time, unix ms.
    pub ts_ms: u64,
    /// Who acted.
    pub actor: String,
    /// Their role.
    #[serde(default)]
    pub role: Option<String>,
    /// Host.
    #[serde(default)]
    pub host: Option<String>,
    /// What was attempted.
    pub op: String,
    /// On what.
    #[serde(default)]
    pub target: Option<String>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// This row's chained hash.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_touching_admin_rights_need_grant_admin() {
        let add = |role| UserRequest::Add {
            name: "u".into(),
            role,
            host: "*".into(),
        };
        assert_eq!(required_op(&add(Role::Operator), &[]), Op::UserManage);
        assert_eq!(required_op(&add(Role::Admin), &[]), Op::GrantAdmin);
        let g = |host: &str, role| GrantInfo {
            host: host.into(),
            role,
        };
        let admin_on_box = vec![g("box", Role::Admin), g("*", Role::Viewer)];
        let grant = |role: Role, host: &str| UserRequest::Grant {
            name: "u".into(),
            role,
            host: host.into(),
        };
        // Demoting an admin is an admin-rights change; granting elsewhere is not.
        assert_eq!(
            required_op(&grant(Role::Viewer, "box"), &admin_on_box),
            Op::GrantAdmin
        );
        assert_eq!(
            required_op(&grant(Role::Operator, "*"), &admin_on_box),
            Op::UserManage
        );
        let revoke = |host: &str| UserRequest::Revoke {
            name: "u".into(),
            host: host.into(),
        };
        assert_eq!(required_op(&revoke("box"), &admin_on_box), Op::GrantAdmin);
        assert_eq!(required_op(&revoke("*"), &admin_on_box), Op::UserManage);
        let remove = UserRequest::Remove { name: "u".into() };
        assert_eq!(required_op(&remove, &admin_on_box), Op::GrantAdmin);
        assert_eq!(
            required_op(&remove, &[g("*", Role::Operator)]),
            Op::UserManage
        );
    }

    #[test]
    fn golden_json() {
        let r = UserRequest::Grant {
            name: "bob".into(),
            role: Role::Operator,
            host: "box".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"action":"grant","name":"bob","role":"operator","host":"box"}"#
        );
        assert_eq!(r.user(), "bob");
        assert_eq!(r.role_given(), Some(Role::Operator));
        assert_eq!(
            serde_json::to_string(&KillTarget::All).unwrap(),
            r#"{"target":"all"}"#
        );
        assert_eq!(
            serde_json::to_string(&KillTarget::Host { name: "h".into() }).unwrap(),
            r#"{"target":"host","name":"h"}"#
        );
        assert_eq!(
            serde_json::to_string(&HostRequest::List).unwrap(),
            r#"{"action":"list"}"#
        );
        let q: AuditQuery = serde_json::from_str(r#"{"user":"ann","later":1}"#).unwrap();
        assert_eq!(q.user.as_deref(), Some("ann"));
        assert_eq!(q.limit, 0);
    }
}
