//! The trust file `<state dir>/trust-<user@relay>.json` (0600, replaced atomically): what this
//! laptop pinned and fetched (roots, certificates, revocations, hosts' keys) and, on an owner's
//! or admin's laptop, the bind secrets of the hosts it added (never sent anywhere) and its own
//! revocation list's content and sequence number.

use super::TrustFileError;
use proto::handshake::Bytes32;
use proto::ids::{HostId, UserId};
use proto::trust::{Cert, PublicKey, Root, RootPins, X25519Public};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The file's format version.
const VERSION: u32 = 1;

/// What the trust file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustFile {
    /// Format version.
    #[serde(default)]
    pub v: u32,
    /// The user this laptop logs in as.
    #[serde(default)]
    pub user: Option<UserId>,
    /// The device key's public half when this was saved (for `show`).
    #[serde(default)]
    pub device_key: Option<PublicKey>,
    /// Owners' roots trusted when this was saved (pinned, and replaced ones within their
    /// overlap).
    #[serde(default)]
    pub roots: Vec<Root>,
    /// The pinned roots with the owners' rotations applied (absent before any rotation was
    /// seen: then `roots` are the pins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_pins: Option<RootPins>,
    /// Certificates that chained to the roots when fetched.
    #[serde(default)]
    pub certs: Vec<Cert>,
    /// Revoked serials from verified lists.
    #[serde(default)]
    pub revoked_serials: BTreeSet<String>,
    /// Revoked keys from verified lists.
    #[serde(default)]
    pub revoked_keys: BTreeSet<PublicKey>,
    /// Hosts' end-to-end keys a valid certificate vouched for.
    #[serde(default)]
    pub pinned_hosts: BTreeMap<HostId, X25519Public>,
    /// Bind secrets of the hosts this laptop added (host → secret): only this laptop can
    /// check their key claims.
    #[serde(default)]
    pub binds: BTreeMap<HostId, Bytes32>,
    /// This laptop's own revocation list (what it signs and publishes).
    #[serde(default)]
    pub own_list: OwnList,
}

/// The content of the revocation list this laptop signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnList {
    /// The last sequence number published.
    #[serde(default)]
    pub seq: u64,
    /// Revoked serials.
    #[serde(default)]
    pub serials: BTreeSet<String>,
    /// Revoked device keys.
    #[serde(default)]
    pub keys: BTreeSet<PublicKey>,
}

/// The trust file of `account` in `dir`.
pub fn path(dir: &Path, account: &str) -> PathBuf {
    // `user@relay:port` is a fine file name on Unix; keep any path separator out of it.
    let safe: String = account
        .chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    dir.join(format!("trust-{safe}.json"))
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> TrustFileError {
    TrustFileError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl TrustFile {
    /// Reads `path`; a missing file is an empty one.
    ///
    /// # Errors
    /// An unreadable, damaged or group/world-readable file.
    pub fn read(path: &Path) -> Result<Self, TrustFileError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(file_err(path, e)),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(file_err(
                path,
                format!(
                    "has mode {mode:o}, readable by other users; run `chmod 600 {}`",
                    path.display()
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            file_err(
                path,
                format!("damaged ({e}); restore it from a backup or delete it and log in again with an invite"),
            )
        })
    }

    /// Writes `path` (mode 0600) through a temporary file and a rename.
    ///
    /// # Errors
    /// File failures.
    pub fn write(&self, path: &Path) -> Result<(), TrustFileError> {
        let dir = path
            .parent()
            .ok_or_else(|| file_err(path, "has no parent directory"))?;
        std::fs::create_dir_all(dir).map_err(|e| file_err(path, e))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("trust"),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let mut me = self.clone();
        me.v = VERSION;
        let json = serde_json::to_vec_pretty(&me).map_err(|e| file_err(path, e))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| file_err(&tmp, e))?;
        f.write_all(&json).map_err(|e| file_err(&tmp, e))?;
        f.sync_all().map_err(|e| file_err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| file_err(path, e))
    }
}
