//! Where clients keep secrets: the OS keyring (Secret Service) when one answers, else a 0600 JSON
//! file, and always saying which. Used by `cm-agent` (host secret) and `cm-tui` (login
//! credentials). Calls may block on D-Bus: call from blocking context.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which store to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// Secret Service if it answers, else the file (with a warning).
    Auto,
    /// Secret Service or fail.
    SecretService,
    /// The 0600 file.
    File,
}

impl StoreChoice {
    /// Parses `auto|secret-service|file`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "secret-service" | "keyring" => Some(Self::SecretService),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// Secret store failures.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The OS keyring failed.
    #[error("OS keyring: {0}")]
    Keyring(String),
    /// The file store failed.
    #[error("secrets file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The file is readable by others: refuse to use it.
    #[error(
        "secrets file {path} has mode {mode:o}, readable by other users; run `chmod 600 {path}` \
         and rotate the secrets it holds"
    )]
    InsecureFile {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

enum Backend {
    Os(Arc<keyring_core::CredentialStore>),
    File(PathBuf),
}

/// An opened secret store.
pub struct SecretStore {
    backend: Backend,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn probe_secret_service() -> Option<Arc<keyring_core::CredentialStore>> {
    let store = zbus_secret_service_keyring_store::Store::new().ok()?;
    let store: Arc<keyring_core::CredentialStore> = store;
    // A lookup of a missing entry must say "no entry", not fail on access.
    let probe = keyring_core::Entry::new_in_store(&store, "codemantle", "__probe__")
        .and_then(|e| e.get_password());
    matches!(probe, Err(keyring_core::Error::NoEntry)).then_some(store)
}

impl SecretStore {
    /// Opens the store. Returns a warning to show the user when `Auto` fell back to the file.
    ///
    /// # Errors
    /// `SecretService` was demanded but none answers.
    pub fn open(choice: StoreChoice, file: PathBuf) -> Result<(Self, Option<String>), SecretError> {
        match choice {
            StoreChoice::File => Ok((Self { backend: Backend::File(file) }, None)),
            StoreChoice::SecretService => match probe_secret_service() {
                Some(s) => Ok((Self { backend: Backend::Os(s) }, None)),
                None => Err(SecretError::Keyring(
                    "no Secret Service answers on D-Bus (is gnome-keyring or KeePassXC running and unlocked?)".into(),
                )),
            },
            StoreChoice::Auto => match probe_secret_service() {
                Some(s) => Ok((Self { backend: Backend::Os(s) }, None)),
                None => {
                    let warning = format!(
                        "no OS keyring (Secret Service) available; storing secrets in {} (mode 0600)",
                        file.display()
                    );
                    Ok((Self { backend: Backend::File(file) }, Some(warning)))
                }
            },
        }
    }

    /// Where secrets go, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Os(_) => "the OS keyring (Secret Service)".to_owned(),
            Backend::File(p) => format!("the file {} (mode 0600)", p.display()),
        }
    }

    /// Whether this is the file fallback.
    pub fn is_file(&self) -> bool {
        matches!(self.backend, Backend::File(_))
    }

    /// Reads a secret.
    ///
    /// # Errors
    /// Backend failures; a missing entry is `Ok(None)`.
    pub fn get(&self, service: &str, account: &str) -> Result<Option<String>, SecretError> {
        match &self.backend {
            Backend::Os(store) => {
                let entry = keyring_core::Entry::new_in_store(store, service, account)
                    .map_err(|e| SecretError::Keyring(e.to_string()))?;
                match entry.get_password() {
                    Ok(s) => Ok(Some(s)),
                    Err(keyring_core::Error::NoEntry) => Ok(None),
                    Err(e) => Err(SecretError::Keyring(e.to_string())),
                }
            }
            Backend::File(path) => Ok(read_file(path)?.remove(&file_key(service, account))),
        }
    }

    /// Stores a secret, replacing any previous one.
    ///
    /// # Errors
    /// Backend failures.
    pub fn set(&self, service: &str, account: &str, secret: &str) -> Result<(), SecretError> {
        match &self.backend {
            Backend::Os(store) => keyring_core::Entry::new_in_store(store, service, account)
                .and_then(|e| e.set_password(secret))
                .map_err(|e| SecretError::Keyring(e.to_string())),
            Backend::File(path) => {
                let mut map = read_file(path)?;
                map.insert(file_key(service, account), secret.to_owned());
                write_file(path, &map)
            }
        }
    }

    /// Removes a secret; `Ok(false)` if there was none.
    ///
    /// # Errors
    /// Backend failures.
    pub fn delete(&self, service: &str, account: &str) -> Result<bool, SecretError> {
        match &self.backend {
            Backend::Os(store) => {
                let entry = keyring_core::Entry::new_in_store(store, service, account)
                    .map_err(|e| SecretError::Keyring(e.to_string()))?;
                match entry.delete_credential() {
                    Ok(()) => Ok(true),
                    Err(keyring_core::Error::NoEntry) => Ok(false),
                    Err(e) => Err(SecretError::Keyring(e.to_string())),
                }
            }
            Backend::File(path) => {
                let mut map = read_file(path)?;
                let had = map.remove(&file_key(service, account)).is_some();
                if had {
                    write_file(path, &map)?;
                }
                Ok(had)
            }
        }
    }
}

fn file_key(service: &str, account: &str) -> String {
    format!("{service}/{account}")
}

fn file_err(path: &Path, e: impl fmt::Display) -> SecretError {
    SecretError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn read_file(path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(file_err(path, e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::InsecureFile {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(|e| file_err(path, e))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, format!("not valid JSON ({e})")))
}

fn write_file(path: &Path, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
    let dir = path
        .parent()
        .ok_or_else(|| file_err(path, "has no parent directory"))?;
    fs::create_dir_all(dir).map_err(|e| file_err(path, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| file_err(path, e))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("secrets"),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let json = serde_json::to_vec_pretty(map).map_err(|e| file_err(path, e))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| file_err(&tmp, e))?;
    f.write_all(&json).map_err(|e| file_err(&tmp, e))?;
    f.sync_all().map_err(|e| file_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| file_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secrets.json");
        let (store, warning) = SecretStore::open(StoreChoice::File, path.clone()).unwrap();
        assert!(warning.is_none());
        assert!(store.is_file());
        assert_eq!(store.get("codemantle", "a@r").unwrap(), None);
        store.set("codemantle", "a@r", "s1").unwrap();
        store.set("codemantle", "b@r", "s2").unwrap();
        assert_eq!(
            store.get("codemantle", "a@r").unwrap().as_deref(),
            Some("s1")
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(store.delete("codemantle", "a@r").unwrap());
        assert!(!store.delete("codemantle", "a@r").unwrap());
        assert_eq!(
            store.get("codemantle", "b@r").unwrap().as_deref(),
            Some("s2")
        );
    }

    #[test]
    fn file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let (store, _) = SecretStore::open(StoreChoice::File, path.clone()).unwrap();
        store.set("s", "a", "x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = store.get("s", "a").unwrap_err();
        assert!(
            matches!(err, SecretError::InsecureFile { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }
}
