//! The role cache as [`super::HostTrust`] uses it: a role worked out once is reused, and never
//! past what it depended on (a revocation list taken, a certificate's expiry, a root's
//! rotation or retirement, other certificates). Also what a host keeps for admins' lists: the
//! certificates operators showed that count here, and the lists it took.

use super::HostTrust;
use super::role_cache::CAPACITY;
use proto::ids::{HostId, UserId};
use proto::rbac::Role;
use proto::trust::{
    Cert, CertBody, DeviceKey, RevocationBody, RevocationList, Root, RootRotation, RotationBody,
    Signed, Subject, TrustError,
};

const NOW: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

fn user() -> UserId {
    UserId::from("bob")
}

fn grant(
    issuer: &DeviceKey,
    serial: &str,
    who: &str,
    keys: &[&DeviceKey],
    role: Role,
    not_after_ms: u64,
) -> Cert {
    Signed::sign(
        &CertBody {
            serial: serial.into(),
            subject: Subject::User {
                user: UserId::from(who),
                device_keys: keys.iter().map(|k| k.public()).collect(),
                host: "box".into(),
                role,
            },
            not_before_ms: NOW - HOUR,
            not_after_ms,
        },
        issuer,
    )
}

fn list(signer: &DeviceKey, seq: u64, serials: &[&str], keys: &[&DeviceKey]) -> RevocationList {
    Signed::sign(
        &RevocationBody {
            issuer_user: "owner".into(),
            seq,
            issued_ms: NOW,
            serials: serials.iter().map(|s| (*s).to_owned()).collect(),
            keys: keys.iter().map(|k| k.public()).collect(),
        },
        signer,
    )
}

fn trust(owner: &DeviceKey) -> HostTrust {
    let roots = vec![Root {
        user: "owner".into(),
        key: owner.public(),
    }];
    HostTrust::new(HostId::from("box"), roots, [1; 32], HOUR)
}

fn cached(trust: &HostTrust) -> usize {
    trust.state.lock().roles.len()
}

#[test]
fn a_role_is_worked_out_once_and_reused_for_the_same_certificates() {
    let (owner, bob) = (key(1), key(2));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    assert_eq!(cached(&trust), 0);
    assert_eq!(
        trust.role_of(&user(), &bob.public(), &certs, NOW),
        Ok(Role::Operator)
    );
    assert_eq!(cached(&trust), 1);
    assert_eq!(
        trust.role_of(&user(), &bob.public(), &certs, NOW + 1),
        Ok(Role::Operator)
    );
    assert_eq!(cached(&trust), 1);
}

#[test]
fn a_cached_grant_is_refused_once_a_list_revoking_it_is_taken() {
    let (owner, bob) = (key(1), key(2));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    assert_eq!(
        trust.accept_revocations(&[list(&owner, 1, &[], &[])], NOW),
        1
    );
    assert_eq!(cached(&trust), 0, "a new list empties the cache");
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    // The grant's serial revoked.
    assert_eq!(
        trust.accept_revocations(&[list(&owner, 2, &["g1"], &[])], NOW),
        1
    );
    assert!(matches!(
        trust.role_of(&user(), &bob.public(), &certs, NOW),
        Err(TrustError::NoGrant { .. })
    ));
}

#[test]
fn a_cached_device_key_is_refused_once_a_list_revoking_the_key_is_taken() {
    let (owner, bob) = (key(1), key(2));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    assert_eq!(
        trust.accept_revocations(&[list(&owner, 1, &[], &[&bob])], NOW),
        1
    );
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_err());
}

#[test]
fn a_cached_grant_by_an_admin_is_refused_once_the_admins_certificate_is_revoked() {
    let (owner, admin, bob) = (key(1), key(3), key(2));
    let trust = trust(&owner);
    let certs = [
        grant(&owner, "a1", "alice", &[&admin], Role::Admin, NOW + HOUR),
        grant(&admin, "g1", "bob", &[&bob], Role::Operator, NOW + HOUR),
    ];
    assert_eq!(
        trust.role_of(&user(), &bob.public(), &certs, NOW),
        Ok(Role::Operator)
    );
    trust.accept_revocations(&[list(&owner, 1, &["a1"], &[])], NOW);
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_err());
}

#[test]
fn a_cached_grant_is_refused_from_the_instant_it_expires() {
    let (owner, admin, bob) = (key(1), key(3), key(2));
    let trust = trust(&owner);
    let direct = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + 10,
    )];
    assert!(trust.role_of(&user(), &bob.public(), &direct, NOW).is_ok());
    assert!(
        trust
            .role_of(&user(), &bob.public(), &direct, NOW + 9)
            .is_ok()
    );
    assert!(
        trust
            .role_of(&user(), &bob.public(), &direct, NOW + 10)
            .is_err()
    );
    // The admin's certificate expiring ends the grant it signed too.
    let chained = [
        grant(&owner, "a1", "alice", &[&admin], Role::Admin, NOW + 20),
        grant(&admin, "g2", "bob", &[&bob], Role::Operator, NOW + HOUR),
    ];
    assert!(trust.role_of(&user(), &bob.public(), &chained, NOW).is_ok());
    assert!(
        trust
            .role_of(&user(), &bob.public(), &chained, NOW + 20)
            .is_err()
    );
}

#[test]
fn a_clock_that_went_back_works_the_role_out_again() {
    let (owner, bob) = (key(1), key(2));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    // Before the grant's not_before: not from the cache.
    assert!(
        trust
            .role_of(&user(), &bob.public(), &certs, NOW - 2 * HOUR)
            .is_err()
    );
}

#[test]
fn other_certificates_or_another_key_are_not_served_from_the_cache() {
    let (owner, bob, mallory) = (key(1), key(2), key(4));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    // The same grant with one signature bit flipped.
    let mut forged = certs.clone();
    forged[0].sig.0[0] ^= 1;
    assert!(trust.role_of(&user(), &bob.public(), &forged, NOW).is_err());
    // Another device key, or another user, with the genuine certificates.
    assert!(
        trust
            .role_of(&user(), &mallory.public(), &certs, NOW)
            .is_err()
    );
    assert!(
        trust
            .role_of(&UserId::from("eve"), &bob.public(), &certs, NOW)
            .is_err()
    );
    // A grant by a stranger, shown next to nothing else.
    let stranger = [grant(
        &mallory,
        "g9",
        "bob",
        &[&bob],
        Role::Owner,
        NOW + HOUR,
    )];
    assert!(
        trust
            .role_of(&user(), &bob.public(), &stranger, NOW)
            .is_err()
    );
}

fn rotation(old: &DeviceKey, new: &DeviceKey) -> RootRotation {
    Signed::sign(
        &RotationBody {
            user: "owner".into(),
            old_key: old.public(),
            new_key: new.public(),
            seq: 1,
            issued_ms: NOW,
        },
        old,
    )
}

#[test]
fn a_grant_by_a_replaced_root_ends_with_its_overlap_or_its_retirement() {
    let (old, new, bob) = (key(1), key(5), key(2));
    let certs = [grant(
        &old,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + 10_000 * HOUR,
    )];
    let trust = trust(&old);
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    assert_eq!(
        trust.accept_rotations(&[rotation(&old, &new)], NOW).len(),
        1
    );
    assert_eq!(cached(&trust), 0, "a rotation empties the cache");
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    let overlap_end = trust.pins().retiring[0].until_ms;
    assert!(
        trust
            .role_of(&user(), &bob.public(), &certs, overlap_end - 1)
            .is_ok()
    );
    assert!(
        trust
            .role_of(&user(), &bob.public(), &certs, overlap_end)
            .is_err()
    );
    // Retired by the owner before the overlap ends.
    let trust = self::trust(&old);
    trust.accept_rotations(&[rotation(&old, &new)], NOW);
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_ok());
    trust.accept_revocations(&[list(&new, 1, &[], &[&old])], NOW);
    assert_eq!(trust.retire_roots(NOW).early, vec![old.public()]);
    assert!(trust.role_of(&user(), &bob.public(), &certs, NOW).is_err());
}

#[test]
fn the_cache_stays_bounded() {
    let (owner, bob) = (key(1), key(2));
    let trust = trust(&owner);
    let certs = [grant(
        &owner,
        "g1",
        "bob",
        &[&bob],
        Role::Operator,
        NOW + HOUR,
    )];
    for i in 0..=CAPACITY {
        let who = UserId::from(format!("u{i}").as_str());
        let _ = trust.role_of(&who, &bob.public(), &certs, NOW);
    }
    // Refusals are not kept; grants are, up to the bound.
    assert_eq!(cached(&trust), 0);
    let mut state = trust.state.lock();
    for i in 0..=CAPACITY {
        let k = super::role_cache::RoleKey::of(
            &UserId::from(format!("u{i}").as_str()),
            &bob.public(),
            &certs,
        );
        let generation = state.roles.generation();
        state.roles.put(k, Role::Viewer, generation, NOW, NOW + 1);
    }
    assert!(state.roles.len() <= CAPACITY);
}

#[test]
fn certificates_nobody_here_trusts_are_not_kept_and_cannot_push_out_an_admins() {
    let (owner, admin, mallory) = (key(1), key(2), key(3));
    let trust = trust(&owner);
    let admin_cert = grant(&owner, "ad", "ada", &[&admin], Role::Admin, NOW + HOUR);
    trust.record_certs(std::slice::from_ref(&admin_cert), NOW);
    // Thousands of certificates signed by a key no root vouches for, shown at e2e_open.
    let junk: Vec<Cert> = (0..2_000)
        .map(|i| {
            grant(
                &mallory,
                &format!("j{i}"),
                "mallory",
                &[&mallory],
                Role::Owner,
                NOW + HOUR,
            )
        })
        .collect();
    trust.record_certs(&junk, NOW);
    assert_eq!(trust.seen_certs(), vec![admin_cert.clone()]);
    // The admin's list is still taken (its certificate was kept).
    assert_eq!(
        trust.accept_revocations(&[list(&admin, 1, &["x"], &[])], NOW),
        1
    );
    // A grant the admin signed counts, and is kept; one shown again moves to the front.
    let by_admin = grant(&admin, "g1", "bob", &[&key(4)], Role::Viewer, NOW + HOUR);
    trust.record_certs(&[by_admin.clone(), admin_cert.clone()], NOW);
    assert_eq!(trust.seen_certs(), vec![by_admin, admin_cert]);
}

#[test]
fn a_kept_admin_list_is_taken_again_after_a_restart_even_once_the_admins_certificate_ended() {
    let (owner, admin) = (key(1), key(2));
    let first = trust(&owner);
    let admin_cert = grant(&owner, "ad", "ada", &[&admin], Role::Admin, NOW + HOUR);
    first.record_certs(std::slice::from_ref(&admin_cert), NOW);
    let revoking = list(&admin, 1, &["g-bob"], &[]);
    assert_eq!(
        first.accept_revocations(std::slice::from_ref(&revoking), NOW),
        1
    );
    let kept = first.revocation_lists();
    // Restarted after the admin's certificate ended (and without it): the revocation stays.
    let later = NOW + 2 * HOUR;
    let restarted = trust(&owner);
    assert_eq!(restarted.restore_revocations(&kept), 1);
    let bob = key(4);
    let grant_of_bob = grant(
        &owner,
        "g-bob",
        "bob",
        &[&bob],
        Role::Operator,
        later + HOUR,
    );
    assert!(matches!(
        restarted.role_of(&user(), &bob.public(), &[grant_of_bob], later),
        Err(TrustError::NoGrant { .. })
    ));
    // A fresh delivery of the same list from that admin would not be taken now.
    assert_eq!(trust(&owner).accept_revocations(&[revoking], later), 0);
}
