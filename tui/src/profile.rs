//! Where `cm-tui` keeps its login: the non-secret profile (relay, pin, user, credential id,
//! expiry) as a JSON file in its state directory, and the credential secret in the OS keyring
//! (service `codemantle`, account `user@relay`) or, where no keyring works, a 0600 file.

use cm_client::secrets::{SecretError, SecretStore, StoreChoice};
use cm_client::transport::{MEMORY_FILE_NAME, TransportKeys, TransportOptions};
use proto::handshake::{IssuedCredential, Key};
use proto::ids::{CredId, UserId};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file in the state directory that remembers `auto` fell back to the file store.
const STORE_CHOICE_FILE: &str = "secret-store";

/// Keyring service for operator credentials (design §5).
pub const SECRET_SERVICE: &str = "codemantle";

/// The saved login, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Relay address.
    pub relay: String,
    /// Relay key pin.
    pub pin: String,
    /// The user.
    pub user: UserId,
    /// The credential's id.
    pub cred_id: CredId,
    /// Its expiry, unix ms.
    pub expires_at_ms: u64,
    /// Where this login is kept (not saved: set when the profile is loaded), so the device
    /// key and trust file next to it can be found from the profile alone.
    #[serde(skip)]
    pub home: LoginHome,
}

/// The state directory and secret store a profile was loaded from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginHome {
    /// The state directory (`default_state_dir()` when empty).
    pub dir: PathBuf,
    /// The store that answered (`auto` when unknown).
    pub store: Option<StoreChoice>,
    /// How to reach the relay (tui.toml and `CM_TRANSPORT`/`CM_RELAY_TCP`/`CM_PROXY`; the
    /// per-network memory in this state directory).
    pub transport: TransportOptions,
}

impl LoginHome {
    /// The state directory.
    pub fn dir(&self) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            default_state_dir()
        } else {
            self.dir.clone()
        }
    }

    /// Opens the secret store this login uses (blocks on D-Bus for the OS keyring).
    ///
    /// # Errors
    /// A demanded keyring that does not answer.
    pub fn secrets(&self) -> Result<SecretStore, SecretError> {
        let choice = self.store.unwrap_or(StoreChoice::Auto);
        SecretStore::open(choice, self.dir().join(CREDENTIALS_FILE)).map(|(s, _)| s)
    }
}

/// The secret store's fallback file in the state directory.
const CREDENTIALS_FILE: &str = "credentials.json";

impl Profile {
    /// The keyring account: `user@relay`.
    pub fn account(&self) -> String {
        format!("{}@{}", self.user, self.relay)
    }
}

/// Profile and credential failures.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No login yet.
    #[error(
        "not logged in; run `cm-tui login <invite>` or `cm-tui login RELAY --user NAME --pin PIN`"
    )]
    NotLoggedIn,
    /// The credential expired.
    #[error(
        "your login for {account} expired; run `cm-tui login {relay} --user {user} --pin {pin}` again"
    )]
    Expired {
        /// `user@relay`.
        account: String,
        /// Relay address.
        relay: String,
        /// User.
        user: String,
        /// Pin.
        pin: String,
    },
    /// The profile file is unreadable or damaged.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The state directory: `$CM_TUI_STATE_DIR`, else `$XDG_STATE_HOME/codemantle/tui`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CM_TUI_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("codemantle/tui");
    }
    directories::BaseDirs::new()
        .map(|b| b.home_dir().join(".local/state/codemantle/tui"))
        .unwrap_or_else(|| PathBuf::from("codemantle-tui-state"))
}

/// The login store in one state directory.
#[derive(Debug)]
pub struct Logins {
    dir: PathBuf,
    secrets: SecretStore,
    transport: TransportOptions,
    /// Set when `auto` fell back to the file.
    pub warning: Option<String>,
}

impl Logins {
    /// Opens the store (`CM_SECRET_STORE` picks the backend: auto, secret-service, file).
    ///
    /// # Errors
    /// A demanded keyring that does not answer.
    pub fn open(dir: &Path, choice: StoreChoice) -> Result<Self, ProfileError> {
        // `auto` fell back to the file once: keep using it (the credential is there) and say
        // so only that once, as the agent records `secret_store = "file"` after enrolling.
        let remembered = dir.join(STORE_CHOICE_FILE);
        let choice = match choice {
            StoreChoice::Auto
                if std::fs::read_to_string(&remembered).is_ok_and(|c| c.trim() == "file") =>
            {
                StoreChoice::File
            }
            other => other,
        };
        let (secrets, warning) = SecretStore::open(choice, dir.join(CREDENTIALS_FILE))?;
        let warning = warning.map(|w| {
            let kept = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&remembered, "file\n"))
                .is_ok();
            if kept {
                format!(
                    "{w}; remembered in {} (delete it to try the keyring again)",
                    remembered.display()
                )
            } else {
                w
            }
        });
        Ok(Self {
            dir: dir.to_owned(),
            secrets,
            transport: TransportOptions {
                memory_file: Some(dir.join(MEMORY_FILE_NAME)),
                ..TransportOptions::default()
            },
            warning,
        })
    }

    /// Uses `keys` (from tui.toml) with `CM_TRANSPORT`, `CM_RELAY_TCP` and `CM_PROXY` (read by
    /// `lookup`) over them for every connection of this login.
    ///
    /// # Errors
    /// An invalid value, saying which and what to write.
    pub fn use_transport(
        &mut self,
        mut keys: TransportKeys,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), String> {
        keys.apply_env(lookup);
        self.transport = TransportOptions {
            memory_file: Some(self.dir.join(MEMORY_FILE_NAME)),
            ..keys.validate()?
        };
        Ok(())
    }

    /// Where secrets go (for messages).
    pub fn secret_location(&self) -> String {
        self.secrets.describe()
    }

    /// Where this store lives, for profiles it saves or loads.
    pub fn home(&self) -> LoginHome {
        let store = if self.secrets.is_file() {
            StoreChoice::File
        } else {
            StoreChoice::SecretService
        };
        LoginHome {
            dir: self.dir.clone(),
            store: Some(store),
            transport: self.transport.clone(),
        }
    }

    /// The secret store (for the device key kept next to the credential).
    pub fn secrets(&self) -> &SecretStore {
        &self.secrets
    }

    fn profile_path(&self) -> PathBuf {
        self.dir.join("profile.json")
    }

    /// Saves a fresh credential: secret to the store, the rest to the profile file.
    ///
    /// # Errors
    /// Store or file failures.
    pub fn save(
        &self,
        relay: &str,
        pin: &str,
        cred: &IssuedCredential,
    ) -> Result<Profile, ProfileError> {
        let profile = Profile {
            relay: relay.to_owned(),
            pin: pin.to_owned(),
            user: cred.user.clone(),
            cred_id: cred.cred_id.clone(),
            expires_at_ms: cred.expires_at_ms,
            home: self.home(),
        };
        self.secrets.set(
            SECRET_SERVICE,
            &profile.account(),
            &format!("{}:{}", cred.cred_id, cred.secret.to_hex()),
        )?;
        let path = self.profile_path();
        let file_err = |e: std::io::Error| ProfileError::File {
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(file_err)?;
        let json = serde_json::to_vec_pretty(&profile).map_err(|e| ProfileError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(file_err)?;
        Ok(profile)
    }

    /// Loads the current login, refusing an expired one with a message that says what to run.
    ///
    /// # Errors
    /// Not logged in, expired, damaged files or store failures.
    pub fn load(&self, now_ms: u64) -> Result<(Profile, Key), ProfileError> {
        let path = self.profile_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileError::NotLoggedIn);
            }
            Err(e) => {
                return Err(ProfileError::File {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let mut profile: Profile = serde_json::from_str(&text).map_err(|e| ProfileError::File {
            path: path.clone(),
            reason: format!("damaged ({e}); log in again"),
        })?;
        profile.home = self.home();
        if now_ms >= profile.expires_at_ms {
            return Err(ProfileError::Expired {
                account: profile.account(),
                relay: profile.relay.clone(),
                user: profile.user.0.clone(),
                pin: profile.pin.clone(),
            });
        }
        let stored = self
            .secrets
            .get(SECRET_SERVICE, &profile.account())?
            .ok_or(ProfileError::NotLoggedIn)?;
        // The stored value is `cred_id:hexsecret`; a secret for another credential means the
        // profile and store disagree (e.g. a login from another state dir): log in again.
        let key = stored
            .split_once(':')
            .filter(|(id, _)| *id == profile.cred_id.as_str())
            .and_then(|(_, hex)| Key::from_hex(hex))
            .ok_or(ProfileError::NotLoggedIn)?;
        Ok((profile, key))
    }
}

impl Logins {
    /// Forgets the saved login (secret and profile); returns the profile that was removed.
    ///
    /// # Errors
    /// Store or file failures.
    pub fn remove(&self) -> Result<Option<Profile>, ProfileError> {
        let path = self.profile_path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(None);
        };
        let profile: Option<Profile> =
            serde_json::from_str::<Profile>(&text)
                .ok()
                .map(|p| Profile {
                    home: self.home(),
                    ..p
                });
        if let Some(p) = &profile {
            self.secrets.delete(SECRET_SERVICE, &p.account())?;
        }
        std::fs::remove_file(&path).map_err(|e| ProfileError::File {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(expires: u64) -> IssuedCredential {
        IssuedCredential {
            cred_id: CredId::from("c1"),
            secret: Key::from_bytes([5; 32]),
            expires_at_ms: expires,
            user: UserId::from("alice"),
        }
    }

    #[test]
    fn save_load_and_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let logins = Logins::open(tmp.path(), StoreChoice::File).unwrap();
        assert!(matches!(logins.load(0), Err(ProfileError::NotLoggedIn)));
        let p = logins
            .save("127.0.0.1:7443", "blake3:aa", &cred(1_000))
            .unwrap();
        assert_eq!(p.account(), "alice@127.0.0.1:7443");
        let (loaded, key) = logins.load(999).unwrap();
        assert_eq!(loaded, p);
        assert_eq!(key, Key::from_bytes([5; 32]));
        let err = logins.load(1_000).unwrap_err();
        assert!(matches!(err, ProfileError::Expired { .. }));
        assert!(
            err.to_string()
                .contains("cm-tui login 127.0.0.1:7443 --user alice"),
            "{err}"
        );
        // The secret is not in the profile file.
        let text = std::fs::read_to_string(tmp.path().join("profile.json")).unwrap();
        assert!(!text.contains(&"05".repeat(32)));
        assert_eq!(logins.remove().unwrap(), Some(p));
        assert!(matches!(logins.load(0), Err(ProfileError::NotLoggedIn)));
        let secrets = std::fs::read_to_string(tmp.path().join("credentials.json")).unwrap();
        assert!(!secrets.contains("alice"), "secret removed: {secrets}");
        assert_eq!(logins.remove().unwrap(), None);
    }

    #[test]
    fn transport_settings_reach_the_profile_with_the_environment_over_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut logins = Logins::open(tmp.path(), StoreChoice::File).unwrap();
        let file = TransportKeys {
            transport: Some("quic".into()),
            relay_tcp: Some("r:443".into()),
            ..TransportKeys::default()
        };
        logins
            .use_transport(file.clone(), |k| {
                (k == "CM_TRANSPORT").then(|| "tcp".into())
            })
            .unwrap();
        let p = logins
            .save("127.0.0.1:7443", "blake3:aa", &cred(1_000))
            .unwrap();
        let t = &p.home.transport;
        assert_eq!(t.mode, cm_client::transport::TransportMode::Tcp);
        assert_eq!(t.relay_tcp.as_deref(), Some("r:443"));
        assert_eq!(t.memory_file, Some(tmp.path().join(MEMORY_FILE_NAME)));
        let err = logins
            .use_transport(file, |k| (k == "CM_PROXY").then(|| "socks5://p:1".into()))
            .unwrap_err();
        assert!(err.contains("proxy") && err.contains("http://"), "{err}");
    }
}
