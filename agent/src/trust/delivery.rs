//! Revocation lists and owners' root rotations the relay delivered (`Control::Revocations`):
//! taken into the host's [`HostTrust`] (rotations first: a list the new root signed counts
//! only once that root is pinned) and, when something new was taken, written to disk so a
//! restart keeps them: the pins to `trust.json`, the lists to `revocations.json`.

use super::HostTrust;
use super::store::{StoreError, save_pins, save_revocations};
use proto::trust::{RevocationList, RootRotation};
use std::path::Path;

/// What a delivery changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Lists newer than the ones held.
    pub taken: usize,
    /// Root rotations taken.
    pub rotated: usize,
    /// Age of the newest owner-signed list held, in ms (`None`: none yet).
    pub newest_age_ms: Option<u64>,
}

/// Takes `rotations`, then `lists` into `trust`; persists the pins to `trust.json` when they
/// changed (a rotation taken, a replaced root retired) and the held lists to
/// `revocations.json` when one was new, each file replaced atomically.
///
/// # Errors
/// A file cannot be written (what was taken is held in memory all the same).
pub fn take_delivered(
    trust: &HostTrust,
    rotations: &[RootRotation],
    lists: &[RevocationList],
    state_dir: &Path,
    now_ms: u64,
) -> Result<Delivered, StoreError> {
    let rotated = trust.accept_rotations(rotations, now_ms).len();
    let taken = trust.accept_revocations(lists, now_ms);
    let retired = trust.retire_roots(now_ms);
    if retired.changed || rotated > 0 {
        save_pins(state_dir, &trust.pins())?;
    }
    // Logged once saved: what the log says, `trust show` and a restart say too.
    for key in &retired.early {
        tracing::info!(
            target: "cm_agent::audit",
            root = %key.fingerprint(),
            "replaced owner root retired by its owner before its overlap ended"
        );
    }
    let newest_age_ms = trust
        .newest_list_ms(now_ms)
        .map(|issued| now_ms.saturating_sub(issued));
    if taken > 0 {
        save_revocations(state_dir, &trust.revocation_lists(), &trust.seen_certs())?;
    }
    Ok(Delivered {
        taken,
        rotated,
        newest_age_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::super::store::{load_revocations, revocations_path};
    use super::*;
    use proto::ids::HostId;
    use proto::trust::{DeviceKey, RevocationBody, Root, RootRotation, Signed};

    fn list(key: &DeviceKey, seq: u64, issued_ms: u64) -> RevocationList {
        Signed::sign(
            &RevocationBody {
                issuer_user: "owner".into(),
                seq,
                issued_ms,
                serials: Vec::new(),
                keys: Vec::new(),
            },
            key,
        )
    }

    fn trust(owner: &DeviceKey) -> HostTrust {
        let roots = vec![Root {
            user: "owner".into(),
            key: owner.public(),
        }];
        HostTrust::new(HostId::from("box"), roots, [1; 32], 60_000)
    }

    #[test]
    fn a_new_owner_list_is_taken_and_persisted_an_old_one_is_not_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([5; 32]).unwrap();
        let trust = trust(&owner);
        let out =
            take_delivered(&trust, &[], &[list(&owner, 2, 1_000)], tmp.path(), 4_000).unwrap();
        assert_eq!(
            out,
            Delivered {
                taken: 1,
                rotated: 0,
                newest_age_ms: Some(3_000)
            }
        );
        assert_eq!(load_revocations(tmp.path()).unwrap().lists.len(), 1);
        std::fs::remove_file(revocations_path(tmp.path())).unwrap();
        // The same or an older list again: nothing new, the file is not rewritten.
        let out =
            take_delivered(&trust, &[], &[list(&owner, 1, 2_000)], tmp.path(), 4_000).unwrap();
        assert_eq!(out.taken, 0);
        assert!(!revocations_path(tmp.path()).exists());
    }

    #[test]
    fn a_list_signed_by_a_stranger_is_neither_taken_nor_persisted() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([5; 32]).unwrap();
        let stranger = DeviceKey::from_seed([6; 32]).unwrap();
        let trust = trust(&owner);
        let out =
            take_delivered(&trust, &[], &[list(&stranger, 9, 1_000)], tmp.path(), 2_000).unwrap();
        assert_eq!(
            out,
            Delivered {
                taken: 0,
                rotated: 0,
                newest_age_ms: None
            }
        );
        assert!(!revocations_path(tmp.path()).exists());
        assert!(trust.check_fresh(2_000).is_err());
    }

    fn rotation(old: &DeviceKey, new: &DeviceKey, seq: u64) -> RootRotation {
        Signed::sign(
            &proto::trust::RotationBody {
                user: "owner".into(),
                old_key: old.public(),
                new_key: new.public(),
                seq,
                issued_ms: 1_000,
            },
            old,
        )
    }

    fn enrolled(dir: &Path, owner: &DeviceKey) {
        super::super::store::TrustFile {
            version: 1,
            mode: super::super::store::TrustMode::ZeroTrust,
            host: HostId::from("box"),
            relay: "r:1".into(),
            roots: vec![Root {
                user: "owner".into(),
                key: owner.public(),
            }],
            bind: None,
            enrolled_ms: 0,
            rotations: Default::default(),
        }
        .save(dir)
        .unwrap();
    }

    #[test]
    fn a_rotation_pins_the_new_root_before_its_list_and_is_written_to_trust_json() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (
            DeviceKey::from_seed([5; 32]).unwrap(),
            DeviceKey::from_seed([7; 32]).unwrap(),
        );
        enrolled(tmp.path(), &old);
        let trust = trust(&old);
        // The new root's list comes in the same delivery: taken once the rotation is.
        let out = take_delivered(
            &trust,
            &[rotation(&old, &new, 1)],
            &[list(&new, 3, 1_000)],
            tmp.path(),
            2_000,
        )
        .unwrap();
        assert_eq!((out.rotated, out.taken), (1, 1));
        let keys: Vec<_> = trust.roots(2_000).iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![new.public(), old.public()]);
        let file = super::super::store::TrustFile::load(tmp.path())
            .unwrap()
            .unwrap();
        assert_eq!(file.pins(), trust.pins());
        assert_eq!(file.roots[0].key, new.public());
        assert_eq!(file.rotations.retiring[0].root.key, old.public());
        // Delivered again (every push carries it): nothing changes, nothing is refused.
        let again = take_delivered(&trust, &[rotation(&old, &new, 1)], &[], tmp.path(), 3_000);
        assert_eq!(again.unwrap().rotated, 0);
    }

    #[test]
    fn a_rotation_signed_by_a_stranger_changes_nothing_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([5; 32]).unwrap();
        let stranger = DeviceKey::from_seed([6; 32]).unwrap();
        enrolled(tmp.path(), &owner);
        let before = std::fs::read(super::super::store::trust_path(tmp.path())).unwrap();
        let trust = trust(&owner);
        let forged = rotation(&stranger, &DeviceKey::from_seed([8; 32]).unwrap(), 9);
        let out = take_delivered(&trust, &[forged], &[], tmp.path(), 2_000).unwrap();
        assert_eq!(out.rotated, 0);
        assert_eq!(trust.roots(2_000).len(), 1);
        let after = std::fs::read(super::super::store::trust_path(tmp.path())).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn the_new_roots_list_naming_the_old_root_retires_it_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (old, new) = (
            DeviceKey::from_seed([5; 32]).unwrap(),
            DeviceKey::from_seed([7; 32]).unwrap(),
        );
        enrolled(tmp.path(), &old);
        let trust = trust(&old);
        let retire = Signed::sign(
            &RevocationBody {
                issuer_user: "owner".into(),
                seq: 4,
                issued_ms: 1_500,
                serials: Vec::new(),
                keys: vec![old.public()],
            },
            &new,
        );
        take_delivered(
            &trust,
            &[rotation(&old, &new, 1)],
            &[retire],
            tmp.path(),
            2_000,
        )
        .unwrap();
        assert_eq!(
            trust.roots(2_000),
            vec![Root {
                user: "owner".into(),
                key: new.public()
            }]
        );
        let file = super::super::store::TrustFile::load(tmp.path())
            .unwrap()
            .unwrap();
        assert_eq!(file.rotations.retired[0].key, old.public());
    }
}
