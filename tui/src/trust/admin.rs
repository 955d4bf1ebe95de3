//! What an owner's or admin's laptop signs (pure: keys, times and randomness are passed in):
//! host certificates for key claims proven with a bind secret it holds, user grants, its own
//! revocation list, and after an owner root rotation the certificates the old root signed.

use super::OperatorTrust;
use super::file::OwnList;
use proto::admin::GrantInfo;
use proto::handshake::Bytes32;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::trust::revocation::Revoked;
use proto::trust::{
    Cert, CertBody, DeviceKey, HostKeyClaim, PublicKey, RevocationBody, RevocationList, Subject,
    Verifier,
};
use std::collections::BTreeMap;

/// How long a host certificate is valid.
pub const HOST_CERT_MS: u64 = 365 * 86_400_000;
/// How long a user grant is valid.
pub const USER_CERT_MS: u64 = 90 * 86_400_000;

/// What this laptop's device key may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A pinned root: any role, any host.
    Root,
    /// A root-certified admin: roles up to operator.
    Admin,
    /// Nothing.
    None,
}

/// This laptop's authority under its pinned roots.
pub fn authority(trust: &OperatorTrust, now_ms: u64) -> Authority {
    let me = trust.key.public();
    if trust.roots.iter().any(|r| r.key == me) {
        return Authority::Root;
    }
    if Verifier::new(&trust.roots, &trust.revoked).is_admin_key(&me, &trust.certs, now_ms) {
        Authority::Admin
    } else {
        Authority::None
    }
}

/// The message for a laptop that cannot sign.
pub const CANNOT_SIGN: &str = "this laptop's device key is neither an owner's root nor certified as admin; run `cm-tui admin trust init` (owner) or ask an owner to certify you as admin (`cm-tui admin user certify YOU`)";

/// A new certificate serial (16 hex digits).
pub fn serial(random: u64) -> String {
    format!("{random:016x}")
}

/// Host certificates for the `claims` this laptop can check (it holds their host's bind secret)
/// that prove their key and that no valid certificate in `certs` already vouches for.
/// `only` narrows to one host. Returns the certificates and the claims that failed the proof.
pub fn certify_claims(
    trust: &OperatorTrust,
    binds: &BTreeMap<HostId, Bytes32>,
    claims: &[HostKeyClaim],
    only: Option<&HostId>,
    now_ms: u64,
    mut random: impl FnMut() -> u64,
) -> (Vec<Cert>, Vec<HostId>) {
    let verifier = Verifier::new(&trust.roots, &trust.revoked);
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for claim in claims {
        if only.is_some_and(|h| *h != claim.host) {
            continue;
        }
        let Some(bind) = binds.get(&claim.host) else {
            continue;
        };
        if !claim.verify(bind) {
            bad.push(claim.host.clone());
            continue;
        }
        if verifier
            .host_key_of(&claim.host, &trust.certs, now_ms)
            .is_ok_and(|k| k == claim.host_key)
        {
            continue;
        }
        let body = CertBody {
            serial: serial(random()),
            subject: Subject::Host {
                host: claim.host.clone(),
                host_key: claim.host_key,
            },
            not_before_ms: now_ms,
            not_after_ms: now_ms + HOST_CERT_MS,
        };
        out.push(Cert::sign(&body, &trust.key));
    }
    (out, bad)
}

/// Why grants could not all be certified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertifyError {
    /// This laptop cannot sign.
    #[error("{CANNOT_SIGN}")]
    CannotSign,
    /// An admin (not a root) cannot certify a role above operator.
    #[error(
        "{user} holds {role} on {host}; as an admin (not an owner's root) you can certify roles up to operator: ask an owner to run `cm-tui admin user certify {user}`"
    )]
    AboveOperator {
        /// The user.
        user: UserId,
        /// Their role.
        role: Role,
        /// Where.
        host: String,
    },
    /// Nothing to certify.
    #[error(
        "{0} has no grants at the relay; grant a role first (`cm-tui admin user grant {0} ROLE`)"
    )]
    NoGrants(UserId),
}

/// One `User` certificate per grant of `user` for `keys`. An admin may certify only up to
/// operator; higher grants are refused (and nothing is signed).
///
/// # Errors
/// [`CertifyError`].
pub fn user_certs(
    trust: &OperatorTrust,
    authority: Authority,
    user: &UserId,
    keys: &[PublicKey],
    grants: &[GrantInfo],
    now_ms: u64,
    mut random: impl FnMut() -> u64,
) -> Result<Vec<Cert>, CertifyError> {
    if authority == Authority::None {
        return Err(CertifyError::CannotSign);
    }
    if grants.is_empty() {
        return Err(CertifyError::NoGrants(user.clone()));
    }
    if authority == Authority::Admin
        && let Some(g) = grants.iter().find(|g| g.role > Role::Operator)
    {
        return Err(CertifyError::AboveOperator {
            user: user.clone(),
            role: g.role,
            host: g.host.clone(),
        });
    }
    Ok(grants
        .iter()
        .map(|g| {
            let body = CertBody {
                serial: serial(random()),
                subject: Subject::User {
                    user: user.clone(),
                    device_keys: keys.to_vec(),
                    host: g.host.clone(),
                    role: g.role,
                },
                not_before_ms: now_ms,
                not_after_ms: now_ms + USER_CERT_MS,
            };
            Cert::sign(&body, &trust.key)
        })
        .collect())
}

/// Re-signs this laptop's revocation list with a new sequence number (never lower than the
/// clock, so a lost trust file cannot make hosts ignore the next list) and `issued_ms = now`.
pub fn sign_own_list(trust: &OperatorTrust, own: &mut OwnList, now_ms: u64) -> RevocationList {
    own.seq = (own.seq + 1).max(now_ms);
    RevocationList::sign(
        &RevocationBody {
            issuer_user: trust.user.clone(),
            seq: own.seq,
            issued_ms: now_ms,
            serials: own.serials.iter().cloned().collect(),
            keys: own.keys.iter().copied().collect(),
        },
        &trust.key,
    )
}

/// Serials of the `User` certificates in `certs` that name `user` (optionally only those for
/// `host`).
pub fn user_serials(certs: &[Cert], user: &UserId, host: Option<&str>) -> Vec<String> {
    serials_where(certs, user, |h, _| host.is_none_or(|x| x == h))
}

/// Serials of `user`'s certificates in `certs` for exactly `host` that give more than `role`.
pub fn user_serials_above(certs: &[Cert], user: &UserId, host: &str, role: Role) -> Vec<String> {
    serials_where(certs, user, |h, r| h == host && r > role)
}

/// Serials of `user`'s certificates in `certs` whose host and role pass `keep`.
fn serials_where(certs: &[Cert], user: &UserId, keep: impl Fn(&str, Role) -> bool) -> Vec<String> {
    certs
        .iter()
        .filter_map(|c| {
            let b = c.open().ok()?;
            match &b.subject {
                Subject::User {
                    user: u,
                    host: h,
                    role: r,
                    ..
                } if u == user && keep(h, *r) => Some(b.serial),
                _ => None,
            }
        })
        .collect()
}

/// Device keys named by `user`'s certificates in `certs`.
pub fn user_keys(certs: &[Cert], user: &UserId) -> Vec<PublicKey> {
    let mut out = Vec::new();
    for c in certs {
        if let Ok(CertBody {
            subject:
                Subject::User {
                    user: u,
                    device_keys,
                    ..
                },
            ..
        }) = c.open()
            && u == *user
        {
            for k in device_keys {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
    }
    out
}

/// After an owner root rotation: every certificate in `certs` that `old` signed and that still
/// counts (valid at `now_ms`, serial not revoked), signed again by `new` with a new serial,
/// valid from now until the original end. A grant naming `old` among its device keys names
/// `new` instead (the owner's own grant follows their root). Each grant is re-signed once, and
/// for each host only its newest key certificate (the one that counts).
pub fn resign(
    certs: &[Cert],
    revoked: &Revoked,
    old: &PublicKey,
    new: &DeviceKey,
    now_ms: u64,
    mut random: impl FnMut() -> u64,
) -> Vec<Cert> {
    let mut valid: Vec<CertBody> = certs
        .iter()
        .filter(|c| c.signer() == old)
        .filter_map(|c| c.open().ok())
        .filter(|b| b.valid_at(now_ms) && !revoked.serials.contains(&b.serial))
        .collect();
    valid.sort_by_key(|b| std::cmp::Reverse(b.not_before_ms));
    let mut done: Vec<Subject> = Vec::new();
    let mut hosts: Vec<HostId> = Vec::new();
    let mut out = Vec::new();
    for body in valid {
        let subject = match body.subject {
            Subject::User {
                user,
                device_keys,
                host,
                role,
            } => Subject::User {
                user,
                device_keys: device_keys
                    .into_iter()
                    .map(|k| if k == *old { new.public() } else { k })
                    .collect(),
                host,
                role,
            },
            Subject::Host { host, host_key } => {
                if hosts.contains(&host) {
                    continue;
                }
                hosts.push(host.clone());
                Subject::Host { host, host_key }
            }
        };
        if done.contains(&subject) {
            continue;
        }
        done.push(subject.clone());
        let body = CertBody {
            serial: serial(random()),
            subject,
            not_before_ms: now_ms,
            not_after_ms: body.not_after_ms,
        };
        out.push(Cert::sign(&body, new));
    }
    out
}
