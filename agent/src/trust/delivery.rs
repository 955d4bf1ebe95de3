//! Revocation lists the relay delivered (`Control::Revocations`): taken into the host's
//! [`HostTrust`] and, when something new was taken, written to `revocations.json` so a restart
//! keeps them.

use super::HostTrust;
use super::store::{StoreError, save_revocations};
use proto::trust::RevocationList;
use std::path::Path;

/// What a delivery changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Lists newer than the ones held.
    pub taken: usize,
    /// Age of the newest owner-signed list held, in ms (`None`: none yet).
    pub newest_age_ms: Option<u64>,
}

/// Takes `lists` into `trust`; persists the held lists to `<state_dir>/revocations.json` when
/// one was new.
///
/// # Errors
/// The file cannot be written (the lists are held in memory all the same).
pub fn take_delivered(
    trust: &HostTrust,
    lists: &[RevocationList],
    state_dir: &Path,
    now_ms: u64,
) -> Result<Delivered, StoreError> {
    let taken = trust.accept_revocations(lists, now_ms);
    let newest_age_ms = trust
        .newest_list_ms()
        .map(|issued| now_ms.saturating_sub(issued));
    if taken > 0 {
        save_revocations(state_dir, &trust.revocation_lists())?;
    }
    Ok(Delivered {
        taken,
        newest_age_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::super::store::{load_revocations, revocations_path};
    use super::*;
    use proto::ids::HostId;
    use proto::trust::{DeviceKey, RevocationBody, Root, Signed};

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
        let out = take_delivered(&trust, &[list(&owner, 2, 1_000)], tmp.path(), 4_000).unwrap();
        assert_eq!(
            out,
            Delivered {
                taken: 1,
                newest_age_ms: Some(3_000)
            }
        );
        assert_eq!(load_revocations(tmp.path()).unwrap().len(), 1);
        std::fs::remove_file(revocations_path(tmp.path())).unwrap();
        // The same or an older list again: nothing new, the file is not rewritten.
        let out = take_delivered(&trust, &[list(&owner, 1, 2_000)], tmp.path(), 4_000).unwrap();
        assert_eq!(out.taken, 0);
        assert!(!revocations_path(tmp.path()).exists());
    }

    #[test]
    fn a_list_signed_by_a_stranger_is_neither_taken_nor_persisted() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = DeviceKey::from_seed([5; 32]).unwrap();
        let stranger = DeviceKey::from_seed([6; 32]).unwrap();
        let trust = trust(&owner);
        let out = take_delivered(&trust, &[list(&stranger, 9, 1_000)], tmp.path(), 2_000).unwrap();
        assert_eq!(
            out,
            Delivered {
                taken: 0,
                newest_age_ms: None
            }
        );
        assert!(!revocations_path(tmp.path()).exists());
        assert!(trust.check_fresh(2_000).is_err());
    }
}
