//! The administration domain: users, grants, hosts, credentials and the kill switch. One
//! implementation for both paths that change them, the `cm-relay` CLI (the `cli` module) and the
//! relay's administration operations (`net::admin`, which authorizes first through
//! `crate::authz`), so rules like "the last owner stays" hold on both. Every change is audited
//! here, as one [`Audit::Change`] row naming what was done.

mod error;
mod hosts;
mod reads;
mod requests;
mod users;

pub use error::AdminError;
pub use hosts::{host_enroll, rotate_host};
pub use reads::{audit_page, creds, host_entries, user_list};
pub use requests::{kill, revoke_credential, user_request};
pub use users::{add_user_with_invite, enroll_totp, set_password};

use crate::audit_event::Audit;
use crate::store::Store;
use crate::time::now_ms;
use proto::admin::KillTarget;
use proto::ids::{CredId, HostId, UserId};

/// Who the CLI's audit rows name.
pub const CLI_ACTOR: &str = "cm-relay cli";

/// Records an administrative change made by `actor`.
///
/// # Errors
/// Store failures.
pub fn audit_change(
    store: &Store,
    actor: &str,
    op: &'static str,
    summary: String,
    host: Option<String>,
) -> Result<(), AdminError> {
    let row = Audit::Change {
        actor: actor.into(),
        op,
        summary,
        host,
    }
    .row();
    store.audit(now_ms(), &row)?;
    Ok(())
}

/// "1 credential", "2 credentials": a count with its noun, for summaries people read.
#[must_use]
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn no_credential(id: &str) -> AdminError {
    AdminError::NotFound(format!(
        "no credential {id}; see `cm-relay creds list` or `cm-tui admin creds list`"
    ))
}

/// The kill switch, audited as `actor`; shared by the CLI and the relay's `kill` operation.
///
/// # Errors
/// Unknown targets, store failures.
pub fn kill_target(store: &Store, actor: &str, target: &KillTarget) -> Result<String, AdminError> {
    let now = now_ms();
    let (summary, host) = match target {
        KillTarget::User { name } => {
            let n = store.revoke_user_credentials(&UserId::from(name.as_str()), now)?;
            (
                format!("revoked {} of {name}", counted(n, "credential")),
                None,
            )
        }
        KillTarget::Host { name } => {
            store.kill_host(&HostId::from(name.as_str()))?;
            (format!("revoked host {name}"), Some(name.clone()))
        }
        KillTarget::Cred { id } => {
            if !store.kill_credential(&CredId::from(id.as_str()))? {
                return Err(no_credential(id));
            }
            (format!("revoked credential {id}"), None)
        }
        KillTarget::All => {
            let (c, h) = store.revoke_everything(now)?;
            (
                format!(
                    "revoked {} and {}",
                    counted(c, "credential"),
                    counted(h, "host")
                ),
                None,
            )
        }
    };
    audit_change(store, actor, "kill", summary.clone(), host)?;
    Ok(summary)
}

/// A grant's host is `*` or a valid host name.
pub(crate) fn check_grant_host(host: &str) -> Result<(), AdminError> {
    if host == "*" || proto::ids::is_valid_name(host) {
        Ok(())
    } else {
        Err(AdminError::Input(format!(
            "invalid host {host:?}: use a host name or * for every host"
        )))
    }
}

/// Parses a role name with a helpful error.
///
/// # Errors
/// Unknown role.
pub fn parse_role(role: &str) -> Result<proto::rbac::Role, AdminError> {
    proto::rbac::Role::parse(role).ok_or_else(|| {
        AdminError::Input(format!(
            "unknown role {role:?}: use viewer, operator, admin or owner"
        ))
    })
}

/// Applies one administrative change, audited as `actor`; shared by the CLI and the relay's
/// administration operations (which authorize first).
///
/// # Errors
/// Unknown targets, last-owner protection, store failures.
pub fn apply_change(
    store: &Store,
    actor: &str,
    change: AdminChange<'_>,
) -> Result<String, AdminError> {
    let (op, summary, audit_host) = match change {
        AdminChange::Grant { user, role, host } => {
            let role = parse_role(role)?;
            check_grant_host(host)?;
            store.grant(&UserId::from(user), host, role)?;
            ("grant", format!("{user} is {role} on {host}"), None)
        }
        AdminChange::RevokeGrant { user, host } => {
            store.revoke_grant(&UserId::from(user), host)?;
            (
                "grant_revoke",
                format!("{user} has no grant on {host} any more"),
                None,
            )
        }
        AdminChange::RemoveUser { user } => {
            store.remove_user(&UserId::from(user), now_ms())?;
            ("user_remove", format!("removed {user}"), None)
        }
        AdminChange::RevokeHost { host } => {
            store.kill_host(&HostId::from(host))?;
            (
                "host_revoke",
                format!("revoked host {host}"),
                Some(host.to_owned()),
            )
        }
        AdminChange::RevokeCred { id } => {
            if !store.kill_credential(&CredId::from(id))? {
                return Err(no_credential(id));
            }
            ("cred_revoke", format!("revoked credential {id}"), None)
        }
    };
    audit_change(store, actor, op, summary.clone(), audit_host)?;
    Ok(summary)
}

/// One administrative change.
#[derive(Debug, Clone, Copy)]
pub enum AdminChange<'a> {
    /// Grant a role.
    Grant {
        /// User.
        user: &'a str,
        /// Role name.
        role: &'a str,
        /// Host or `*`.
        host: &'a str,
    },
    /// Remove a grant.
    RevokeGrant {
        /// User.
        user: &'a str,
        /// Host or `*`.
        host: &'a str,
    },
    /// Remove a user.
    RemoveUser {
        /// User.
        user: &'a str,
    },
    /// Revoke a host.
    RevokeHost {
        /// Host.
        host: &'a str,
    },
    /// Revoke a credential.
    RevokeCred {
        /// Credential id.
        id: &'a str,
    },
}
