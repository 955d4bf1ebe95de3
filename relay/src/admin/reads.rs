//! What administrators read: users, hosts, credentials, the audit trail.

use crate::store::{AuditFilter, Store, StoreError};
use proto::admin::{
    AuditEntry, AuditQuery, CredInfo, CredsQuery, GrantInfo, HostEntry, MAX_AUDIT_ROWS, UserInfo,
};

/// Audit rows returned when the query names no limit.
const AUDIT_DEFAULT: usize = 50;

/// Every user and their grants.
///
/// # Errors
/// Store failures.
pub fn user_list(s: &Store) -> Result<Vec<UserInfo>, StoreError> {
    Ok(s.list_users()?
        .into_iter()
        .map(|u| UserInfo {
            name: u.name.0,
            has_password: u.has_password,
            grants: u
                .grants
                .into_iter()
                .map(|(host, role)| GrantInfo { host, role })
                .collect(),
        })
        .collect())
}

/// Every enrolled host.
///
/// # Errors
/// Store failures.
pub fn host_entries(s: &Store) -> Result<Vec<HostEntry>, StoreError> {
    Ok(s.list_hosts()?
        .into_iter()
        .map(|h| HostEntry {
            name: h.id.0,
            revoked: h.revoked,
            created_ms: h.created_ms,
        })
        .collect())
}

/// Operator credentials (never their secrets): the usable ones, or with `all` every one.
///
/// # Errors
/// Store failures.
pub fn creds(s: &Store, q: &CredsQuery) -> Result<Vec<CredInfo>, StoreError> {
    let now = crate::time::now_ms();
    Ok(s.list_credentials()?
        .into_iter()
        .filter(|c| q.user.as_deref().is_none_or(|u| c.user.as_str() == u))
        .filter(|c| q.all || crate::authz::credential_usable(c.revoked, c.expires_ms, now))
        .map(|c| CredInfo {
            id: c.id.0,
            user: c.user.0,
            created_ms: c.created_ms,
            expires_ms: c.expires_ms,
            revoked: c.revoked,
            label: c.label,
        })
        .collect())
}

/// A page of the audit trail, filtered and paged in the database.
///
/// # Errors
/// Store failures.
pub fn audit_page(s: &Store, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    let limit = match q.limit {
        0 => AUDIT_DEFAULT,
        n => n.min(MAX_AUDIT_ROWS),
    };
    let rows = s.audit_page(&AuditFilter {
        user: q.user.as_deref(),
        host: q.host.as_deref(),
        before_id: q.before_id,
        limit,
    })?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            ts_ms: r.ts_ms,
            actor: r.event.actor,
            role: r.event.role,
            host: r.event.host,
            op: r.event.op,
            target: r.event.target,
            decision: r.event.decision,
            reason: r.event.reason,
            hash: r.hash,
        })
        .collect())
}
