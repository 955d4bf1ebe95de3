//! Users: adding one with an invite, passwords, second factors.

use super::{AdminError, audit_change, check_grant_host};
use crate::state::{self, SETTING_PUBLIC_ADDR};
use crate::store::Store;
use crate::time::{now_ms, random32};
use proto::ids::UserId;
use proto::rbac::Role;
use proto::token::Invite;

/// Creates a user with one grant and returns their invite, audited as `actor`.
///
/// # Errors
/// Invalid name, taken name, store failures.
pub fn add_user_with_invite(
    store: &Store,
    pin: &str,
    actor: &str,
    name: &str,
    role: Role,
    host: &str,
) -> Result<Invite, AdminError> {
    if !proto::ids::is_valid_name(name) {
        return Err(AdminError::Input(format!(
            "invalid user name {name:?}: use letters, digits, '-', '_' or '.'"
        )));
    }
    check_grant_host(host)?;
    let addr = store
        .setting(SETTING_PUBLIC_ADDR)?
        .ok_or_else(|| AdminError::Input("no public address recorded; re-run init".into()))?;
    let user = UserId::from(name);
    let now = now_ms();
    store.add_user(&user, now)?;
    store.grant(&user, host, role)?;
    let invite = state::new_invite(store, &addr, pin, &user, now)?;
    audit_change(
        store,
        actor,
        "user_add",
        format!("{name} {role} on {host}"),
        None,
    )?;
    Ok(invite)
}

/// Sets a user's password (argon2id), audited as `actor`.
///
/// # Errors
/// Unknown user, short password.
pub fn set_password(
    store: &Store,
    actor: &str,
    name: &str,
    password: &str,
) -> Result<(), AdminError> {
    if !crate::password::long_enough(password) {
        return Err(AdminError::Input(format!(
            "choose a password of at least {} characters",
            crate::password::MIN_PASSWORD_LEN
        )));
    }
    let hash = crate::password::hash_password(password).map_err(AdminError::Input)?;
    store.set_password_hash(&UserId::from(name), &hash)?;
    audit_change(store, actor, "user_passwd", name.into(), None)
}

/// Enrolls a fresh TOTP secret for `name`, audited as `actor`; returns the otpauth:// URI.
///
/// # Errors
/// Unknown user, randomness or store failures.
pub fn enroll_totp(store: &Store, actor: &str, name: &str) -> Result<String, AdminError> {
    let secret = random32().map_err(|e| AdminError::Input(e.to_string()))?;
    // 20 bytes, the RFC 4226 recommendation for HMAC-SHA1.
    let secret = &secret[..20];
    store.set_totp_secret(&UserId::from(name), secret)?;
    audit_change(
        store,
        actor,
        "user_totp",
        format!("{name} enrolled a second factor"),
        None,
    )?;
    Ok(crate::totp::otpauth_uri(name, secret))
}
