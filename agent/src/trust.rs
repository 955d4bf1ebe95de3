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
mod show;
mod store;

pub use delivery::{Delivered, take_delivered};
pub use keys::{generate_secret, public_of};
pub use load::{LoadError, load};
pub use show::{Freshness, RELAY_TRUSTED_HINT, TrustReport, human_age, report};
pub use store::{
    REVOCATIONS_FILE, StoreError, TRUST_FILE, TrustFile, TrustMode, load_revocations, remove,
    revocations_path, save_revocations, trust_path,
};

use parking_lot::Mutex;
use proto::handshake::Bytes32;
use proto::header::StreamHeader;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::replay::ReplayWindow;
use proto::trust::header::{CheckedHeader, nonce_window};
use proto::trust::{
    Cert, HostKeyClaim, PublicKey, RevocationList, RevocationState, Root, TrustError, Verifier,
    X25519Public,
};

/// Default `[trust] revocation_max_age`: how old the newest owner-signed revocation list may
/// be before the host refuses new work.
pub use crate::config::DEFAULT_REVOCATION_MAX_AGE_MS;

/// A zero-trust host's trust state (see the module docs). Cheap to share: `Arc<HostTrust>`.
#[derive(Debug)]
pub struct HostTrust {
    host: HostId,
    roots: Vec<Root>,
    /// The X25519 secret of the host's end-to-end key (`cm_client::e2e::HostKeyPair`).
    host_secret: [u8; 32],
    max_age_ms: u64,
    /// The enrollment's bind secret, which proves the end-to-end key ([`HostKeyClaim`]).
    bind: Option<Bytes32>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    revocations: RevocationState,
    nonces: ReplayWindow,
    /// Certificates operators showed (newest first, bounded), for admins' revocation lists and
    /// `cm-agent trust show`.
    seen: Vec<Cert>,
}

/// Most certificates remembered from operators.
const MAX_SEEN: usize = 1_024;

impl HostTrust {
    /// Trust for `host` pinning `roots`, with the end-to-end key `host_secret`.
    pub fn new(host: HostId, roots: Vec<Root>, host_secret: [u8; 32], max_age_ms: u64) -> Self {
        Self {
            host,
            roots,
            host_secret,
            max_age_ms,
            bind: None,
            state: Mutex::new(State {
                revocations: RevocationState::default(),
                nonces: nonce_window(),
                seen: Vec::new(),
            }),
        }
    }

    /// With the enrollment's bind secret, so the host can claim its end-to-end key.
    #[must_use]
    pub fn with_bind(mut self, bind: Option<Bytes32>) -> Self {
        self.bind = bind;
        self
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

    /// The pinned roots.
    pub fn roots(&self) -> &[Root] {
        &self.roots
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
        let mut state = self.state.lock();
        proto::trust::header::check(header, &self.host, now_ms, &mut state.nonces)
    }

    /// Whether new work may start: a fresh enough owner-signed revocation list.
    ///
    /// # Errors
    /// `NoRevocationList` or `RevocationsStale`, with what to do.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), TrustError> {
        self.state
            .lock()
            .revocations
            .check_fresh(&self.roots, now_ms, self.max_age_ms)
    }

    /// The role `certs` give `user`'s `key` here now, revocations applied.
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
        let revoked = self.state.lock().revocations.revoked();
        Verifier::new(&self.roots, &revoked).role_of(user, key, &self.host, certs, now_ms)
    }

    /// Records certificates an operator showed (deduplicated, bounded).
    pub fn record_certs(&self, certs: &[Cert]) {
        let mut state = self.state.lock();
        for c in certs {
            if !state.seen.contains(c) {
                state.seen.insert(0, c.clone());
            }
        }
        state.seen.truncate(MAX_SEEN);
    }

    /// The certificates operators showed.
    pub fn seen_certs(&self) -> Vec<Cert> {
        self.state.lock().seen.clone()
    }

    /// Takes the lists the relay delivered; returns how many were newer than what was held.
    /// Lists that fail to verify are skipped and logged.
    pub fn accept_revocations(&self, lists: &[RevocationList], now_ms: u64) -> usize {
        let mut state = self.state.lock();
        let seen = state.seen.clone();
        let mut taken = 0;
        for list in lists {
            match state.revocations.accept(list, &self.roots, &seen, now_ms) {
                Ok(true) => taken += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    target: "cm_agent::audit",
                    error = %e,
                    "refused a revocation list the relay delivered"
                ),
            }
        }
        taken
    }

    /// The revocation lists held (for persistence and `cm-agent trust show`).
    pub fn revocation_lists(&self) -> Vec<RevocationList> {
        self.state.lock().revocations.lists()
    }

    /// When the newest owner-signed list was signed.
    pub fn newest_list_ms(&self) -> Option<u64> {
        self.state
            .lock()
            .revocations
            .newest_root_issued_ms(&self.roots)
    }
}
