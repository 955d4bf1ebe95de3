//! What a set of certificates proves, decided in one place. Chains are at most two long:
//! root → certificate, or root → admin's certificate → certificate.
//!
//! A certificate counts when its signature verifies, `now` is within its validity, its serial
//! is not revoked, neither its signer's key nor (for a grant) the key asking is revoked, and its
//! signer is a root or a certified admin for the host. A root signs as its owner (every role);
//! an admin certifies roles up to operator and hosts they administer.

use super::TrustError;
use super::cert::{Cert, CertBody, Root, Subject, X25519Public, covers};
use super::keys::PublicKey;
use super::revocation::Revoked;
use crate::ids::{HostId, UserId};
use crate::rbac::Role;

/// Checks certificates against pinned roots and known revocations.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    roots: &'a [Root],
    revoked: &'a Revoked,
}

/// Who signed a certificate, as far as the chain goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authority {
    Root,
    Admin,
}

impl<'a> Verifier<'a> {
    /// A verifier for `roots` and `revoked`.
    pub fn new(roots: &'a [Root], revoked: &'a Revoked) -> Self {
        Self { roots, revoked }
    }

    fn is_root(&self, key: &PublicKey) -> bool {
        self.roots.iter().any(|r| r.key == *key)
    }

    /// A certificate's body if it counts by itself (signature, time, serial, signer's key).
    fn open_valid(&self, cert: &Cert, now_ms: u64) -> Option<CertBody> {
        let body = cert.open().ok()?;
        let signer_revoked =
            !self.is_root(cert.signer()) && self.revoked.keys.contains(cert.signer());
        (body.valid_at(now_ms) && !self.revoked.serials.contains(&body.serial) && !signer_revoked)
            .then_some(body)
    }

    /// Whether `key` holds a root-signed admin (or owner) grant covering `host` (any host when
    /// `None`).
    fn admin_for(
        &self,
        key: &PublicKey,
        host: Option<&HostId>,
        certs: &[Cert],
        now_ms: u64,
    ) -> bool {
        if self.revoked.keys.contains(key) && !self.is_root(key) {
            return false;
        }
        certs.iter().any(|c| {
            self.is_root(c.signer())
                && self.open_valid(c, now_ms).is_some_and(|b| match b.subject {
                    Subject::User {
                        device_keys,
                        host: granted,
                        role,
                        ..
                    } => {
                        role >= Role::Admin
                            && device_keys.contains(key)
                            && host.is_none_or(|h| covers(&granted, h))
                    }
                    Subject::Host { .. } => false,
                })
        })
    }

    /// Whether `key` is a root or a certified admin somewhere (who may sign revocation lists).
    pub fn is_admin_key(&self, key: &PublicKey, certs: &[Cert], now_ms: u64) -> bool {
        self.is_root(key) || self.admin_for(key, None, certs, now_ms)
    }

    /// Whether `key` is a root or a certified admin of `host` (whose revocation lists that host
    /// takes: an admin of another host has no say there).
    pub fn is_admin_key_of(
        &self,
        key: &PublicKey,
        host: &HostId,
        certs: &[Cert],
        now_ms: u64,
    ) -> bool {
        self.is_root(key) || self.admin_for(key, Some(host), certs, now_ms)
    }

    fn authority(
        &self,
        signer: &PublicKey,
        host: &HostId,
        certs: &[Cert],
        now_ms: u64,
    ) -> Option<Authority> {
        if self.is_root(signer) {
            Some(Authority::Root)
        } else if self.admin_for(signer, Some(host), certs, now_ms) {
            Some(Authority::Admin)
        } else {
            None
        }
    }

    /// The highest role `certs` give `user`'s device key `key` on `host`. A root's own key is
    /// its owner's, with the owner role everywhere.
    ///
    /// # Errors
    /// [`TrustError::NoGrant`] when nothing valid grants it a role there.
    pub fn role_of(
        &self,
        user: &UserId,
        key: &PublicKey,
        host: &HostId,
        certs: &[Cert],
        now_ms: u64,
    ) -> Result<Role, TrustError> {
        if self.roots.iter().any(|r| r.key == *key && r.user == *user) {
            return Ok(Role::Owner);
        }
        let no_grant = || TrustError::NoGrant {
            user: user.clone(),
            fingerprint: key.fingerprint(),
            host: host.clone(),
        };
        if self.revoked.keys.contains(key) {
            return Err(no_grant());
        }
        certs
            .iter()
            .filter_map(|c| {
                let body = self.open_valid(c, now_ms)?;
                let Subject::User {
                    user: u,
                    device_keys,
                    host: granted,
                    role,
                } = body.subject
                else {
                    return None;
                };
                if u != *user || !device_keys.contains(key) || !covers(&granted, host) {
                    return None;
                }
                match self.authority(c.signer(), host, certs, now_ms)? {
                    Authority::Root => Some(role),
                    Authority::Admin => (role <= Role::Operator).then_some(role),
                }
            })
            .max()
            .ok_or_else(no_grant)
    }

    /// `host`'s end-to-end key, from the newest valid host certificate naming it.
    ///
    /// # Errors
    /// [`TrustError::NoHostCert`].
    pub fn host_key_of(
        &self,
        host: &HostId,
        certs: &[Cert],
        now_ms: u64,
    ) -> Result<X25519Public, TrustError> {
        certs
            .iter()
            .filter_map(|c| {
                let body = self.open_valid(c, now_ms)?;
                let Subject::Host { host: h, host_key } = body.subject else {
                    return None;
                };
                (h == *host && self.authority(c.signer(), host, certs, now_ms).is_some())
                    .then_some((body.not_before_ms, host_key))
            })
            .max_by_key(|(from, _)| *from)
            .map(|(_, k)| k)
            .ok_or_else(|| TrustError::NoHostCert { host: host.clone() })
    }
}
