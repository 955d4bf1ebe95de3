//! A zero-trust host's side of the control stream (issue #20): after each handshake it claims
//! its end-to-end key (proven with the enrollment's bind secret) so an owner's laptop can
//! certify it, and it takes the revocation lists the relay delivers, keeping them on disk.

use crate::trust::{HostTrust, human_age, take_delivered};
use proto::message::Control;
use proto::trust::{RevocationList, RootRotation};
use std::path::Path;
use std::sync::Arc;

/// The claim to send after a handshake; `None` for a relay-trusted host, or one that cannot
/// prove its key (no bind secret in `trust.json`: logged).
pub(super) fn key_claim(trust: Option<&HostTrust>) -> Option<Control> {
    let trust = trust?;
    match trust.key_claim() {
        Some(claim) => Some(Control::HostKeyClaim { claim }),
        None => {
            tracing::warn!(
                "cannot claim this host's end-to-end key (its enrollment token had no bind secret); operators cannot get a host certificate until it is re-enrolled with a token from `cm-tui admin host add`"
            );
            None
        }
    }
}

/// Takes delivered root rotations and revocation lists (a relay-trusted host ignores them),
/// persisting them when something was new. Blocking file I/O: called on a blocking thread.
pub(super) fn on_revocations(
    trust: Option<&HostTrust>,
    rotations: &[RootRotation],
    lists: &[RevocationList],
    state_dir: &Path,
    now_ms: u64,
) {
    let Some(trust) = trust else {
        tracing::debug!(
            lists = lists.len(),
            "relay-trusted host: ignoring revocation lists"
        );
        return;
    };
    match take_delivered(trust, rotations, lists, state_dir, now_ms) {
        Ok(d) if d.taken > 0 || d.rotated > 0 => tracing::info!(
            taken = d.taken,
            rotated = d.rotated,
            newest_owner_list_age = %d.newest_age_ms.map_or_else(|| "none".to_owned(), human_age),
            "took revocation lists from the relay"
        ),
        Ok(_) => tracing::debug!(lists = lists.len(), "no newer revocation list"),
        Err(e) => tracing::warn!(
            error = %e,
            "took revocation lists but cannot keep them on disk; a restart waits for the relay to deliver them again"
        ),
    }
}

/// [`on_revocations`] off the async threads.
pub(super) async fn take_revocations(
    trust: Option<Arc<HostTrust>>,
    rotations: Vec<RootRotation>,
    lists: Vec<RevocationList>,
    state_dir: std::path::PathBuf,
) {
    let now = cm_client::time::now_ms();
    let done = tokio::task::spawn_blocking(move || {
        on_revocations(trust.as_deref(), &rotations, &lists, &state_dir, now);
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "taking revocation lists failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::handshake::Bytes32;
    use proto::ids::HostId;
    use proto::trust::{DeviceKey, RevocationBody, Root, Signed};

    fn trust(owner: &DeviceKey, bind: Option<Bytes32>) -> HostTrust {
        let roots = vec![Root {
            user: "olivia".into(),
            key: owner.public(),
        }];
        HostTrust::new(HostId::from("box"), roots, [2; 32], 3_600_000).with_bind(bind)
    }

    #[test]
    fn a_relay_trusted_host_claims_nothing_and_ignores_lists() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(key_claim(None), None);
        let owner = DeviceKey::from_seed([1; 32]).unwrap();
        let list = Signed::sign(
            &RevocationBody {
                issuer_user: "olivia".into(),
                seq: 1,
                issued_ms: 5,
                serials: Vec::new(),
                keys: Vec::new(),
            },
            &owner,
        );
        on_revocations(None, &[], std::slice::from_ref(&list), tmp.path(), 10);
        assert!(!crate::trust::revocations_path(tmp.path()).exists());
        // A zero-trust host takes and keeps it.
        let t = trust(&owner, None);
        on_revocations(Some(&t), &[], &[list], tmp.path(), 10);
        assert!(crate::trust::revocations_path(tmp.path()).exists());
        assert_eq!(t.check_fresh(10), Ok(()));
    }

    #[test]
    fn a_zero_trust_host_claims_its_end_to_end_key_proven_with_the_bind_secret() {
        let owner = DeviceKey::from_seed([1; 32]).unwrap();
        let bind = Bytes32([7; 32]);
        let t = trust(&owner, Some(bind));
        let Some(Control::HostKeyClaim { claim }) = key_claim(Some(&t)) else {
            panic!("no claim")
        };
        assert_eq!(claim.host, HostId::from("box"));
        assert_eq!(claim.host_key, crate::trust::public_of([2; 32]));
        assert!(claim.verify(&bind));
        // A relay cannot pass its own key off with the same proof.
        let mut swapped = claim;
        swapped.host_key = proto::trust::X25519Public([9; 32]);
        assert!(!swapped.verify(&bind));
    }

    #[test]
    fn a_zero_trust_host_without_bind_secret_sends_no_claim() {
        let owner = DeviceKey::from_seed([1; 32]).unwrap();
        assert_eq!(key_claim(Some(&trust(&owner, None))), None);
    }
}
