//! The operator side of zero-trust (issue #20; see `proto::trust`): this laptop's device key
//! (in the OS keyring next to the credential, same reported 0600-file fallback), the owners'
//! roots it pinned from its invite, and the certificates it fetched from the relay (its own
//! grants, hosts' end-to-end keys), checked here against those roots, never taken on the
//! relay's word.
//!
//! Without roots (logged in before zero-trust, or an invite without them) the laptop is
//! relay-trusted: it sends plaintext headers and bodies as before, and says so.

use proto::ids::{HostId, UserId};
use proto::trust::revocation::Revoked;
use proto::trust::{Cert, DeviceKey, Root, Subject, TrustError, Verifier, X25519Public};
use std::collections::BTreeMap;

/// This laptop's trust state for one profile (user at a relay).
#[derive(Debug)]
pub struct OperatorTrust {
    /// The user.
    pub user: UserId,
    /// This laptop's device key.
    pub key: DeviceKey,
    /// The owners' roots pinned at login (from the invite) or `admin trust init`.
    pub roots: Vec<Root>,
    /// Certificates fetched from the relay (unverified until used).
    pub certs: Vec<Cert>,
    /// Revocations from the lists fetched with them (verified against the roots).
    pub revoked: Revoked,
    /// Hosts whose key a valid certificate vouched for once: this laptop never sends them
    /// plaintext again, whatever the relay says later.
    pub pinned_hosts: BTreeMap<HostId, X25519Public>,
}

impl OperatorTrust {
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
