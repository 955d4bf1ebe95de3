//! The administration screen's certificates tab (issue #20): who holds which certificate, as
//! the relay serves them (`trust_fetch`, the call `cm-tui admin trust show` makes): per device
//! key the user, its fingerprint, the host or `*`, the role, the end of validity and the
//! fingerprint of the key that signed it; host certificates with the host's end-to-end key;
//! and the device keys that logged in and wait for an admin to certify them. Pure: the rows
//! come from the bundle and that check.
//!
//! The relay stores and serves certificates but cannot make them: each row says whether it
//! chains to this laptop's pinned roots (checked by the connection task,
//! `HostStreams::vouched`), and a certificate whose signature does not verify is counted,
//! never listed.

use proto::rbac::Role;
use proto::trust::{Subject, TrustBundle};

/// What a certificate vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertKind {
    /// A user's device key holds a role.
    User(Role),
    /// A host's end-to-end key.
    Host,
}

/// One certified key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    /// The user, or the host for a host certificate.
    pub holder: String,
    /// The key's fingerprint (`ed25519:…` for a device, `x25519:…` for a host).
    pub key: String,
    /// The host, or `*` for every host.
    pub host: String,
    /// What it vouches for.
    pub kind: CertKind,
    /// Valid until (unix ms).
    pub not_after_ms: u64,
    /// The fingerprint of the key that signed it (a root's or a certified admin's).
    pub signer: String,
    /// The serial (what revocation lists name).
    pub serial: String,
    /// Whether it chains to this laptop's pinned roots, is valid and not revoked (`None`: this
    /// laptop has no roots to check against).
    pub vouched: Option<bool>,
}

/// A device key seen at login that no certificate covers yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The user.
    pub user: String,
    /// The key's fingerprint, to compare out of band with what their laptop printed.
    pub key: String,
    /// When the relay first saw it (unix ms).
    pub seen_ms: u64,
    /// The credential's label (laptop name), if any.
    pub label: Option<String>,
}

/// The tab's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Certificates {
    /// Certified keys: users by name, then hosts.
    pub certs: Vec<CertRow>,
    /// Device keys waiting for certification, oldest first.
    pub pending: Vec<PendingRow>,
    /// Certificates served whose signature does not verify (not listed).
    pub unreadable: usize,
    /// Whether they were checked against this laptop's roots.
    pub checked: bool,
}

/// The rows of `bundle`, each certificate `vouched` for or not (in the bundle's order; `None`:
/// not checked).
pub fn certificates(bundle: &TrustBundle, vouched: Option<&[bool]>) -> Certificates {
    let mut out = Certificates {
        checked: vouched.is_some(),
        ..Certificates::default()
    };
    for (i, cert) in bundle.certs.iter().enumerate() {
        let Ok(body) = cert.open() else {
            out.unreadable += 1;
            continue;
        };
        let vouched = vouched.map(|v| v.get(i).copied().unwrap_or(false));
        let signer = cert.signer().fingerprint();
        match body.subject {
            Subject::User {
                user,
                device_keys,
                host,
                role,
            } => {
                for key in device_keys {
                    out.certs.push(CertRow {
                        holder: user.0.clone(),
                        key: key.fingerprint(),
                        host: host.clone(),
                        kind: CertKind::User(role),
                        not_after_ms: body.not_after_ms,
                        signer: signer.clone(),
                        serial: body.serial.clone(),
                        vouched,
                    });
                }
            }
            Subject::Host { host, host_key } => out.certs.push(CertRow {
                holder: host.0.clone(),
                key: host_key.fingerprint(),
                host: host.0,
                kind: CertKind::Host,
                not_after_ms: body.not_after_ms,
                signer,
                serial: body.serial,
                vouched,
            }),
        }
    }
    out.certs.sort_by(|a, b| {
        let host_cert = |r: &CertRow| r.kind == CertKind::Host;
        (host_cert(a), &a.holder, &a.host, b.kind, &a.key).cmp(&(
            host_cert(b),
            &b.holder,
            &b.host,
            a.kind,
            &b.key,
        ))
    });
    out.pending = bundle
        .pending
        .iter()
        .map(|p| PendingRow {
            user: p.user.0.clone(),
            key: p.key.fingerprint(),
            seen_ms: p.seen_ms,
            label: p.label.clone(),
        })
        .collect();
    out.pending.sort_by_key(|p| p.seen_ms);
    out
}

impl CertRow {
    /// The role, or `host key`.
    pub fn what(&self) -> &'static str {
        match self.kind {
            CertKind::User(role) => role.as_str(),
            CertKind::Host => "host key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::{HostId, UserId};
    use proto::trust::{Cert, CertBody, DeviceKey, PendingDevice, X25519Public};

    fn key(seed: u8) -> DeviceKey {
        DeviceKey::from_seed([seed; 32]).expect("a key")
    }

    fn cert(signer: &DeviceKey, serial: &str, subject: Subject) -> Cert {
        let body = CertBody {
            serial: serial.into(),
            subject,
            not_before_ms: 0,
            not_after_ms: 1_000,
        };
        Cert::sign(&body, signer)
    }

    #[test]
    fn each_certified_key_is_a_row_users_first_forged_ones_counted_not_listed() {
        let root = key(1);
        let (bob_laptop, bob_phone) = (key(2), key(3));
        let bob = cert(
            &root,
            "b1",
            Subject::User {
                user: UserId::from("bob"),
                device_keys: vec![bob_laptop.public(), bob_phone.public()],
                host: "box".into(),
                role: Role::Operator,
            },
        );
        let host = cert(
            &root,
            "h1",
            Subject::Host {
                host: HostId::from("box"),
                host_key: X25519Public([9; 32]),
            },
        );
        let alice = cert(
            &root,
            "a1",
            Subject::User {
                user: UserId::from("alice"),
                device_keys: vec![root.public()],
                host: "*".into(),
                role: Role::Owner,
            },
        );
        let mut forged = alice.clone();
        forged.key = key(7).public();
        let bundle = TrustBundle {
            certs: vec![host, bob, forged, alice],
            pending: vec![PendingDevice {
                user: UserId::from("carol"),
                key: key(4).public(),
                seen_ms: 5,
                label: Some("carol-laptop".into()),
            }],
            ..TrustBundle::default()
        };
        let c = certificates(&bundle, Some(&[false, true, false, true]));
        let rows: Vec<(&str, &str, &str)> = c
            .certs
            .iter()
            .map(|r| (r.holder.as_str(), r.host.as_str(), r.what()))
            .collect();
        assert_eq!(
            rows,
            [
                ("alice", "*", "owner"),
                ("bob", "box", "operator"),
                ("bob", "box", "operator"),
                ("box", "box", "host key"),
            ]
        );
        assert_eq!(c.unreadable, 1, "the forged one");
        let vouched: Vec<Option<bool>> = c.certs.iter().map(|r| r.vouched).collect();
        assert_eq!(vouched, [Some(true), Some(true), Some(true), Some(false)]);
        assert!(c.checked);
        assert!(
            certificates(&bundle, None)
                .certs
                .iter()
                .all(|r| r.vouched.is_none())
        );
        assert!(
            c.certs
                .iter()
                .all(|r| r.signer == root.public().fingerprint())
        );
        let bob_keys: Vec<&str> = c.certs[1..3].iter().map(|r| r.key.as_str()).collect();
        for k in [&bob_laptop, &bob_phone] {
            assert!(bob_keys.contains(&k.public().fingerprint().as_str()));
        }
        assert!(c.certs[3].key.starts_with("x25519:"));
        assert_eq!(c.pending.len(), 1);
        assert_eq!(c.pending[0].key, key(4).public().fingerprint());
    }
}
