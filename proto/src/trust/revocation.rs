//! Revocation lists: signed by an owner (a root) or a certified admin, stored and served by the
//! relay, which must hand them to agents. A host keeps the newest list of each signer and
//! refuses new work when the newest root-signed one is older than its limit (fail closed: a
//! relay that withholds a list can delay a revocation by at most that limit).

use super::TrustError;
use super::cert::{Cert, Root};
use super::chain::Verifier;
use super::header::REPLAY_WINDOW_MS;
use super::keys::PublicKey;
use super::signed::{Signed, SignedKind};
use crate::ids::{HostId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A signed revocation list.
pub type RevocationList = Signed<RevocationBody>;

/// The signed part of a revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationBody {
    /// Who signed (for people; the key is what counts).
    pub issuer_user: UserId,
    /// Increases with each list of this signer; an older one never replaces a newer one.
    pub seq: u64,
    /// When it was signed (unix ms): its freshness.
    pub issued_ms: u64,
    /// Revoked certificate serials.
    #[serde(default)]
    pub serials: Vec<String>,
    /// Revoked device keys (every certificate naming or signed by one stops counting).
    #[serde(default)]
    pub keys: Vec<PublicKey>,
}

impl SignedKind for RevocationBody {
    const DOMAIN: &'static str = "revocations/v1";
}

/// What a host knows of revocations: the newest list of each signer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationState {
    newest: BTreeMap<PublicKey, (RevocationBody, RevocationList)>,
}

/// Every serial and key revoked by the lists a host holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Revoked serials.
    pub serials: BTreeSet<String>,
    /// Revoked keys (never a root: roots are replaced by re-enrolling, see `cm-agent trust reset`).
    pub keys: BTreeSet<PublicKey>,
}

impl RevocationState {
    /// Takes `list` if its signer is a root or an admin certified by `certs`, and it is newer
    /// than the one held from that signer. Returns whether it was taken.
    ///
    /// # Errors
    /// A bad signature or an untrusted signer.
    pub fn accept(
        &mut self,
        list: &RevocationList,
        roots: &[Root],
        certs: &[Cert],
        now_ms: u64,
    ) -> Result<bool, TrustError> {
        self.accept_scoped(list, roots, certs, None, now_ms)
    }

    /// [`Self::accept`] on host `host`: an admin's list is taken only from an admin of this
    /// host (or of `*`); an admin of another host cannot revoke anything here.
    ///
    /// # Errors
    /// As [`Self::accept`].
    pub fn accept_on_host(
        &mut self,
        list: &RevocationList,
        roots: &[Root],
        certs: &[Cert],
        host: &HostId,
        now_ms: u64,
    ) -> Result<bool, TrustError> {
        self.accept_scoped(list, roots, certs, Some(host), now_ms)
    }

    fn accept_scoped(
        &mut self,
        list: &RevocationList,
        roots: &[Root],
        certs: &[Cert],
        host: Option<&HostId>,
        now_ms: u64,
    ) -> Result<bool, TrustError> {
        let body = list.open()?;
        let signer = *list.signer();
        let is_root = roots.iter().any(|r| r.key == signer);
        if !is_root {
            let revoked = self.revoked();
            let verifier = Verifier::new(roots, &revoked);
            let admin = match host {
                Some(host) => verifier.is_admin_key_of(&signer, host, certs, now_ms),
                None => verifier.is_admin_key(&signer, certs, now_ms),
            };
            if !admin {
                return Err(TrustError::UntrustedIssuer {
                    signer: signer.fingerprint(),
                });
            }
        }
        if let Some((held, _)) = self.newest.get(&signer)
            && held.seq >= body.seq
        {
            return Ok(false);
        }
        self.newest.insert(signer, (body, list.clone()));
        Ok(true)
    }

    /// Takes again a list this holder took before (kept on disk by its owner): the signature
    /// is checked, the issuer's authority is not (it was when the list was first taken).
    /// `Ok(false)` when a newer list of the same signer is held.
    ///
    /// # Errors
    /// A bad signature or payload.
    pub fn restore(&mut self, list: &RevocationList) -> Result<bool, TrustError> {
        let body = list.open()?;
        let signer = *list.signer();
        if let Some((held, _)) = self.newest.get(&signer)
            && held.seq >= body.seq
        {
            return Ok(false);
        }
        self.newest.insert(signer, (body, list.clone()));
        Ok(true)
    }

    /// Everything revoked, roots' keys excepted.
    pub fn revoked(&self) -> Revoked {
        let mut out = Revoked::default();
        for (body, _) in self.newest.values() {
            out.serials.extend(body.serials.iter().cloned());
            out.keys.extend(body.keys.iter().copied());
        }
        out
    }

    /// The keys revoked by the newest list `signer` signed (an owner retiring a replaced root
    /// names it in a list signed with a current root).
    pub fn keys_revoked_by(&self, signer: &PublicKey) -> Vec<PublicKey> {
        self.newest
            .get(signer)
            .map(|(body, _)| body.keys.clone())
            .unwrap_or_default()
    }

    /// The lists held, for `cm-agent trust show` and persistence.
    pub fn lists(&self) -> Vec<RevocationList> {
        self.newest.values().map(|(_, l)| l.clone()).collect()
    }

    /// Signing times of the root-signed lists held.
    fn root_issued_ms<'s>(&'s self, roots: &'s [Root]) -> impl Iterator<Item = u64> + 's {
        self.newest
            .iter()
            .filter(|(k, _)| roots.iter().any(|r| r.key == **k))
            .map(|(_, (b, _))| b.issued_ms)
    }

    /// The newest root-signed list's signing time that counts at `now_ms`: a list dated more
    /// than [`REPLAY_WINDOW_MS`] ahead does not (see [`Self::check_fresh`]).
    pub fn newest_root_issued_ms(&self, roots: &[Root], now_ms: u64) -> Option<u64> {
        let latest_allowed = now_ms.saturating_add(REPLAY_WINDOW_MS);
        self.root_issued_ms(roots)
            .filter(|t| *t <= latest_allowed)
            .max()
    }

    /// When no root-signed list counts at `now_ms` but some are dated ahead: the signing time
    /// of the nearest of those.
    pub fn nearest_root_ahead_ms(&self, roots: &[Root], now_ms: u64) -> Option<u64> {
        if self.newest_root_issued_ms(roots, now_ms).is_some() {
            return None;
        }
        self.root_issued_ms(roots).min()
    }

    /// Whether new work may start: a root-signed list signed within `max_age_ms` of `now_ms`.
    /// A list dated more than [`REPLAY_WINDOW_MS`] ahead of `now_ms` does not count (its
    /// revocations do): one list signed on a laptop whose clock runs ahead must not keep a host
    /// "fresh" for that long while a relay withholds the lists after it.
    ///
    /// # Errors
    /// [`TrustError::NoRevocationList`], [`TrustError::RevocationsStale`] or
    /// [`TrustError::RevocationListAhead`].
    pub fn check_fresh(
        &self,
        roots: &[Root],
        now_ms: u64,
        max_age_ms: u64,
    ) -> Result<(), TrustError> {
        let Some(issued) = self.newest_root_issued_ms(roots, now_ms) else {
            return Err(match self.nearest_root_ahead_ms(roots, now_ms) {
                Some(ahead) => TrustError::RevocationListAhead {
                    ahead_min: ahead.saturating_sub(now_ms) / 60_000,
                },
                None => TrustError::NoRevocationList,
            });
        };
        let age = now_ms.saturating_sub(issued);
        if age > max_age_ms {
            return Err(TrustError::RevocationsStale {
                age_min: age / 60_000,
                limit_min: max_age_ms / 60_000,
            });
        }
        Ok(())
    }
}
