//! Channel secrets at rest (ntfy tokens, webhook signing keys): sealed with
//! ChaCha20-Poly1305 under the relay's notification key before they reach the store, a random
//! nonce per seal, the owner's and channel's names as associated data (a sealed secret copied
//! into another user's row does not open). The key is `[notify] secret_key_file` (default
//! `<state dir>/notify.key`), created 0600 with 32 random bytes the first time a secret is
//! sealed or opened; every relay of a fleet must use the same file.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Length of the key, in bytes.
pub const KEY_LEN: usize = 32;
/// What a sealed secret starts with (the format's version).
const SEALED_PREFIX: &str = "v1:";
/// Domain separation of the associated data.
const AAD_CONTEXT: &str = "cm-notify-secret/v1";

/// Why a secret cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file cannot be read or created.
    #[error(
        "notification secret key {path}: {source}; check [notify] secret_key_file in relay.toml"
    )]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The key file is not a key.
    #[error(
        "notification secret key {0}: not a key (write 32 random bytes, or 64 hex digits: `openssl rand -hex 32`)"
    )]
    NotAKey(PathBuf),
    /// The key file may be read by other users.
    #[error("notification secret key {0} may be read by other users: chmod 600 it")]
    Exposed(PathBuf),
    /// The stored secret was sealed under another key (or changed).
    #[error(
        "its stored secret does not open with this relay's key ({0}): it was sealed under another key. Every relay of a fleet must use the same [notify] secret_key_file; otherwise add the channel again"
    )]
    WrongKey(String),
    /// The stored secret is not in the sealed format.
    #[error("its stored secret is malformed; add the channel again")]
    Malformed,
    /// No randomness for a nonce or a new key.
    #[error("the OS random source failed")]
    Random,
}

impl SealError {
    /// Whether `text` (a [`SealError`] shown as text, as a broken channel row keeps it) says
    /// the secret was sealed under another key.
    pub fn is_wrong_key_text(text: &str) -> bool {
        text.contains(WRONG_KEY_SIGN)
    }
}

/// The words of [`SealError::WrongKey`] that [`SealError::is_wrong_key_text`] looks for.
const WRONG_KEY_SIGN: &str = "it was sealed under another key";

/// A loaded key.
struct SecretKey(LessSafeKey);

impl SecretKey {
    fn new(bytes: &[u8]) -> Option<Self> {
        UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .ok()
            .map(|k| Self(LessSafeKey::new(k)))
    }
}

/// Where the key comes from.
#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Given,
}

/// Seals and opens channel secrets, loading (or creating) the key at first need.
pub struct Sealer {
    source: Source,
    key: OnceLock<Arc<SecretKey>>,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("source", &self.source)
            .field("loaded", &self.key.get().is_some())
            .finish_non_exhaustive()
    }
}

/// The associated data binding a sealed secret to its row.
fn aad(user: &str, channel: &str) -> Vec<u8> {
    format!("{AAD_CONTEXT}\0{user}\0{channel}").into_bytes()
}

impl Sealer {
    /// A sealer whose key is the file at `path`, read (or created) at first need.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::File(path.into()),
            key: OnceLock::new(),
            random: SystemRandom::new(),
        }
    }

    /// A sealer with this key (tests, tools).
    pub fn with_key(key: [u8; KEY_LEN]) -> Self {
        let sealer = Self {
            source: Source::Given,
            key: OnceLock::new(),
            random: SystemRandom::new(),
        };
        if let Some(k) = SecretKey::new(&key) {
            let _ = sealer.key.set(Arc::new(k));
        }
        sealer
    }

    fn where_(&self) -> String {
        match &self.source {
            Source::File(p) => p.display().to_string(),
            Source::Given => "the given key".into(),
        }
    }

    fn key(&self) -> Result<Arc<SecretKey>, SealError> {
        if let Some(k) = self.key.get() {
            return Ok(Arc::clone(k));
        }
        let Source::File(path) = &self.source else {
            return Err(SealError::NotAKey(PathBuf::from("(given)")));
        };
        let loaded = Arc::new(load_or_create(path, &self.random)?);
        // Two first needs at once load the same file: either result is the key.
        Ok(Arc::clone(self.key.get_or_init(|| loaded)))
    }

    /// Loads the key now (creating the file when there is none), to report a bad key early.
    ///
    /// # Errors
    /// As [`Sealer::seal`] without the randomness.
    pub fn check_key(&self) -> Result<(), SealError> {
        self.key().map(|_| ())
    }

    /// `secret` sealed for `user`'s channel `channel`.
    ///
    /// # Errors
    /// No key ([`SealError::KeyFile`], …) or no randomness.
    pub fn seal(&self, user: &str, channel: &str, secret: &str) -> Result<String, SealError> {
        let key = self.key()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut sealed = secret.as_bytes().to_vec();
        key.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(user, channel)),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", hex::encode(out)))
    }

    /// The secret [`Sealer::seal`] sealed for `user`'s channel `channel`.
    ///
    /// # Errors
    /// No key, a malformed value, or [`SealError::WrongKey`].
    pub fn open(&self, user: &str, channel: &str, sealed: &str) -> Result<String, SealError> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() >= NONCE_LEN)
            .ok_or(SealError::Malformed)?;
        let key = self.key()?;
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut body = body.to_vec();
        let plain = key
            .0
            .open_in_place(nonce, Aad::from(aad(user, channel)), &mut body)
            .map_err(|_| SealError::WrongKey(self.where_()))?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Malformed)
    }
}

/// The key in `path`, created there (0600, 32 random bytes) when there is none.
fn load_or_create(path: &Path, random: &SystemRandom) -> Result<SecretKey, SealError> {
    let io = |source| SealError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(SealError::Exposed(path.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path, random)?,
        Err(e) => return Err(io(e)),
    }
    let raw = std::fs::read(path).map_err(io)?;
    let bytes = if raw.len() == KEY_LEN {
        raw
    } else {
        std::str::from_utf8(&raw)
            .ok()
            .and_then(|t| hex::decode(t.trim()).ok())
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| SealError::NotAKey(path.to_owned()))?
    };
    SecretKey::new(&bytes).ok_or_else(|| SealError::NotAKey(path.to_owned()))
}

fn create(path: &Path, random: &SystemRandom) -> Result<(), SealError> {
    let mut key = [0u8; KEY_LEN];
    random.fill(&mut key).map_err(|_| SealError::Random)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        // Another relay process on this state directory made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(source) => {
            return Err(SealError::KeyFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let io = |source| SealError::KeyFile {
        path: path.to_owned(),
        source,
    };
    file.write_all(&key).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::info!(path = %path.display(), "created the notification secret key");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_row_and_its_key() {
        let sealer = Sealer::with_key([7; KEY_LEN]);
        let sealed = sealer.seal("alice", "hook", "tk_secret").unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("tk_secret"));
        assert_ne!(sealed, sealer.seal("alice", "hook", "tk_secret").unwrap());
        assert_eq!(sealer.open("alice", "hook", &sealed).unwrap(), "tk_secret");
        // Copied into another row, or opened under another key: refused, saying why.
        assert!(matches!(
            sealer.open("bob", "hook", &sealed),
            Err(SealError::WrongKey(_))
        ));
        let other = Sealer::with_key([8; KEY_LEN]);
        let err = other.open("alice", "hook", &sealed).unwrap_err();
        assert!(err.to_string().contains("secret_key_file"), "{err}");
        assert!(SealError::is_wrong_key_text(&err.to_string()), "{err}");
        assert!(!SealError::is_wrong_key_text(
            &SealError::Malformed.to_string()
        ));
        assert!(matches!(
            sealer.open("alice", "hook", "v1:00"),
            Err(SealError::Malformed)
        ));
    }

    #[test]
    fn the_key_file_is_created_0600_at_first_need_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify.key");
        let sealer = Sealer::from_file(&path);
        assert!(!path.exists(), "not before it is needed");
        let sealed = sealer.seal("alice", "hook", "k").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), KEY_LEN as u64);
        // Another relay reading the same file opens it.
        assert_eq!(
            Sealer::from_file(&path)
                .open("alice", "hook", &sealed)
                .unwrap(),
            "k"
        );
        // A hex key an operator wrote works too.
        let hex_path = tmp.path().join("hex.key");
        std::fs::write(&hex_path, format!("{}\n", "ab".repeat(KEY_LEN))).unwrap();
        std::fs::set_permissions(&hex_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from_hex = Sealer::from_file(&hex_path);
        let s = from_hex.seal("u", "c", "x").unwrap();
        assert_eq!(
            Sealer::with_key([0xab; KEY_LEN])
                .open("u", "c", &s)
                .unwrap(),
            "x"
        );
    }

    #[test]
    fn a_key_file_others_can_read_or_that_is_no_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("notify.key");
        std::fs::write(&path, [1u8; KEY_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Sealer::from_file(&path).seal("u", "c", "x").unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::write(&path, b"short").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Sealer::from_file(&path).seal("u", "c", "x").unwrap_err();
        assert!(err.to_string().contains("openssl rand -hex 32"), "{err}");
    }
}
