//! Administration requests that arrive over the network (bodies in `proto::admin`): each is
//! checked through `crate::authz` (the body's own rules: which operation a change must travel
//! as, whom an admin may act on), then made by the same functions the CLI uses.

use super::{AdminChange, AdminError, add_user_with_invite, apply_change, kill_target};
use crate::authz::{self, AdminRefusal};
use crate::store::Store;
use proto::admin::{AdminDone, KillTarget, UserRequest};
use proto::header::Op;
use proto::ids::{CredId, UserId};

impl From<AdminRefusal> for AdminError {
    fn from(refusal: AdminRefusal) -> Self {
        match refusal {
            AdminRefusal::Store(e) => Self::Store(e),
            e @ AdminRefusal::NotAdminRights { .. } => Self::Input(e.to_string()),
            e @ (AdminRefusal::NeedsGrantAdmin { .. } | AdminRefusal::Privileged { .. }) => {
                Self::Forbidden(e.to_string())
            }
        }
    }
}

/// A user change (`user_manage` or `grant_admin`, as `op`) by `actor`.
///
/// # Errors
/// Sent as the wrong operation, invalid input, store failures.
pub fn user_request(
    s: &Store,
    pin: &str,
    actor: &str,
    op: Op,
    req: &UserRequest,
) -> Result<AdminDone, AdminError> {
    authz::check_user_request(s, op, req)?;
    let mut invite = None;
    let summary = match req {
        UserRequest::Add { name, role, host } => {
            let i = add_user_with_invite(s, pin, actor, name, *role, host)?;
            invite = Some(i.encode());
            format!("added {name} as {role} on {host}")
        }
        UserRequest::Remove { name } => {
            apply_change(s, actor, AdminChange::RemoveUser { user: name })?
        }
        UserRequest::Passwd { name, password } => {
            super::set_password(s, actor, name, password)?;
            format!("password of {name} changed")
        }
        UserRequest::Grant { name, role, host } => apply_change(
            s,
            actor,
            AdminChange::Grant {
                user: name,
                role: role.as_str(),
                host,
            },
        )?,
        UserRequest::Revoke { name, host } => {
            apply_change(s, actor, AdminChange::RevokeGrant { user: name, host })?
        }
    };
    Ok(AdminDone { summary, invite })
}

/// `creds_revoke` by `actor`: only credentials of users they may manage.
///
/// # Errors
/// Not theirs to revoke, unknown credential, store failures.
pub fn revoke_credential(s: &Store, actor: &str, op: Op, id: &str) -> Result<String, AdminError> {
    authz::check_manage_credential(s, &UserId::from(actor), op, &CredId::from(id))?;
    apply_change(s, actor, AdminChange::RevokeCred { id })
}

/// `kill` by `actor`: a user's or a credential's only if they may manage that user.
///
/// # Errors
/// Not theirs to kill, unknown target, store failures.
pub fn kill(s: &Store, actor: &str, op: Op, target: &KillTarget) -> Result<String, AdminError> {
    let who = UserId::from(actor);
    match target {
        KillTarget::User { name } => {
            authz::check_manage_user(s, &who, op, &UserId::from(name.as_str()))?;
        }
        KillTarget::Cred { id } => {
            authz::check_manage_credential(s, &who, op, &CredId::from(id.as_str()))?;
        }
        KillTarget::Host { .. } | KillTarget::All => {}
    }
    kill_target(s, actor, target)
}
