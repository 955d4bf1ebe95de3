//! The operator side of zero-trust (issue #20; see `proto::trust`): this laptop's device key
//! (in the OS keyring next to the credential, same reported 0600-file fallback), the owners'
//! roots it pinned from its invite, and the certificates it fetched from the relay (its own
//! grants, hosts' end-to-end keys), checked here against those roots, never taken on the
//! relay's word.
//!
//! Without roots (logged in before zero-trust, or an invite without them) the laptop is
//! relay-trusted: it sends plaintext headers and bodies as before, and says so.

pub mod admin;
pub mod device;
pub mod file;
#[cfg(test)]
pub(crate) mod tests;

use crate::profile::Profile;
use cm_client::secrets::SecretError;
use file::TrustFile;
use proto::ids::{HostId, UserId};
use proto::trust::revocation::Revoked;
use proto::trust::{
    Cert, DeviceKey, RevocationState, Root, RootPins, RootRotation, Subject, TrustBundle,
    TrustError, Verifier, X25519Public,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the device key or trust file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustFileError {
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The trust file is unreadable, damaged or not private.
    #[error("trust file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The stored device key is not 32 hex-encoded bytes.
    #[error(
        "the device key stored for {account} in {location} is damaged; run `cm-tui admin trust rotate-device` (or log in again) to make a new one and have it certified"
    )]
    DamagedKey {
        /// `user@relay`.
        account: String,
        /// Where it is kept.
        location: String,
    },
    /// No OS randomness for a new key.
    #[error("no randomness from the operating system for a new device key: {0}")]
    Random(String),
    /// A key operation failed.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// This profile's trust file path.
pub fn file_path(profile: &Profile) -> PathBuf {
    file::path(&profile.home.dir(), &profile.account())
}

/// This profile's trust state: `None` when it has no device key (logged in before zero-trust);
/// with empty roots it is relay-trusted. Blocks on D-Bus when the key is in the OS keyring.
///
/// # Errors
/// Store or file failures.
pub fn load(profile: &Profile) -> Result<Option<OperatorTrust>, TrustFileError> {
    let secrets = profile.home.secrets()?;
    let Some(key) = device::stored(&secrets, &profile.account())? else {
        return Ok(None);
    };
    let f = TrustFile::read(&file_path(profile))?;
    Ok(Some(OperatorTrust::from_file(profile.user.clone(), key, f)))
}

/// What [`OperatorTrust::merge_bundle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Certificates kept (old and new).
    pub certs: usize,
    /// Certificates dropped: forged, expired, revoked or signed by nobody the roots vouch for.
    pub dropped: usize,
    /// Revocation lists taken.
    pub lists: usize,
    /// Revocation lists refused (bad signature, untrusted signer).
    pub lists_refused: usize,
    /// Owner root rotations taken.
    pub rotations: usize,
}

/// How long this laptop keeps trusting an owner root replaced by a rotation (hosts have their
/// own `[trust] root_overlap`).
pub const ROOT_OVERLAP_MS: u64 = 7 * 86_400_000;

/// This laptop's trust state for one profile (user at a relay).
#[derive(Debug)]
pub struct OperatorTrust {
    /// The user.
    pub user: UserId,
    /// This laptop's device key.
    pub key: DeviceKey,
    /// The owners' roots trusted now: pinned at login (from the invite) or `admin trust init`,
    /// with the rotations since applied (a replaced root stays here for its overlap).
    pub roots: Vec<Root>,
    /// The pins with the owners' rotations applied (see `proto::trust::rotation`).
    pub pins: RootPins,
    /// Certificates fetched from the relay (unverified until used).
    pub certs: Vec<Cert>,
    /// Revocations from the lists fetched with them (verified against the roots).
    pub revoked: Revoked,
    /// Hosts whose key a valid certificate vouched for once: this laptop never sends them
    /// plaintext again, whatever the relay says later.
    pub pinned_hosts: BTreeMap<HostId, X25519Public>,
}

impl OperatorTrust {
    /// The state in `f` for `user` with `key`.
    pub fn from_file(user: UserId, key: DeviceKey, f: TrustFile) -> Self {
        let pins = f
            .root_pins
            .unwrap_or_else(|| RootPins::new(f.roots.clone()));
        Self {
            user,
            key,
            roots: pins.trusted(cm_client::time::now_ms()),
            pins,
            certs: f.certs,
            revoked: Revoked {
                serials: f.revoked_serials,
                keys: f.revoked_keys,
            },
            pinned_hosts: f.pinned_hosts,
        }
    }

    /// Saves roots, certificates, revocations and pinned hosts to this profile's trust file,
    /// keeping what else it holds (bind secrets, this laptop's own revocation list).
    ///
    /// # Errors
    /// File failures.
    pub fn save(&self, profile: &Profile) -> Result<(), TrustFileError> {
        let path = file_path(profile);
        let mut f = TrustFile::read(&path)?;
        self.store_into(&mut f);
        f.write(&path)
    }

    /// Copies this state into `f` (the caller writes it).
    pub fn store_into(&self, f: &mut TrustFile) {
        f.user = Some(self.user.clone());
        f.device_key = Some(self.key.public());
        let pins = with_roots(self.pins.clone(), &self.roots);
        f.roots.clone_from(&self.roots);
        let rotated = !pins.retiring.is_empty() || !pins.retired.is_empty();
        f.root_pins = rotated.then_some(pins);
        f.certs.clone_from(&self.certs);
        f.revoked_serials.clone_from(&self.revoked.serials);
        f.revoked_keys.clone_from(&self.revoked.keys);
        f.pinned_hosts.clone_from(&self.pinned_hosts);
    }

    /// Takes what the relay served, checked against this laptop's roots: revocation lists
    /// signed by a root or a certified admin add to [`Self::revoked`]; certificates are kept
    /// only when they verify, are not expired or revoked and their signer is a root or a
    /// certified admin; every host key a valid certificate vouches for is pinned. The relay's
    /// `roots` are ignored (roots come only from invites and `admin trust init`).
    pub fn merge_bundle(&mut self, bundle: TrustBundle, now_ms: u64) -> MergeSummary {
        // Rotations first: a list or certificate the new root signed counts only once it is
        // pinned. Refused statements (not from a root pinned here, replayed, …) are ignored.
        let mut summary = MergeSummary {
            rotations: self.take_rotations(&bundle.rotations, now_ms),
            ..MergeSummary::default()
        };
        let mut all: Vec<Cert> = std::mem::take(&mut self.certs);
        for c in bundle.certs {
            if !all.contains(&c) {
                all.push(c);
            }
        }
        let mut lists = RevocationState::default();
        for list in &bundle.revocations {
            match lists.accept(list, &self.roots, &all, now_ms) {
                Ok(_) => summary.lists += 1,
                Err(_) => summary.lists_refused += 1,
            }
        }
        // An owner retires a replaced root early by naming it in a list of a current root.
        let current: Vec<_> = self.pins.active.iter().map(|r| r.key).collect();
        for signer in &current {
            for key in lists.keys_revoked_by(signer) {
                self.pins.retire(&key, signer);
            }
        }
        self.roots = self.pins.trusted(now_ms);
        let newly = lists.revoked();
        self.revoked.serials.extend(newly.serials);
        self.revoked.keys.extend(newly.keys);
        let verifier = Verifier::new(&self.roots, &self.revoked);
        let kept: Vec<Cert> = all
            .iter()
            .filter(|c| {
                c.open().is_ok_and(|b| {
                    now_ms < b.not_after_ms
                        && !self.revoked.serials.contains(&b.serial)
                        && verifier.is_admin_key(c.signer(), &all, now_ms)
                })
            })
            .cloned()
            .collect();
        summary.dropped = all.len() - kept.len();
        summary.certs = kept.len();
        let hosts: Vec<HostId> = kept
            .iter()
            .filter_map(|c| match c.open().ok()?.subject {
                Subject::Host { host, .. } => Some(host),
                Subject::User { .. } => None,
            })
            .collect();
        for host in hosts {
            if let Ok(k) = verifier.host_key_of(&host, &kept, now_ms) {
                self.pinned_hosts.insert(host, k);
            }
        }
        self.certs = kept;
        summary
    }

    /// Applies the rotation statements this laptop's pins accept (see
    /// `proto::trust::RootPins::accept`); returns how many.
    pub fn take_rotations(&mut self, statements: &[RootRotation], now_ms: u64) -> usize {
        self.sync_pins();
        let taken = statements
            .iter()
            .filter(|st| self.pins.accept(st, now_ms, ROOT_OVERLAP_MS).is_ok())
            .count();
        self.pins.expire(now_ms);
        self.roots = self.pins.trusted(now_ms);
        taken
    }

    /// Pins a root added to [`Self::roots`] directly.
    fn sync_pins(&mut self) {
        self.pins = with_roots(std::mem::take(&mut self.pins), &self.roots);
    }

    /// Whether this laptop verifies hosts (has roots).
    pub fn zero_trust(&self) -> bool {
        !self.roots.is_empty()
    }

    fn verifier(&self) -> Verifier<'_> {
        Verifier::new(&self.roots, &self.revoked)
    }

    /// The certificates that grant this device key something (what `e2e_open` shows the
    /// host): valid grants naming it, and the admin certificates their chains need.
    pub fn my_certs(&self, now_ms: u64) -> Vec<Cert> {
        let me = self.key.public();
        let mine: Vec<&Cert> = self
            .certs
            .iter()
            .filter(|c| {
                c.open().is_ok_and(|b| {
                    b.valid_at(now_ms)
                        && matches!(&b.subject, Subject::User { user, device_keys, .. }
                            if *user == self.user && device_keys.contains(&me))
                })
            })
            .collect();
        // The admin links: grants held by the signers of mine.
        let signers: Vec<_> = mine.iter().map(|c| *c.signer()).collect();
        let links = self.certs.iter().filter(|c| {
            c.open().is_ok_and(|b| {
                b.valid_at(now_ms)
                    && matches!(&b.subject, Subject::User { device_keys, .. }
                        if device_keys.iter().any(|k| signers.contains(k)))
            })
        });
        let mut out: Vec<Cert> = mine.into_iter().cloned().collect();
        for c in links {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }

    /// `host`'s end-to-end key, from a certificate that chains to this laptop's roots.
    ///
    /// # Errors
    /// `NoHostCert` when none does.
    pub fn host_key(&self, host: &HostId, now_ms: u64) -> Result<X25519Public, TrustError> {
        self.verifier().host_key_of(host, &self.certs, now_ms)
    }
}

/// `pins` with every root of `roots` it does not know pinned (a root added to
/// [`OperatorTrust::roots`] directly, as `admin trust init` does).
fn with_roots(mut pins: RootPins, roots: &[Root]) -> RootPins {
    for r in roots {
        let known = pins.active.contains(r)
            || pins.retiring.iter().any(|x| x.root == *r)
            || pins.retired.contains(r);
        if !known {
            pins.active.push(r.clone());
        }
    }
    pins
}
