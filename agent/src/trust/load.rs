//! At start: a host with a `trust.json` is zero-trust. Its [`HostTrust`] is built from the
//! pinned roots, the end-to-end key's secret (secret store) and the revocation lists held in
//! `revocations.json` (checked again, as if the relay had just delivered them).

use super::HostTrust;
use super::store::{StoreError, TrustFile, load_revocations};
use crate::config::TrustLimits;
use crate::secret_names as enroll;
use cm_client::secrets::{SecretError, SecretStore};
use proto::ids::HostId;
use std::path::{Path, PathBuf};

/// Why a zero-trust host cannot start. None of these falls back to relay-trusted.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `trust.json` or `revocations.json` is unreadable or damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The end-to-end key's secret is missing or damaged.
    #[error(
        "{file} makes host {host} zero-trust, but {store} holds no end-to-end key for it; re-enroll with a token from `cm-tui admin host add {host}` (or `cm-agent trust reset --yes`, which makes the host relay-trusted)"
    )]
    NoKey {
        /// This host.
        host: HostId,
        /// `trust.json`.
        file: PathBuf,
        /// Where the key was looked for.
        store: String,
    },
    /// `trust.json` was written for another host id than the configuration's.
    #[error(
        "{file} pins roots for host {pinned}, but the configuration says host {configured}; re-enroll this host (`cm-agent enroll <token>`)"
    )]
    OtherHost {
        /// `trust.json`.
        file: PathBuf,
        /// The host in `trust.json`.
        pinned: HostId,
        /// The host in the configuration.
        configured: HostId,
    },
}

/// The host's trust, or `None` when it is relay-trusted (no `trust.json`). `relays` are the
/// configured relay strings (the secret-store accounts to look under).
///
/// # Errors
/// See [`LoadError`]: a zero-trust host whose pins or key cannot be read does not start.
pub fn load(
    state_dir: &Path,
    host: &HostId,
    store: &SecretStore,
    relays: &[String],
    limits: TrustLimits,
    now_ms: u64,
) -> Result<Option<HostTrust>, LoadError> {
    let Some(file) = TrustFile::load(state_dir)? else {
        return Ok(None);
    };
    let path = super::store::trust_path(state_dir);
    if file.host != *host {
        return Err(LoadError::OtherHost {
            file: path,
            pinned: file.host,
            configured: host.clone(),
        });
    }
    let accounts: Vec<String> = std::iter::once(file.relay.clone())
        .chain(relays.iter().cloned())
        .collect();
    let Some(secret) = enroll::load_e2e_secret_any(store, host, &accounts)? else {
        return Err(LoadError::NoKey {
            host: host.clone(),
            file: path,
            store: store.describe(),
        });
    };
    let pins = file.pins();
    let trust = HostTrust::new(
        host.clone(),
        file.roots,
        secret,
        limits.revocation_max_age_ms,
    )
    .with_bind(file.bind)
    .with_pins(pins, limits.root_overlap_ms);
    let held = load_revocations(state_dir)?;
    trust.record_certs(&held.certs, now_ms);
    let taken = trust.restore_revocations(&held.lists);
    tracing::info!(
        roots = trust.roots(now_ms).len(),
        retiring_roots = trust.pins().retiring.len(),
        revocation_lists = taken,
        "zero-trust host: operators' signatures and certificates are checked here"
    );
    Ok(Some(trust))
}

#[cfg(test)]
mod tests {
    use super::super::store::{TrustMode, save_revocations};
    use super::*;
    use cm_client::secrets::StoreChoice;
    use proto::handshake::Bytes32;
    use proto::trust::{DeviceKey, RevocationBody, Root, Signed};

    const HOUR: u64 = 3_600_000;

    fn limits(max_age_ms: u64) -> TrustLimits {
        TrustLimits {
            revocation_max_age_ms: max_age_ms,
            ..TrustLimits::default()
        }
    }

    fn setup(dir: &Path, owner: &DeviceKey) -> SecretStore {
        TrustFile {
            version: 1,
            mode: TrustMode::ZeroTrust,
            host: HostId::from("box"),
            relay: "r:1".into(),
            roots: vec![Root {
                user: "olivia".into(),
                key: owner.public(),
            }],
            bind: Some(Bytes32([8; 32])),
            enrolled_ms: 0,
            rotations: Default::default(),
        }
        .save(dir)
        .unwrap();
        enroll::open_secrets(StoreChoice::File, dir).unwrap().0
    }

    #[test]
    fn a_host_without_trust_file_loads_as_relay_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let store = enroll::open_secrets(StoreChoice::File, tmp.path())
            .unwrap()
            .0;
        let host = HostId::from("box");
        let got = load(tmp.path(), &host, &store, &[], limits(HOUR), 0).unwrap();
        assert!(got.is_none());
    }

    #[test]
    fn a_zero_trust_host_loads_its_key_bind_and_persisted_revocations() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([2; 32]).unwrap();
        let store = setup(tmp.path(), &owner);
        let host = HostId::from("box");
        store
            .set(
                enroll::SECRET_SERVICE,
                &enroll::e2e_account(&host, "r:1"),
                &hex::encode([5u8; 32]),
            )
            .unwrap();
        let list = Signed::sign(
            &RevocationBody {
                issuer_user: "olivia".into(),
                seq: 1,
                issued_ms: 9 * HOUR,
                serials: Vec::new(),
                keys: Vec::new(),
            },
            &owner,
        );
        save_revocations(tmp.path(), &[list], &[]).unwrap();
        let trust = load(tmp.path(), &host, &store, &[], limits(2 * HOUR), 10 * HOUR)
            .unwrap()
            .unwrap();
        assert_eq!(trust.host_secret(), [5; 32]);
        assert_eq!(trust.roots(10 * HOUR)[0].key, owner.public());
        assert_eq!(trust.max_age_ms(), 2 * HOUR);
        // The persisted list was taken again: the host may work without waiting for the relay.
        assert_eq!(trust.check_fresh(10 * HOUR), Ok(()));
        assert_eq!(trust.revocation_lists().len(), 1);
    }

    #[test]
    fn a_zero_trust_host_without_its_key_or_for_another_host_does_not_start() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([2; 32]).unwrap();
        let store = setup(tmp.path(), &owner);
        let host = HostId::from("box");
        let err = load(tmp.path(), &host, &store, &["r:2".into()], limits(HOUR), 0).unwrap_err();
        assert!(matches!(err, LoadError::NoKey { .. }), "{err}");
        assert!(
            err.to_string().contains("cm-tui admin host add box"),
            "{err}"
        );
        let other = HostId::from("other");
        let err = load(tmp.path(), &other, &store, &[], limits(HOUR), 0).unwrap_err();
        assert!(matches!(err, LoadError::OtherHost { .. }), "{err}");
    }

    #[test]
    fn an_admins_persisted_list_is_taken_again_at_start_with_the_admins_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([2; 32]).unwrap();
        let admin = DeviceKey::from_seed([3; 32]).unwrap();
        let store = setup(tmp.path(), &owner);
        let host = HostId::from("box");
        store
            .set(
                enroll::SECRET_SERVICE,
                &enroll::e2e_account(&host, "r:1"),
                &hex::encode([5u8; 32]),
            )
            .unwrap();
        let admin_cert = Signed::sign(
            &proto::trust::CertBody {
                serial: "0a".into(),
                subject: proto::trust::Subject::User {
                    user: "adam".into(),
                    device_keys: vec![admin.public()],
                    host: "*".into(),
                    role: proto::rbac::Role::Admin,
                },
                not_before_ms: 0,
                not_after_ms: 100 * HOUR,
            },
            &owner,
        );
        let admin_list = Signed::sign(
            &RevocationBody {
                issuer_user: "adam".into(),
                seq: 1,
                issued_ms: HOUR,
                serials: vec!["dead".into()],
                keys: Vec::new(),
            },
            &admin,
        );
        save_revocations(tmp.path(), &[admin_list], &[admin_cert]).unwrap();
        let trust = load(tmp.path(), &host, &store, &[], limits(HOUR), 2 * HOUR)
            .unwrap()
            .unwrap();
        assert_eq!(trust.revocation_lists().len(), 1);
    }
}
