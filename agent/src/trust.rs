//! What a zero-trust host holds to check operators itself (issue #20; see `proto::trust`):
//! the owners' roots it pinned at enrollment, its end-to-end key, the newest revocation lists,
//! the nonces it has seen and the certificates operators showed it.
//!
//! A host enrolled with a token that carries roots has one [`HostTrust`] (set on
//! [`crate::workspaces::Workspaces`] at start); a host enrolled before is relay-trusted and has
//! none: it believes the relay's `ForwardHeader` as before.

mod delivery;
pub mod doctor;
mod keys;
mod load;
mod role_cache;
mod show;
mod store;

pub use delivery::{Delivered, take_delivered};
pub use keys::{generate_secret, public_of};
pub use load::{LoadError, load};
pub use show::{Freshness, RELAY_TRUSTED_HINT, TrustReport, human_age, report};
pub use store::{
    REVOCATIONS_FILE, Rotations, StoreError, TRUST_FILE, TrustFile, TrustMode, load_revocations,
    remove, revocations_path, save_pins, save_revocations, trust_path,
};

use crate::signature_check::IdleVerifier;
use parking_lot::Mutex;
use proto::handshake::Bytes32;
use proto::header::StreamHeader;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::replay::ReplayWindow;
use proto::trust::header::{CheckedHeader, nonce_window};
use proto::trust::{
    Cert, HostKeyClaim, PendingSignature, PublicKey, RevocationList, RevocationState, Root,
    RootPins, RootRotation, Rotated, TrustError, UnverifiedHeader, Verifier, X25519Public,
};
use role_cache::{RoleCache, RoleKey};
use std::sync::OnceLock;

/// Default `[trust] revocation_max_age`: how old the newest owner-signed revocation list may
/// be before the host refuses new work.
pub use crate::config::{DEFAULT_REVOCATION_MAX_AGE_MS, DEFAULT_ROOT_OVERLAP_MS};

/// A header whose signature, target and time checked out but whose nonce is not recorded yet
/// ([`HostTrust::verify_header`]): nothing may act on it before it is recorded.
#[derive(Debug)]
#[must_use = "a header counts only once its nonce is recorded"]
pub struct Unrecorded(CheckedHeader);

impl Unrecorded {
    /// `checked`, whose nonce is not recorded yet (for checks at another time than now, as a
    /// queued prompt's: `ops::e2e::queued::verify`).
    pub(crate) fn new(checked: CheckedHeader) -> Self {
        Self(checked)
    }

    /// What was signed, and by which key (for the checks before the nonce is recorded).
    pub fn header(&self) -> &CheckedHeader {
        &self.0
    }

    /// Records the nonce in `nonces` at `now_ms`.
    ///
    /// # Errors
    /// `Replayed`, or `NoncesFull`.
    pub(crate) fn record_in(
        self,
        nonces: &mut ReplayWindow,
        now_ms: u64,
    ) -> Result<CheckedHeader, TrustError> {
        proto::trust::header::record_nonce(&self.0, now_ms, nonces)?;
        Ok(self.0)
    }
}

/// What [`HostTrust::retire_roots`] changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetiredRoots {
    /// Whether the pins changed (to be saved).
    pub changed: bool,
    /// Replaced roots their owner retired before their overlap ended.
    pub early: Vec<PublicKey>,
}

/// A zero-trust host's trust state (see the module docs). Cheap to share: `Arc<HostTrust>`.
#[derive(Debug)]
pub struct HostTrust {
    host: HostId,
    /// The X25519 secret of the host's end-to-end key (`cm_client::e2e::HostKeyPair`).
    host_secret: [u8; 32],
    max_age_ms: u64,
    /// How long a root replaced by a rotation stays trusted (`[trust] root_overlap`).
    overlap_ms: u64,
    /// The enrollment's bind secret, which proves the end-to-end key ([`HostKeyClaim`]).
    bind: Option<Bytes32>,
    state: Mutex<State>,
    /// Verifies MAC-checked headers' signatures beside the work; started on first use.
    signature_checks: OnceLock<IdleVerifier>,
    /// Counts what changes roles: revocation lists, rotations and retirements taken (running
    /// streams check their role again at each change: [`Self::changes`]).
    generation: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    /// The roots pinned at enrollment, with the owners' rotations applied.
    pins: RootPins,
    revocations: RevocationState,
    nonces: ReplayWindow,
    /// Certificates operators showed (newest first, bounded), for admins' revocation lists and
    /// `cm-agent trust show`.
    seen: Vec<Cert>,
    /// Roles already worked out from certificate chains; emptied whenever `pins` or
    /// `revocations` change.
    roles: RoleCache,
}

/// Most certificates remembered from operators.
const MAX_SEEN: usize = 1_024;

/// Most certificates looked at from one handshake (an operator shows their grants, an admin
/// certificate and a host certificate or two).
pub const MAX_SHOWN: usize = 32;

impl HostTrust {
    /// Trust for `host` pinning `roots`, with the end-to-end key `host_secret`.
    pub fn new(host: HostId, roots: Vec<Root>, host_secret: [u8; 32], max_age_ms: u64) -> Self {
        Self {
            host,
            host_secret,
            max_age_ms,
            overlap_ms: DEFAULT_ROOT_OVERLAP_MS,
            bind: None,
            state: Mutex::new(State {
                pins: RootPins::new(roots),
                revocations: RevocationState::default(),
                nonces: nonce_window(),
                seen: Vec::new(),
                roles: RoleCache::default(),
            }),
            signature_checks: OnceLock::new(),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }

    /// After something that can take a role away was taken: the cached roles go, and work
    /// that runs long checks its own again ([`Self::changes`]).
    fn roles_may_have_changed(&self, state: &mut State) {
        state.roles.clear();
        self.generation.send_modify(|g| *g += 1);
    }

    /// Ticks whenever this host takes something that can take a role away (a revocation
    /// list, a root rotation or retirement): work that runs long checks its role again then.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// With the enrollment's bind secret, so the host can claim its end-to-end key.
    #[must_use]
    pub fn with_bind(mut self, bind: Option<Bytes32>) -> Self {
        self.bind = bind;
        self
    }

    /// With the pins as `trust.json` keeps them (rotations applied) and the overlap a replaced
    /// root keeps.
    #[must_use]
    pub fn with_pins(self, pins: RootPins, overlap_ms: u64) -> Self {
        {
            let mut state = self.state.lock();
            state.pins = pins;
            state.roles.clear();
        }
        Self { overlap_ms, ..self }
    }

    /// The end-to-end key's public half.
    pub fn host_public(&self) -> X25519Public {
        public_of(self.host_secret)
    }

    /// The claim sent to the relay after each handshake: the end-to-end key, proven with the
    /// bind secret. `None` without a bind secret (a token without one).
    pub fn key_claim(&self) -> Option<HostKeyClaim> {
        let bind = self.bind.as_ref()?;
        Some(HostKeyClaim::new(
            self.host.clone(),
            self.host_public(),
            bind,
        ))
    }

    /// This host.
    pub fn host(&self) -> &HostId {
        &self.host
    }

    /// The roots trusted now: the pinned ones and those replaced by a rotation but still
    /// within their overlap.
    pub fn roots(&self, now_ms: u64) -> Vec<Root> {
        self.state.lock().pins.trusted(now_ms)
    }

    /// The pins with the rotations applied (for `trust.json`).
    pub fn pins(&self) -> RootPins {
        self.state.lock().pins.clone()
    }

    /// Takes the owners' root rotation statements the relay delivered: each that a pinned
    /// root signed (see `proto::trust::rotation`) pins its new root; the others are refused
    /// and logged. Returns the rotations taken.
    pub fn accept_rotations(&self, statements: &[RootRotation], now_ms: u64) -> Vec<Rotated> {
        let mut state = self.state.lock();
        let mut taken = Vec::new();
        for st in statements {
            match state.pins.accept(st, now_ms, self.overlap_ms) {
                Ok(r) => {
                    tracing::info!(
                        target: "cm_agent::audit",
                        owner = %r.new.user,
                        old_root = %r.old.key.fingerprint(),
                        new_root = %r.new.key.fingerprint(),
                        old_trusted_until_ms = r.until_ms,
                        "owner root rotated: the new root is pinned, the old one retires after its overlap"
                    );
                    taken.push(r);
                }
                // Already taken: the relay sends every statement again with each push.
                Err(TrustError::RotationReplayed { seq, held }) if seq == held => {}
                Err(e) => tracing::warn!(
                    target: "cm_agent::audit",
                    error = %e,
                    "refused a root rotation statement the relay delivered"
                ),
            }
        }
        if !taken.is_empty() {
            self.roles_may_have_changed(&mut state);
        }
        taken
    }

    /// The end-to-end key's secret.
    pub fn host_secret(&self) -> [u8; 32] {
        self.host_secret
    }

    /// The revocation freshness limit.
    pub fn max_age_ms(&self) -> u64 {
        self.max_age_ms
    }

    /// Signature, target, time and nonce of a forwarded header (`proto::trust::header::check`).
    ///
    /// # Errors
    /// The first check that fails.
    pub fn check_header(
        &self,
        header: &StreamHeader,
        now_ms: u64,
    ) -> Result<CheckedHeader, TrustError> {
        let unrecorded = self.verify_header(header, now_ms)?;
        self.record_nonce(unrecorded, now_ms)
    }

    /// Signature, target and time of a forwarded header, its nonce not recorded yet: the host
    /// records it ([`Self::record_nonce`]) once the signer is shown to matter here (holds the
    /// channel, or certificates that give a role), so that keys nobody certified cannot fill
    /// the nonce window and lock everyone out. Checked outside the lock.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn verify_header(
        &self,
        header: &StreamHeader,
        now_ms: u64,
    ) -> Result<Unrecorded, TrustError> {
        proto::trust::header::verify(header, &self.host, now_ms).map(Unrecorded)
    }

    /// Records a verified header's nonce: it counts (and is never accepted again) from now.
    ///
    /// # Errors
    /// `Replayed`, or `NoncesFull`.
    pub fn record_nonce(
        &self,
        unrecorded: Unrecorded,
        now_ms: u64,
    ) -> Result<CheckedHeader, TrustError> {
        unrecorded.record_in(&mut self.state.lock().nonces, now_ms)
    }

    /// A header on an end-to-end channel, authenticated by the channel's MAC instead of its
    /// signature (`proto::trust::header_mac`): the MAC under `mac_key`, the fields, this host,
    /// the time, then the nonce recorded as [`Self::check_header`] records it. The signature comes
    /// back to be verified beside the work.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn check_header_mac(
        &self,
        header: &StreamHeader,
        unverified: UnverifiedHeader,
        now_ms: u64,
        mac_key: &[u8; 32],
    ) -> Result<(CheckedHeader, PendingSignature), TrustError> {
        let (checked, pending) = unverified.check_mac(header, &self.host, now_ms, mac_key)?;
        let mut state = self.state.lock();
        proto::trust::header::record_nonce(&checked, now_ms, &mut state.nonces)?;
        Ok((checked, pending))
    }

    /// What verifies MAC-checked headers' signatures beside the work they allow
    /// ([`crate::signature_check`]); its thread starts on first use.
    pub fn signature_checks(&self) -> &IdleVerifier {
        self.signature_checks.get_or_init(IdleVerifier::start)
    }

    /// Whether new work may start: a fresh enough owner-signed revocation list.
    ///
    /// # Errors
    /// `NoRevocationList` or `RevocationsStale`, with what to do.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), TrustError> {
        let state = self.state.lock();
        let roots = state.pins.trusted(now_ms);
        state
            .revocations
            .check_fresh(&roots, now_ms, self.max_age_ms)
    }

    /// The role `certs` give `user`'s `key` here now, revocations applied. The chain's
    /// signatures are verified once per (user, key, exact certificates): the answer is kept
    /// until a certificate's validity or a replaced root's overlap changes, or a new
    /// revocation list or rotation is taken (see `role_cache`).
    ///
    /// # Errors
    /// `NoGrant` when nothing valid grants one.
    pub fn role_of(
        &self,
        user: &UserId,
        key: &PublicKey,
        certs: &[Cert],
        now_ms: u64,
    ) -> Result<Role, TrustError> {
        let cache_key = RoleKey::of(user, key, certs);
        let (roots, revoked, generation, until_ms) = {
            let state = self.state.lock();
            if let Some(role) = state.roles.get(&cache_key, now_ms) {
                return Ok(role);
            }
            (
                state.pins.trusted(now_ms),
                state.revocations.revoked(),
                state.roles.generation(),
                role_cache::stable_until(certs, &state.pins, now_ms),
            )
        };
        // Verified outside the lock (other streams' checks go on meanwhile).
        let role = Verifier::new(&roots, &revoked).role_of(user, key, &self.host, certs, now_ms)?;
        self.state
            .lock()
            .roles
            .put(cache_key, role, generation, now_ms, until_ms);
        Ok(role)
    }

    /// Records certificates an operator showed that can matter here: valid now and signed by a
    /// pinned root or by an admin of this host those roots certified (checked against these
    /// and the ones already kept). Kept most recently shown first and bounded, so certificates
    /// nobody trusts cannot push out an admin's, whose revocation lists this host takes only
    /// with it.
    ///
    /// At most [`MAX_SHOWN`] distinct certificates of one handshake are looked at, and their
    /// signatures are checked outside the lock (other streams' checks go on meanwhile).
    pub fn record_certs(&self, certs: &[Cert], now_ms: u64) {
        let mut shown: Vec<Cert> = Vec::new();
        for c in certs {
            if shown.len() == MAX_SHOWN {
                break;
            }
            if !shown.contains(c) {
                shown.push(c.clone());
            }
        }
        let (roots, revoked, seen) = {
            let state = self.state.lock();
            let roots = state.pins.trusted(now_ms);
            (roots, state.revocations.revoked(), state.seen.clone())
        };
        let mut known = shown.clone();
        known.extend(seen.into_iter().filter(|c| !shown.contains(c)));
        let verifier = proto::trust::Verifier::new(&roots, &revoked);
        let counting: Vec<Cert> = shown
            .into_iter()
            .filter(|c| {
                c.open().is_ok_and(|b| b.valid_at(now_ms))
                    && verifier.is_admin_key_of(c.signer(), &self.host, &known, now_ms)
            })
            .collect();
        let mut state = self.state.lock();
        for c in counting.iter().rev() {
            state.seen.retain(|s| s != c);
            state.seen.insert(0, c.clone());
        }
        state.seen.truncate(MAX_SEEN);
    }

    /// The certificates operators showed.
    pub fn seen_certs(&self) -> Vec<Cert> {
        self.state.lock().seen.clone()
    }

    /// Takes again the lists this host kept (`revocations.json`): each was taken from a root or
    /// an admin of this host when it arrived, and stays taken when that admin's certificate
    /// later ends or is no longer among those kept (a revocation does not lapse with its
    /// issuer's authority). Returns how many were taken; a list whose signature does not
    /// verify is skipped and logged.
    pub fn restore_revocations(&self, lists: &[RevocationList]) -> usize {
        let mut state = self.state.lock();
        let mut taken = 0;
        for list in lists {
            match state.revocations.restore(list) {
                Ok(true) => taken += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "skipped a kept revocation list"),
            }
        }
        if taken > 0 {
            self.roles_may_have_changed(&mut state);
        }
        taken
    }

    /// Takes the lists the relay delivered; returns how many were newer than what was held.
    /// Lists that fail to verify are skipped and logged.
    pub fn accept_revocations(&self, lists: &[RevocationList], now_ms: u64) -> usize {
        let mut state = self.state.lock();
        let seen = state.seen.clone();
        let roots = state.pins.trusted(now_ms);
        let mut taken = 0;
        for list in lists {
            match state
                .revocations
                .accept_on_host(list, &roots, &seen, &self.host, now_ms)
            {
                Ok(true) => taken += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    target: "cm_agent::audit",
                    error = %e,
                    "refused a revocation list the relay delivered"
                ),
            }
        }
        if taken > 0 {
            self.roles_may_have_changed(&mut state);
        }
        taken
    }

    /// Retires at once every replaced root that a list signed by a current root of its owner
    /// names (the owner retiring it before its overlap ends), and those whose overlap ended.
    /// Returns whether the pins changed and the roots their owner retired early, for the
    /// caller to log once the pins are saved.
    pub fn retire_roots(&self, now_ms: u64) -> RetiredRoots {
        let mut state = self.state.lock();
        let State {
            pins, revocations, ..
        } = &mut *state;
        let mut changed = !pins.expire(now_ms).is_empty();
        let current: Vec<PublicKey> = pins.active.iter().map(|r| r.key).collect();
        let mut early = Vec::new();
        for signer in &current {
            for key in revocations.keys_revoked_by(signer) {
                if pins.retire(&key, signer) {
                    early.push(key);
                    changed = true;
                }
            }
        }
        if changed {
            self.roles_may_have_changed(&mut state);
        }
        RetiredRoots { changed, early }
    }

    /// The revocation lists held (for persistence and `cm-agent trust show`).
    pub fn revocation_lists(&self) -> Vec<RevocationList> {
        self.state.lock().revocations.lists()
    }

    /// When the newest owner-signed list was signed.
    pub fn newest_list_ms(&self, now_ms: u64) -> Option<u64> {
        let state = self.state.lock();
        let roots = state.pins.trusted(now_ms);
        state.revocations.newest_root_issued_ms(&roots, now_ms)
    }
}

#[cfg(test)]
mod role_tests;
