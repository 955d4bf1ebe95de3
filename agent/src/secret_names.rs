//! The names under which the agent keeps its secrets (keyring service and accounts, the 0600
//! fallback file) and the loader of the end-to-end key: shared by enrollment, start-up, doctor
//! and trust, so none of them needs the others.

use cm_client::secrets::{SecretError, SecretStore, StoreChoice};
use proto::handshake::Key;
use proto::ids::HostId;
use std::path::{Path, PathBuf};

/// Keyring service name for host secrets.
pub const SECRET_SERVICE: &str = "codemantle-agent";

/// The keyring account of a host secret.
pub fn secret_account(host: &HostId, relay: &str) -> String {
    format!("{host}@{relay}")
}

/// The keyring account of the host's end-to-end key (next to the host secret).
pub fn e2e_account(host: &HostId, relay: &str) -> String {
    format!("e2e:{host}@{relay}")
}

/// The file the secret goes to when no keyring works.
pub fn secret_file(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets.json")
}

/// Loads the end-to-end key's secret for `host` under the first of `relays` that has one.
///
/// # Errors
/// Store failures.
pub fn load_e2e_secret_any(
    store: &SecretStore,
    host: &HostId,
    relays: &[String],
) -> Result<Option<[u8; 32]>, SecretError> {
    for relay in relays {
        let found = store.get(SECRET_SERVICE, &e2e_account(host, relay))?;
        if let Some(secret) = found.and_then(|s| Key::from_hex(&s)) {
            return Ok(Some(*secret.as_bytes()));
        }
    }
    Ok(None)
}

/// Opens the secret store; returns the fallback warning, if any.
///
/// # Errors
/// A demanded keyring that does not answer.
pub fn open_secrets(
    choice: StoreChoice,
    state_dir: &Path,
) -> Result<(SecretStore, Option<String>), SecretError> {
    SecretStore::open(choice, secret_file(state_dir))
}
