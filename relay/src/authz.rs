//! The one authorization point. Every access decision the relay makes is a function here:
//! - a stream header an operator opens ([`decide`]), with the session's ownership
//!   ([`ownership`]), before anything is answered or forwarded;
//! - an administration body: whether a user change must travel as `grant_admin`
//!   ([`check_user_request`]), and whom an admin may act on ([`check_manage_user`],
//!   [`check_manage_credential`]);
//! - the offline queue: whose entries a user sees or cancels ([`may_touch_queued`]) and
//!   whether a queued prompt may still be delivered ([`deliver_queued`]);
//! - whether a credential is usable: at the handshake ([`admit_handshake`]), for a live
//!   connection ([`live_credential`]) and for a queued prompt ([`deliver_queued`]), all by the
//!   one rule [`credential_problem`].
//!
//! Handlers never re-check. The rules needing data read it from a [`Store`] given to them.

use crate::store::{FoundCredential, HostRow, QueueRow, Store, StoreError};
use proto::admin::{GrantInfo, UserRequest};
use proto::handshake::{CredentialRecord, EXPORTER_LEN, H1, HandshakeError, PeerKind};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, UserId};
use proto::rbac::{self, Decision, Ownership, Role};
use proto::replay::ReplayWindow;

/// The effective role of a user with `grants` on `host`: the highest grant that matches the
/// host or `*` (design §6).
pub fn effective_role(grants: &[(String, Role)], host: &HostId) -> Option<Role> {
    grants
        .iter()
        .filter(|(h, _)| h == "*" || h == host.as_str())
        .map(|(_, r)| *r)
        .max()
}

/// The role that counts for an operation without a host target (e.g. listing hosts): the
/// highest of all grants.
pub fn highest_role(grants: &[(String, Role)]) -> Option<Role> {
    grants.iter().map(|(_, r)| *r).max()
}

/// The role of the user's grant on every host (`*`), if any.
pub fn global_role(grants: &[(String, Role)]) -> Option<Role> {
    grants
        .iter()
        .filter(|(h, _)| h == "*")
        .map(|(_, r)| *r)
        .max()
}

/// Whether `publisher`, whose global role is `role`, may announce a trust root of `root_user`
/// (`trust_publish`): only an owner on every host, and only for their own name.
pub fn may_announce_root(publisher: &UserId, role: Option<Role>, root_user: &UserId) -> bool {
    role == Some(Role::Owner) && publisher == root_user
}

/// Relay-answered operations that need admin or more (administration of the relay itself).
pub fn is_relay_admin(op: proto::header::Op) -> bool {
    op.is_relay_local()
        && rbac::required_role(op, Ownership::None).is_some_and(|r| r >= Role::Admin)
}

/// Whether a user with `grants` may see `host` at all.
pub fn may_see(grants: &[(String, Role)], host: &HostId) -> bool {
    effective_role(grants, host).is_some()
}

/// Whether `host` is in the host list of a user with `grants`: enrolled, not revoked, and
/// visible to them ([`may_see`]).
pub fn lists_host(grants: &[(String, Role)], host: &HostRow) -> bool {
    !host.revoked && may_see(grants, &host.id)
}

/// Whether `actor` (with `actor_grants`) may act on the account or credentials of `target`
/// (holding `target_grants`): kill their credentials, revoke one, change their password,
/// remove them. As for grants, a user with admin or owner rights anywhere is managed only by
/// an owner of every host; anyone may act on themselves.
pub fn may_manage_user(
    actor: &UserId,
    actor_grants: &[(String, Role)],
    target: &UserId,
    target_grants: &[(String, Role)],
) -> bool {
    actor == target
        || highest_role(target_grants).is_none_or(|r| r < Role::Admin)
        || global_role(actor_grants) == Some(Role::Owner)
}

/// Whether `user` (holding `grants`) is notified about something on `host` (see
/// `crate::notify`): in a session with a known `owner`, only the owner, while they may see
/// the host; otherwise (an unknown session, a host event) everyone who may drive the host
/// (operator or more). Viewers are never notified of what they cannot answer.
pub fn may_be_notified(
    user: &UserId,
    grants: &[(String, Role)],
    host: &HostId,
    owner: Option<&UserId>,
) -> bool {
    match owner {
        Some(owner) => owner == user && may_see(grants, host),
        None => effective_role(grants, host).is_some_and(|r| r >= Role::Operator),
    }
}

/// Decides one stream header for a principal with `grants`.
pub fn decide(
    grants: &[(String, Role)],
    header: &StreamHeader,
    ownership: Ownership,
) -> (Option<Role>, Decision) {
    let role = if is_relay_admin(header.op) {
        // Administering the relay (users, hosts, credentials, kill switch, audit) is global:
        // only a grant on every host (`*`) counts, so an admin of one host cannot manage
        // users or kill other hosts — whatever host the header names.
        global_role(grants)
    } else {
        match &header.host {
            Some(host) => effective_role(grants, host),
            None => highest_role(grants),
        }
    };
    (role, rbac::authorize(role, header.op, ownership))
}

/// Whether driving a session with `op` under `ownership` is a take-over of someone else's
/// session (design §6), which the audit row says.
pub fn is_take_over(op: Op, ownership: Ownership) -> bool {
    ownership == Ownership::Other
        && rbac::required_role(op, Ownership::Other) != rbac::required_role(op, Ownership::Own)
}

/// How `user` relates to a session whose recorded owner lookup gave `owner`: sessions
/// CodeMantle saw created (and their sub-agent sessions) have an owner; an unknown session
/// (created outside CodeMantle, or never seen) counts as someone else's, and so does one whose
/// lookup failed (fail closed). No session named: [`Ownership::None`].
pub fn ownership<E>(
    user: &UserId,
    owner: Option<Result<Option<UserId>, E>>,
) -> (Ownership, Option<UserId>) {
    match owner {
        None => (Ownership::None, None),
        Some(Ok(Some(owner))) if owner == *user => (Ownership::Own, Some(owner)),
        Some(Ok(Some(owner))) => (Ownership::Other, Some(owner)),
        Some(Ok(None) | Err(_)) => (Ownership::Other, None),
    }
}

/// Why an administration request is refused by its body.
#[derive(Debug, thiserror::Error)]
pub enum AdminRefusal {
    /// The change touches admin or owner rights but came as `user_manage`.
    #[error(
        "user_manage: needs role owner: this change touches admin or owner rights of {user}; \
         an owner sends it as grant_admin"
    )]
    NeedsGrantAdmin {
        /// The user the change is about.
        user: String,
    },
    /// The change came as `grant_admin` but touches no admin or owner rights.
    #[error("this change to {user} does not touch admin or owner rights; send it as user_manage")]
    NotAdminRights {
        /// The user the change is about.
        user: String,
    },
    /// An admin acting on a user with admin or owner rights (only an owner of every host may).
    #[error(
        "{}: {target} holds admin or owner rights; only an owner (on every host) may act on them",
        op.as_str()
    )]
    Privileged {
        /// The operation.
        op: Op,
        /// The user acted on.
        target: UserId,
    },
    /// The data the decision needs could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The administration body check: a user change is carried by the operation the header was
/// authorized for only if that is the operation the change needs (`grant_admin` when it touches
/// admin or owner rights of the target, else `user_manage`; see
/// [`proto::admin::required_op`]).
///
/// # Errors
/// The wrong operation for the change, or the target's grants could not be read.
pub fn check_user_request(store: &Store, op: Op, req: &UserRequest) -> Result<(), AdminRefusal> {
    let target = UserId::from(req.user());
    let held: Vec<GrantInfo> = store
        .grants(&target)?
        .into_iter()
        .map(|(host, role)| GrantInfo { host, role })
        .collect();
    match proto::admin::required_op(req, &held) {
        needed if needed == op => Ok(()),
        Op::GrantAdmin => Err(AdminRefusal::NeedsGrantAdmin {
            user: req.user().to_owned(),
        }),
        _ => Err(AdminRefusal::NotAdminRights {
            user: req.user().to_owned(),
        }),
    }
}

/// [`may_manage_user`] with both users' grants read from `store`: `actor` acting (with `op`)
/// on `target`'s account or credentials.
///
/// # Errors
/// [`AdminRefusal::Privileged`], or the grants could not be read.
pub fn check_manage_user(
    store: &Store,
    actor: &UserId,
    op: Op,
    target: &UserId,
) -> Result<(), AdminRefusal> {
    if may_manage_user(actor, &store.grants(actor)?, target, &store.grants(target)?) {
        return Ok(());
    }
    Err(AdminRefusal::Privileged {
        op,
        target: target.clone(),
    })
}

/// [`check_manage_user`] for the user credential `id` belongs to. An unknown credential is
/// left to the change, which says it is not found.
///
/// # Errors
/// As [`check_manage_user`].
pub fn check_manage_credential(
    store: &Store,
    actor: &UserId,
    op: Op,
    id: &CredId,
) -> Result<(), AdminRefusal> {
    match store.find_credential(PeerKind::Operator, id)? {
        Some(found) => check_manage_user(store, actor, op, &UserId(found.owner)),
        None => Ok(()),
    }
}

/// Why a credential may not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialProblem {
    /// No such credential (or it was deleted with its user).
    Unknown,
    /// Revoked: the kill switch, logout, a host revoke.
    Revoked,
    /// Past its expiry.
    Expired,
}

/// The one rule for whether a credential is usable at `now_ms`: it exists, is not revoked, and
/// has not expired (host credentials do not expire).
pub fn credential_problem(
    record: Option<&CredentialRecord>,
    now_ms: u64,
) -> Option<CredentialProblem> {
    match record {
        None => Some(CredentialProblem::Unknown),
        Some(r) if r.revoked => Some(CredentialProblem::Revoked),
        Some(r) if expired(r.expires_at_ms, now_ms) => Some(CredentialProblem::Expired),
        Some(_) => None,
    }
}

fn expired(expires_at_ms: Option<u64>, now_ms: u64) -> bool {
    expires_at_ms.is_some_and(|exp| now_ms >= exp)
}

/// [`credential_problem`]'s rule for a listed credential (`creds_list` shows the usable ones).
pub fn credential_usable(revoked: bool, expires_at_ms: u64, now_ms: u64) -> bool {
    !revoked && !expired(Some(expires_at_ms), now_ms)
}

/// The credentials among `revoked` (each with a host its user holds a grant on, or `*`) that
/// `host`'s agent is told about: only those whose user could reach it, so an agent never
/// learns the credential ids of users who could not.
pub fn revocations_for_host(revoked: &[(CredId, String)], host: &str) -> Vec<CredId> {
    let mut ids: Vec<CredId> = revoked
        .iter()
        .filter(|(_, h)| h == "*" || h == host)
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The handshake's decision on h1 for the credential `found` (the lookup of `h1.cred_id`):
/// the protocol's checks (version, kind, MAC, skew, replay; `proto::handshake::verify_h1`),
/// which include [`credential_problem`]'s rule, checked here again as the relay's own.
///
/// # Errors
/// Why the handshake is refused (for logs and the audit trail only).
pub fn admit_handshake(
    h1: &H1,
    found: Option<&FoundCredential>,
    exporter: &[u8; EXPORTER_LEN],
    now_ms: u64,
    replay: &mut ReplayWindow,
) -> Result<(), HandshakeError> {
    let record = found.map(|f| &f.record);
    proto::handshake::verify_h1(h1, record, exporter, now_ms, replay)?;
    match credential_problem(record, now_ms) {
        None => Ok(()),
        Some(CredentialProblem::Unknown) => Err(HandshakeError::UnknownCredential),
        Some(CredentialProblem::Revoked) => Err(HandshakeError::Revoked),
        Some(CredentialProblem::Expired) => Err(HandshakeError::Expired),
    }
}

/// Whether a live connection may stay open: `expires_at_ms` is the expiry it was admitted
/// with; `current` is a fresh lookup of its credential, when the sweeper made one (after a
/// revocation). `None`: it may stay.
pub fn live_credential(
    expires_at_ms: Option<u64>,
    current: Option<Option<&CredentialRecord>>,
    now_ms: u64,
) -> Option<CredentialProblem> {
    if expired(expires_at_ms, now_ms) {
        return Some(CredentialProblem::Expired);
    }
    match current {
        None => None,
        Some(record) => credential_problem(record, now_ms),
    }
}

/// Whether `user` may see or cancel the queued entry `row`: only its author.
pub fn may_touch_queued(user: &UserId, row: &QueueRow) -> bool {
    row.user == user.as_str()
}

/// Why a queued prompt is not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueRefusal {
    /// The credential it was queued with may not be used any more (or is not the author's).
    #[error("{0}")]
    Credential(String),
    /// The author's role no longer allows it.
    #[error("{0}")]
    Denied(rbac::DenyReason),
    /// Allowed without a role (cannot happen for a prompt).
    #[error("no role")]
    NoRole,
}

/// Whether queued `row` may be delivered now, with the role it travels with: the credential it
/// was queued with (`found`) must still be its author's and usable, and the author's current
/// `grants` must allow the prompt (`header`, `ownership`), as if it were sent now.
///
/// # Errors
/// Why it is refused (the text goes into the audit trail and the entry).
pub fn deliver_queued(
    row: &QueueRow,
    found: Option<&FoundCredential>,
    grants: &[(String, Role)],
    header: &StreamHeader,
    ownership: Ownership,
    now_ms: u64,
) -> Result<Role, QueueRefusal> {
    let cred = &row.cred_id;
    let problem = match found {
        Some(f) if f.owner != row.user => {
            Some(format!("credential {cred} does not belong to {}", row.user))
        }
        _ => match credential_problem(found.map(|f| &f.record), now_ms) {
            None => None,
            Some(CredentialProblem::Unknown) => Some(format!(
                "credential {cred} of {} no longer exists",
                row.user
            )),
            Some(CredentialProblem::Revoked) => Some(format!("credential {cred} was revoked")),
            Some(CredentialProblem::Expired) => Some(format!("credential {cred} has expired")),
        },
    };
    if let Some(problem) = problem {
        return Err(QueueRefusal::Credential(problem));
    }
    match decide(grants, header, ownership) {
        (Some(role), Decision::Allow) => Ok(role),
        (None, Decision::Allow) => Err(QueueRefusal::NoRole),
        (_, Decision::Deny(reason)) => Err(QueueRefusal::Denied(reason)),
    }
}

#[cfg(test)]
mod tests;
