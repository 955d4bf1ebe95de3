//! `cm-agent enroll TOKEN`: store the host secret (keyring, else a 0600 file) and write the
//! relay address, pin and host id into the configuration file.

use crate::config::{ConfigError, ConfigFile, RelaySetting};
use cm_client::secrets::{SecretError, SecretStore, StoreChoice};
use proto::handshake::Key;
use proto::ids::HostId;
use proto::token::{EnrollmentToken, TokenError};
use std::path::{Path, PathBuf};

/// Keyring service name for host secrets.
pub const SECRET_SERVICE: &str = "codemantle-agent";

/// Enrollment failures.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The token is not valid.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The secret could not be stored.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The configuration could not be written.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The keyring account of a host secret.
pub fn secret_account(host: &HostId, relay: &str) -> String {
    format!("{host}@{relay}")
}

/// The file the secret goes to when no keyring works.
pub fn secret_file(state_dir: &Path) -> PathBuf {
    state_dir.join("secrets.json")
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

/// What enrollment did.
#[derive(Debug)]
pub struct Enrolled {
    /// The host id.
    pub host: HostId,
    /// Where the secret went (human-readable).
    pub secret_location: String,
    /// The fallback warning, when the keyring was unavailable.
    pub warning: Option<String>,
}

/// Enrolls this host with `token`.
///
/// # Errors
/// Bad token, secret store or config write failures.
pub fn enroll(
    token: &str,
    config_path: &Path,
    state_dir: &Path,
    choice: StoreChoice,
) -> Result<Enrolled, EnrollError> {
    let token = EnrollmentToken::decode(token)?;
    let (store, warning) = open_secrets(choice, state_dir)?;
    store.set(
        SECRET_SERVICE,
        &secret_account(&token.host, &token.relay),
        &token.secret.to_hex(),
    )?;
    let mut file = match ConfigFile::load(config_path) {
        Ok(f) => f,
        Err(ConfigError::Read { .. }) => ConfigFile::default(),
        Err(e) => return Err(e.into()),
    };
    // A file that already lists this relay among others keeps its list (relays added by hand).
    let listed = crate::config::relays_of(&file.relay).is_some_and(|e| e.contains(&token.relay));
    if !listed {
        file.relay = RelaySetting::One(token.relay);
    }
    file.pin = token.pin;
    file.host = token.host.0.clone();
    if store.is_file() {
        file.secret_store = Some("file".into());
    }
    file.save(config_path)?;
    Ok(Enrolled {
        host: token.host,
        secret_location: store.describe(),
        warning,
    })
}

/// Loads the host secret for `host` at `relay`.
///
/// # Errors
/// Store failures, or no secret (not enrolled).
pub fn load_secret(
    store: &SecretStore,
    host: &HostId,
    relay: &str,
) -> Result<Option<Key>, SecretError> {
    Ok(store
        .get(SECRET_SERVICE, &secret_account(host, relay))?
        .and_then(|s| Key::from_hex(&s)))
}

/// Loads the host secret for `host` under the first of `relays` (relay strings) that has one.
///
/// # Errors
/// Store failures.
pub fn load_secret_any(
    store: &SecretStore,
    host: &HostId,
    relays: &[String],
) -> Result<Option<Key>, SecretError> {
    for relay in relays {
        if let Some(key) = load_secret(store, host, relay)? {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enroll_stores_secret_and_writes_config() {
        let tmp = tempfile::tempdir().unwrap();
        let token = EnrollmentToken {
            relay: "127.0.0.1:7443".into(),
            pin: "blake3:abcd".into(),
            host: HostId::from("box"),
            secret: Key::from_bytes([9; 32]),
            roots: Vec::new(),
            bind: None,
        };
        let cfg = tmp.path().join("cfg/agent.toml");
        let state = tmp.path().join("state");
        let out = enroll(&token.encode(), &cfg, &state, StoreChoice::File).unwrap();
        assert_eq!(out.host, HostId::from("box"));
        assert!(out.secret_location.contains("0600"));
        let file = ConfigFile::load(&cfg).unwrap();
        assert_eq!(file.pin, "blake3:abcd");
        assert_eq!(file.secret_store.as_deref(), Some("file"));
        let (store, _) = open_secrets(StoreChoice::File, &state).unwrap();
        assert_eq!(
            load_secret(&store, &token.host, &token.relay).unwrap(),
            Some(token.secret)
        );
    }

    #[test]
    fn re_enrolling_keeps_relays_added_by_hand_and_finds_the_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let token = EnrollmentToken {
            relay: "127.0.0.1:7443".into(),
            pin: "blake3:abcd".into(),
            host: HostId::from("box"),
            secret: Key::from_bytes([9; 32]),
            roots: Vec::new(),
            bind: None,
        };
        let cfg = tmp.path().join("agent.toml");
        let state = tmp.path().join("state");
        enroll(&token.encode(), &cfg, &state, StoreChoice::File).unwrap();
        assert_eq!(ConfigFile::load(&cfg).unwrap().relay, "127.0.0.1:7443");
        let mut file = ConfigFile::load(&cfg).unwrap();
        let both = RelaySetting::Many(vec!["127.0.0.2:7443".into(), "127.0.0.1:7443".into()]);
        file.relay = both.clone();
        file.save(&cfg).unwrap();
        enroll(&token.encode(), &cfg, &state, StoreChoice::File).unwrap();
        let file = ConfigFile::load(&cfg).unwrap();
        assert_eq!(file.relay, both);
        let relays = file.validate(&cfg).unwrap().relays;
        let (store, _) = open_secrets(StoreChoice::File, &state).unwrap();
        assert_eq!(
            load_secret_any(&store, &token.host, &relays.secret_accounts).unwrap(),
            Some(token.secret.clone())
        );
        // A token for a relay not listed replaces the list.
        let other = EnrollmentToken {
            relay: "127.0.0.3:7443".into(),
            ..token
        };
        enroll(&other.encode(), &cfg, &state, StoreChoice::File).unwrap();
        assert_eq!(ConfigFile::load(&cfg).unwrap().relay, "127.0.0.3:7443");
    }

    #[test]
    fn a_damaged_token_is_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("agent.toml");
        let err = enroll("cm-enroll-!!!", &cfg, tmp.path(), StoreChoice::File).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert!(!cfg.exists());
    }
}
