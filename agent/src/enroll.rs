//! `cm-agent enroll TOKEN`: store the host secret (keyring, else a 0600 file) and write the
//! relay address, pin and host id into the configuration file.
//!
//! A token made on an owner's or admin's laptop (`cm-tui admin host add`) carries the owners'
//! roots and a bind secret: the host becomes zero-trust (issue #20). Enrollment then makes the
//! host's end-to-end key, keeps its secret next to the host secret and writes `trust.json`.
//! A token without roots (made by the relay) enrolls a relay-trusted host; over a zero-trust
//! enrollment it is refused unless the operator says so (`--relay-trusted`), since a relay
//! could otherwise turn a host's own checks off by handing out such a token.

use crate::config::{ConfigError, ConfigFile, RelaySetting};
use crate::trust::{StoreError, TrustFile, TrustMode};
use cm_client::secrets::{SecretError, SecretStore, StoreChoice};
use proto::handshake::Key;
use proto::ids::HostId;
use proto::token::{EnrollmentToken, TokenError};
use std::path::Path;

pub use crate::secret_names::{
    SECRET_SERVICE, e2e_account, load_e2e_secret_any, open_secrets, secret_account, secret_file,
};

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
    /// `trust.json` could not be read or written.
    #[error(transparent)]
    Trust(#[from] StoreError),
    /// No randomness for the end-to-end key.
    #[error("cannot make the end-to-end key: no randomness from the OS ({0})")]
    Random(String),
    /// A relay-made token (no roots) over a zero-trust enrollment, without `--relay-trusted`.
    #[error(
        "host {host} is zero-trust (it verifies operators itself), but this token carries no owner roots: it was made by the relay, not on an owner's laptop. Enrolling with it would make the host trust the relay again. Use a token from `cm-tui admin host add {host}`, or pass --relay-trusted if you really mean to drop zero-trust"
    )]
    WouldDropZeroTrust {
        /// The host.
        host: HostId,
    },
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
    /// The owners' roots pinned (none: relay-trusted).
    pub roots: usize,
    /// Whether a zero-trust enrollment was dropped (`--relay-trusted`).
    pub dropped_zero_trust: bool,
}

/// How to enroll.
#[derive(Debug, Clone, Copy)]
pub struct EnrollOptions {
    /// Where secrets go.
    pub store: StoreChoice,
    /// Accept a token without roots over a zero-trust enrollment (drops zero-trust).
    pub relay_trusted: bool,
}

/// Enrolls this host with `token`, secrets in `choice` (a relay-made token over a zero-trust
/// enrollment is refused: see [`enroll_with`]).
///
/// # Errors
/// As [`enroll_with`].
pub fn enroll(
    token: &str,
    config_path: &Path,
    state_dir: &Path,
    choice: StoreChoice,
) -> Result<Enrolled, EnrollError> {
    let options = EnrollOptions {
        store: choice,
        relay_trusted: false,
    };
    enroll_with(token, config_path, state_dir, options)
}

/// Enrolls this host with `token`.
///
/// # Errors
/// Bad token, a relay-made token over a zero-trust enrollment, secret store or file write
/// failures.
pub fn enroll_with(
    token: &str,
    config_path: &Path,
    state_dir: &Path,
    options: EnrollOptions,
) -> Result<Enrolled, EnrollError> {
    let token = EnrollmentToken::decode(token)?;
    // Before anything is written: a damaged trust.json counts as zero-trust.
    let was_zero_trust = !matches!(TrustFile::load(state_dir), Ok(None));
    if was_zero_trust && token.roots.is_empty() && !options.relay_trusted {
        return Err(EnrollError::WouldDropZeroTrust { host: token.host });
    }
    let (store, warning) = open_secrets(options.store, state_dir)?;
    store.set(
        SECRET_SERVICE,
        &secret_account(&token.host, &token.relay),
        &token.secret.to_hex(),
    )?;
    let e2e = e2e_account(&token.host, &token.relay);
    if token.roots.is_empty() {
        store.delete(SECRET_SERVICE, &e2e)?;
    } else {
        let secret =
            crate::trust::generate_secret().map_err(|e| EnrollError::Random(e.to_string()))?;
        store.set(SECRET_SERVICE, &e2e, &hex::encode(secret))?;
    }
    let mut file = match ConfigFile::load(config_path) {
        Ok(f) => f,
        Err(ConfigError::Read { .. }) => ConfigFile::default(),
        Err(e) => return Err(e.into()),
    };
    // A file that already lists this relay among others keeps its list (relays added by hand).
    let listed = crate::config::relays_of(&file.relay).is_some_and(|e| e.contains(&token.relay));
    if !listed {
        file.relay = RelaySetting::One(token.relay.clone());
    }
    file.pin = token.pin;
    file.host = token.host.0.clone();
    if store.is_file() {
        file.secret_store = Some("file".into());
    }
    file.save(config_path)?;
    // Last, so a failed enrollment leaves the host as it was.
    let roots = token.roots.len();
    if token.roots.is_empty() {
        crate::trust::remove(state_dir)?;
    } else {
        TrustFile {
            version: 1,
            mode: TrustMode::ZeroTrust,
            host: token.host.clone(),
            relay: token.relay.clone(),
            roots: token.roots,
            bind: token.bind,
            enrolled_ms: cm_client::time::now_ms(),
            rotations: Default::default(),
        }
        .save(state_dir)?;
    }
    Ok(Enrolled {
        host: token.host,
        secret_location: store.describe(),
        warning,
        roots,
        dropped_zero_trust: was_zero_trust && roots == 0,
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

    const FILE_OPTS: EnrollOptions = EnrollOptions {
        store: StoreChoice::File,
        relay_trusted: false,
    };

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

    fn zero_trust_token() -> EnrollmentToken {
        EnrollmentToken {
            relay: "127.0.0.1:7443".into(),
            pin: "blake3:abcd".into(),
            host: HostId::from("box"),
            secret: Key::from_bytes([9; 32]),
            roots: vec![proto::trust::Root {
                user: "olivia".into(),
                key: proto::trust::DeviceKey::from_seed([4; 32])
                    .unwrap()
                    .public(),
            }],
            bind: Some(proto::handshake::Bytes32([6; 32])),
        }
    }

    #[test]
    fn a_token_with_roots_pins_them_privately_and_stores_an_end_to_end_key() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let (cfg, state) = (tmp.path().join("agent.toml"), tmp.path().join("state"));
        let token = zero_trust_token();
        let out = enroll(&token.encode(), &cfg, &state, StoreChoice::File).unwrap();
        assert_eq!(out.roots, 1);
        let file = TrustFile::load(&state).unwrap().unwrap();
        assert_eq!(file.mode, TrustMode::ZeroTrust);
        assert_eq!(file.roots, token.roots);
        assert_eq!(file.bind, token.bind);
        assert_eq!(file.host, token.host);
        let path = crate::trust::trust_path(&state);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (store, _) = open_secrets(StoreChoice::File, &state).unwrap();
        let relays = [token.relay.clone()];
        let first = load_e2e_secret_any(&store, &token.host, &relays).unwrap();
        assert!(first.is_some_and(|s| s != [0; 32]));
        // The host secret is still where it was.
        assert_eq!(
            load_secret(&store, &token.host, &token.relay).unwrap(),
            Some(token.secret.clone())
        );
        // Nothing secret in trust.json besides the bind secret: not the end-to-end key.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(first.unwrap())), "{text}");
    }

    #[test]
    fn a_relay_made_token_cannot_silently_turn_a_zero_trust_host_relay_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let (cfg, state) = (tmp.path().join("agent.toml"), tmp.path().join("state"));
        let zero = zero_trust_token();
        enroll(&zero.encode(), &cfg, &state, StoreChoice::File).unwrap();
        let config_before = std::fs::read(&cfg).unwrap();
        let relay_made = EnrollmentToken {
            roots: Vec::new(),
            bind: None,
            secret: Key::from_bytes([8; 32]),
            ..zero.clone()
        };
        let err = enroll(&relay_made.encode(), &cfg, &state, StoreChoice::File).unwrap_err();
        assert!(
            matches!(err, EnrollError::WouldDropZeroTrust { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("--relay-trusted"), "{err}");
        // Refused before anything changed.
        assert!(TrustFile::load(&state).unwrap().is_some());
        assert_eq!(std::fs::read(&cfg).unwrap(), config_before);
        let (store, _) = open_secrets(StoreChoice::File, &state).unwrap();
        assert_eq!(
            load_secret(&store, &zero.host, &zero.relay).unwrap(),
            Some(zero.secret.clone())
        );
        // Said explicitly: the host becomes relay-trusted and its pins and key go.
        let forced = EnrollOptions {
            relay_trusted: true,
            ..FILE_OPTS
        };
        let out = enroll_with(&relay_made.encode(), &cfg, &state, forced).unwrap();
        assert!(out.dropped_zero_trust);
        assert_eq!(TrustFile::load(&state).unwrap(), None);
        let relays = [zero.relay.clone()];
        assert_eq!(
            load_e2e_secret_any(&store, &zero.host, &relays).unwrap(),
            None
        );
    }

    #[test]
    fn a_damaged_trust_file_counts_as_zero_trust_for_a_relay_made_token() {
        let tmp = tempfile::tempdir().unwrap();
        let (cfg, state) = (tmp.path().join("agent.toml"), tmp.path().join("state"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(crate::trust::trust_path(&state), b"garbage").unwrap();
        let relay_made = EnrollmentToken {
            roots: Vec::new(),
            bind: None,
            ..zero_trust_token()
        };
        let err = enroll(&relay_made.encode(), &cfg, &state, StoreChoice::File).unwrap_err();
        assert!(
            matches!(err, EnrollError::WouldDropZeroTrust { .. }),
            "{err}"
        );
    }
}
