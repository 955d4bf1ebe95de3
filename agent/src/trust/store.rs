//! The files a zero-trust host keeps in its state folder (each rewritten atomically, 0600):
//!
//! - `trust.json`: what enrollment pinned — the owners' roots and the bind secret the host
//!   proves its end-to-end key with — and the owners' root rotations it took since (the new
//!   roots replace the old ones in `roots`; the old ones are listed as retiring, then retired).
//!   Its presence makes the host zero-trust; `cm-agent trust reset` removes it.
//! - `revocations.json`: the newest revocation list of each signer, so a restart does not wait
//!   for the relay to deliver them again (they are checked again when loaded), and the
//!   certificates operators showed (an admin-signed list is taken only with its signer's
//!   certificate; `cm-agent trust show` lists them).
//!
//! The end-to-end key's secret is not here: it lives in the secret store next to the host
//! secret (see [`crate::enroll`]).

use proto::handshake::Bytes32;
use proto::ids::{HostId, UserId};
use proto::trust::{Cert, RetiringRoot, RevocationList, Root, RootPins};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File name of the enrollment's trust pins in the state folder.
pub const TRUST_FILE: &str = "trust.json";
/// File name of the held revocation lists in the state folder.
pub const REVOCATIONS_FILE: &str = "revocations.json";

/// Failures reading or writing the trust files, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is damaged.
    #[error(
        "{path} is damaged ({message}); re-enroll this host with a token from `cm-tui admin host add`, or run `cm-agent trust reset --yes` to start over"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How the host decides who may act: the only mode written is zero-trust (a relay-trusted host
/// has no file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustMode {
    /// The host verifies operators' signatures and certificates itself.
    ZeroTrust,
}

/// `trust.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    /// Format version (1).
    pub version: u32,
    /// The mode.
    pub mode: TrustMode,
    /// The host these pins are for.
    pub host: HostId,
    /// The relay of the enrollment (the end-to-end key's secret-store account names it).
    pub relay: String,
    /// The owners' keys pinned at enrollment.
    pub roots: Vec<Root>,
    /// The enrollment's bind secret (proves the host's end-to-end key to the laptop that made
    /// the token).
    pub bind: Option<Bytes32>,
    /// When the host was enrolled (unix ms).
    pub enrolled_ms: u64,
    /// The owners' root rotations taken since enrollment.
    #[serde(default, skip_serializing_if = "Rotations::is_empty")]
    pub rotations: Rotations,
}

/// What owners' root rotations changed in `trust.json` (see `proto::trust::rotation`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotations {
    /// Replaced roots, trusted until their overlap ends.
    #[serde(default)]
    pub retiring: Vec<RetiringRoot>,
    /// Retired roots: never trusted again.
    #[serde(default)]
    pub retired: Vec<Root>,
    /// The highest rotation sequence taken per owner.
    #[serde(default)]
    pub seq: BTreeMap<UserId, u64>,
}

impl Rotations {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct RevocationsFile {
    version: u32,
    lists: Vec<RevocationList>,
    #[serde(default)]
    certs: Vec<Cert>,
}

/// What `revocations.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// The newest revocation list of each signer.
    pub lists: Vec<RevocationList>,
    /// Certificates operators showed.
    pub certs: Vec<Cert>,
}

/// `<state_dir>/trust.json`.
pub fn trust_path(state_dir: &Path) -> PathBuf {
    state_dir.join(TRUST_FILE)
}

/// `<state_dir>/revocations.json`.
pub fn revocations_path(state_dir: &Path) -> PathBuf {
    state_dir.join(REVOCATIONS_FILE)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

impl TrustFile {
    /// Reads `trust.json`; `None` when the host is relay-trusted (no file).
    ///
    /// # Errors
    /// An unreadable or damaged file (never treated as "relay-trusted": that would let a
    /// damaged file turn the host's checks off).
    pub fn load(state_dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = trust_path(state_dir);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let file: Self = serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if file.roots.is_empty() {
            return Err(StoreError::Invalid {
                path,
                message: "no roots".into(),
            });
        }
        Ok(Some(file))
    }

    /// The pins: the roots with the rotations taken.
    pub fn pins(&self) -> RootPins {
        RootPins {
            active: self.roots.clone(),
            retiring: self.rotations.retiring.clone(),
            retired: self.rotations.retired.clone(),
            seq: self.rotations.seq.clone(),
        }
    }

    /// Puts `pins` in (roots and rotations).
    pub fn set_pins(&mut self, pins: RootPins) {
        self.roots = pins.active;
        self.rotations = Rotations {
            retiring: pins.retiring,
            retired: pins.retired,
            seq: pins.seq,
        };
    }

    /// Writes `trust.json` (atomically, 0600).
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, state_dir: &Path) -> Result<(), StoreError> {
        let path = trust_path(state_dir);
        let text = serde_json::to_vec_pretty(self).map_err(|e| StoreError::Invalid {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &text)
    }
}

/// Rewrites `trust.json` with `pins` (the rest of the file kept), atomically.
///
/// # Errors
/// The file is missing (the host was reset meanwhile), damaged or cannot be written.
pub fn save_pins(state_dir: &Path, pins: &RootPins) -> Result<(), StoreError> {
    let mut file = TrustFile::load(state_dir)?.ok_or_else(|| StoreError::Invalid {
        path: trust_path(state_dir),
        message: "gone (reset while running?); restart the agent".into(),
    })?;
    file.set_pins(pins.clone());
    file.save(state_dir)
}

/// What `revocations.json` holds (nothing when there is no file).
///
/// # Errors
/// An unreadable or damaged file.
pub fn load_revocations(state_dir: &Path) -> Result<Held, StoreError> {
    let path = revocations_path(state_dir);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(Held::default());
    };
    let file: RevocationsFile =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid {
            path,
            message: e.to_string(),
        })?;
    Ok(Held {
        lists: file.lists,
        certs: file.certs,
    })
}

/// Writes `revocations.json` (atomically, 0600).
///
/// # Errors
/// I/O failures.
pub fn save_revocations(
    state_dir: &Path,
    lists: &[RevocationList],
    certs: &[Cert],
) -> Result<(), StoreError> {
    let path = revocations_path(state_dir);
    let text = serde_json::to_vec_pretty(&RevocationsFile {
        version: 1,
        lists: lists.to_vec(),
        certs: certs.to_vec(),
    })
    .map_err(|e| StoreError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &text)
}

/// Removes `trust.json` and `revocations.json`; returns whether `trust.json` existed.
///
/// # Errors
/// A file that exists and cannot be removed.
pub fn remove(state_dir: &Path) -> Result<bool, StoreError> {
    let mut existed = false;
    for path in [trust_path(state_dir), revocations_path(state_dir)] {
        match std::fs::remove_file(&path) {
            Ok(()) => existed |= path.ends_with(TRUST_FILE),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Write { path, source }),
        }
    }
    Ok(existed)
}

/// [`crate::private_file::write_atomic`], its failure as a [`StoreError`].
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    crate::private_file::write_atomic(path, bytes).map_err(|source| StoreError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::trust::{DeviceKey, RevocationBody, Signed};
    use std::os::unix::fs::PermissionsExt as _;

    fn root() -> Root {
        Root {
            user: "owner".into(),
            key: DeviceKey::from_seed([7; 32]).unwrap().public(),
        }
    }

    fn file() -> TrustFile {
        TrustFile {
            version: 1,
            mode: TrustMode::ZeroTrust,
            host: HostId::from("box"),
            relay: "relay.example:7443".into(),
            roots: vec![root()],
            bind: Some(Bytes32([3; 32])),
            enrolled_ms: 1_000,
            rotations: Default::default(),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn trust_file_round_trips_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        assert_eq!(TrustFile::load(&state).unwrap(), None);
        file().save(&state).unwrap();
        assert_eq!(TrustFile::load(&state).unwrap(), Some(file()));
        assert_eq!(mode_of(&trust_path(&state)), 0o600);
        let text = std::fs::read_to_string(trust_path(&state)).unwrap();
        assert!(text.contains("\"zero_trust\""), "{text}");
    }

    #[test]
    fn a_damaged_trust_file_is_an_error_not_relay_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(trust_path(tmp.path()), b"{not json").unwrap();
        let err = TrustFile::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        let mut rootless = file();
        rootless.roots.clear();
        rootless.save(tmp.path()).unwrap();
        let err = TrustFile::load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("no roots"), "{err}");
    }

    #[test]
    fn revocations_round_trip_privately_and_remove_clears_both_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(load_revocations(tmp.path()).unwrap(), Held::default());
        let key = DeviceKey::from_seed([7; 32]).unwrap();
        let list = Signed::sign(
            &RevocationBody {
                issuer_user: "owner".into(),
                seq: 4,
                issued_ms: 9,
                serials: vec!["ab".into()],
                keys: Vec::new(),
            },
            &key,
        );
        save_revocations(tmp.path(), std::slice::from_ref(&list), &[]).unwrap();
        assert_eq!(load_revocations(tmp.path()).unwrap().lists, vec![list]);
        assert_eq!(mode_of(&revocations_path(tmp.path())), 0o600);
        file().save(tmp.path()).unwrap();
        assert!(remove(tmp.path()).unwrap());
        assert!(!trust_path(tmp.path()).exists());
        assert!(!revocations_path(tmp.path()).exists());
        assert!(!remove(tmp.path()).unwrap());
    }
}
