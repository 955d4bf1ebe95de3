//! Enrolling hosts and giving them new secrets.

use super::{AdminError, audit_change};
use crate::state::SETTING_PUBLIC_ADDR;
use crate::store::{Store, StoreError};
use crate::time::{now_ms, random32};
use proto::handshake::Key;
use proto::ids::HostId;
use proto::token::EnrollmentToken;

/// A new secret for an enrolled host, audited as `actor`; shared by the CLI and the relay's
/// `host_rotate` operation.
///
/// # Errors
/// Unknown or revoked host, store failures.
pub fn rotate_host(
    store: &Store,
    pin: &str,
    actor: &str,
    name: &str,
    relay_addr: Option<String>,
) -> Result<EnrollmentToken, AdminError> {
    match store.list_hosts()?.iter().find(|h| h.id.as_str() == name) {
        None => {
            return Err(AdminError::Store(StoreError::Missing {
                what: "host",
                name: name.to_owned(),
            }));
        }
        // Rotating must not quietly undo a revocation (a kill switch someone pulled).
        Some(h) if h.revoked => {
            return Err(AdminError::Input(format!(
                "host {name} is revoked; to let it back in, enroll it again with `host add {name}`"
            )));
        }
        Some(_) => {}
    }
    host_enroll(store, pin, actor, name, relay_addr, true)
}

/// Enrolls `name` (or, with `rotate`, replaces the secret of an enrolled host: its agent is
/// disconnected and must re-enroll with the new token), audited as `actor`. Shared by the CLI
/// and the relay's `host_add` / `host_rotate` operations.
///
/// # Errors
/// Invalid or taken name (unknown, for `rotate`), no public address, store failures.
pub fn host_enroll(
    store: &Store,
    pin: &str,
    actor: &str,
    name: &str,
    relay_addr: Option<String>,
    rotate: bool,
) -> Result<EnrollmentToken, AdminError> {
    if !proto::ids::is_valid_name(name) {
        return Err(AdminError::Input(format!(
            "invalid host name {name:?}: use letters, digits, '-', '_' or '.'"
        )));
    }
    let relay = match relay_addr {
        Some(a) => a,
        None => store.setting(SETTING_PUBLIC_ADDR)?.ok_or_else(|| {
            AdminError::Input("no public address recorded; pass --relay-addr".into())
        })?,
    };
    let secret = Key::from_bytes(random32().map_err(|e| AdminError::Input(e.to_string()))?);
    let host = HostId::from(name);
    let now = now_ms();
    if rotate {
        // Revoking first closes the live connection and lets add_host replace the secret.
        store.kill_host(&host)?;
    }
    store.add_host(&host, &secret, now)?;
    audit_change(
        store,
        actor,
        if rotate { "host_rotate" } else { "host_add" },
        format!(
            "{} host {name}",
            if rotate { "new secret for" } else { "enrolled" }
        ),
        Some(name.into()),
    )?;
    Ok(EnrollmentToken {
        relay,
        pin: pin.to_owned(),
        host,
        secret,
        roots: Vec::new(),
        bind: None,
    })
}
