//! Owner key rotation: what a host that pins the old root accepts, and what it refuses.

use super::revocation::Revoked;
use super::*;
use crate::ids::{HostId, UserId};
use crate::rbac::Role;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;
const OVERLAP: u64 = 7 * DAY;

fn key(n: u8) -> DeviceKey {
    DeviceKey::from_seed([n; 32]).unwrap()
}

fn root(user: &str, k: &DeviceKey) -> Root {
    Root {
        user: UserId::from(user),
        key: k.public(),
    }
}

fn rotation(old: &DeviceKey, new: &DeviceKey, seq: u64) -> RootRotation {
    RootRotation::sign(
        &RotationBody {
            user: UserId::from("olga"),
            old_key: old.public(),
            new_key: new.public(),
            seq,
            issued_ms: NOW,
        },
        old,
    )
}

fn grant_by(issuer: &DeviceKey, bob: &DeviceKey) -> Cert {
    Cert::sign(
        &CertBody {
            serial: "s1".into(),
            subject: Subject::User {
                user: UserId::from("bob"),
                device_keys: vec![bob.public()],
                host: "*".into(),
                role: Role::Operator,
            },
            not_before_ms: NOW - DAY,
            not_after_ms: NOW + 30 * DAY,
        },
        issuer,
    )
}

fn bobs_role(pins: &RootPins, cert: &Cert, bob: &DeviceKey, at: u64) -> Option<Role> {
    let revoked = Revoked::default();
    let roots = pins.trusted(at);
    Verifier::new(&roots, &revoked)
        .role_of(
            &UserId::from("bob"),
            &bob.public(),
            &HostId::from("box"),
            std::slice::from_ref(cert),
            at,
        )
        .ok()
}

#[test]
fn a_rotation_pins_the_new_root_and_keeps_the_old_one_for_the_overlap() {
    let (old, new, bob) = (key(1), key(3), key(2));
    let mut pins = RootPins::new(vec![root("olga", &old)]);
    let rotated = pins.accept(&rotation(&old, &new, 1), NOW, OVERLAP).unwrap();
    assert_eq!(rotated.new, root("olga", &new));
    assert_eq!(rotated.until_ms, NOW + OVERLAP);
    assert_eq!(pins.active, vec![root("olga", &new)]);
    // A grant the old root signed still counts within the overlap, not after it.
    let by_old = grant_by(&old, &bob);
    assert_eq!(
        bobs_role(&pins, &by_old, &bob, NOW + DAY),
        Some(Role::Operator)
    );
    assert_eq!(bobs_role(&pins, &by_old, &bob, NOW + OVERLAP), None);
    // The new root's grants count from now on.
    let by_new = grant_by(&new, &bob);
    assert_eq!(
        bobs_role(&pins, &by_new, &bob, NOW + OVERLAP),
        Some(Role::Operator)
    );
    // Once expired, the old root is retired for good.
    assert!(pins.expire(NOW + DAY).is_empty());
    assert_eq!(pins.expire(NOW + OVERLAP), vec![root("olga", &old)]);
    assert!(pins.retiring.is_empty());
    assert_eq!(pins.retired, vec![root("olga", &old)]);
}

#[test]
fn a_statement_signed_by_anything_but_a_pinned_root_is_refused() {
    let (old, new) = (key(1), key(3));
    let relay_key = key(9);
    let mut pins = RootPins::new(vec![root("olga", &old)]);
    // The relay's own key names a successor for itself.
    let forged = rotation(&relay_key, &new, 5);
    assert!(matches!(
        pins.accept(&forged, NOW, OVERLAP),
        Err(TrustError::NotARoot { .. })
    ));
    // A statement about the pinned root but signed by another key.
    let wrong_signer = RootRotation::sign(
        &RotationBody {
            user: UserId::from("olga"),
            old_key: old.public(),
            new_key: relay_key.public(),
            seq: 5,
            issued_ms: NOW,
        },
        &relay_key,
    );
    assert!(matches!(
        pins.accept(&wrong_signer, NOW, OVERLAP),
        Err(TrustError::Payload(_))
    ));
    // The pinned key, but pinned for another owner.
    let mut other = RootPins::new(vec![root("oscar", &old)]);
    assert!(matches!(
        other.accept(&rotation(&old, &new, 1), NOW, OVERLAP),
        Err(TrustError::NotARoot { .. })
    ));
    assert_eq!(pins, RootPins::new(vec![root("olga", &old)]));
}

#[test]
fn a_root_already_replaced_or_retired_cannot_rotate_again_or_come_back() {
    let (a, b, c) = (key(1), key(3), key(4));
    let mut pins = RootPins::new(vec![root("olga", &a)]);
    pins.accept(&rotation(&a, &b, 1), NOW, OVERLAP).unwrap();
    // Within the overlap, the replaced root names another successor: refused.
    assert!(matches!(
        pins.accept(&rotation(&a, &c, 2), NOW, OVERLAP),
        Err(TrustError::RootRetired { .. })
    ));
    // After the overlap too.
    pins.expire(NOW + OVERLAP);
    assert!(matches!(
        pins.accept(&rotation(&a, &c, 3), NOW + OVERLAP, OVERLAP),
        Err(TrustError::RootRetired { .. })
    ));
    // The current root rotating back to the retired one: refused.
    assert!(matches!(
        pins.accept(&rotation(&b, &a, 4), NOW + OVERLAP, OVERLAP),
        Err(TrustError::RootRetired { .. })
    ));
    assert_eq!(pins.active, vec![root("olga", &b)]);
}

#[test]
fn a_replayed_older_statement_is_refused_by_its_sequence() {
    let (a, b, c, d) = (key(1), key(3), key(4), key(5));
    // Olga pins two device keys as roots (two laptops).
    let mut pins = RootPins::new(vec![root("olga", &a), root("olga", &d)]);
    let first = rotation(&a, &b, 1);
    pins.accept(&first, NOW, OVERLAP).unwrap();
    pins.accept(&rotation(&b, &c, 2), NOW, OVERLAP).unwrap();
    // The relay serves the first statement again.
    assert_eq!(
        pins.accept(&first, NOW, OVERLAP),
        Err(TrustError::RotationReplayed { seq: 1, held: 2 })
    );
    // An older statement from the other laptop's root, still pinned and never used.
    let stale = rotation(&d, &key(6), 2);
    assert_eq!(
        pins.accept(&stale, NOW, OVERLAP),
        Err(TrustError::RotationReplayed { seq: 2, held: 2 })
    );
    assert!(pins.active.contains(&root("olga", &d)));
    assert_eq!(pins.next_seq(&UserId::from("olga"), &[]), 3);
    assert_eq!(
        pins.next_seq(&UserId::from("olga"), &[rotation(&c, &key(7), 8)]),
        9
    );
}

#[test]
fn the_owner_retires_a_replaced_root_early_with_a_current_root_only() {
    let (a, b) = (key(1), key(3));
    let mut pins = RootPins::new(vec![root("olga", &a)]);
    pins.accept(&rotation(&a, &b, 1), NOW, OVERLAP).unwrap();
    // A key that is no current root of olga cannot retire it.
    assert!(!pins.retire(&a.public(), &key(9).public()));
    assert!(!pins.retire(&a.public(), &a.public()));
    assert_eq!(pins.trusted(NOW).len(), 2);
    assert!(pins.retire(&a.public(), &b.public()));
    assert_eq!(pins.trusted(NOW), vec![root("olga", &b)]);
    assert_eq!(pins.retired, vec![root("olga", &a)]);
}

/// The golden vector in docs/protocol.md ("Root rotation statement"): old root seed 32 × 0x01,
/// new root seed 32 × 0x03, owner `olga`, seq 1, issued 1 800 000 000 000.
#[test]
fn rotation_statement_golden_vector() {
    let st = rotation(&key(1), &key(3), 1);
    assert_eq!(
        String::from_utf8(st.payload_bytes().unwrap()).unwrap(),
        format!(
            r#"{{"user":"olga","old_key":"{}","new_key":"{}","seq":1,"issued_ms":1800000000000}}"#,
            key(1).public().to_hex(),
            key(3).public().to_hex()
        )
    );
    assert_eq!(
        key(1).public().to_hex(),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );
    assert_eq!(
        key(3).public().to_hex(),
        "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1"
    );
    assert_eq!(
        hex::encode(st.sig.0),
        "889520318f053c4d2e8a9c0a1b5674f10e85e2937030e9676ffc2fcd5b9102749efbe95ada70643de02e817aa5b3d032375b584251d828fbe6ce3b9cb97d0f0c"
    );
}

proptest! {
    /// Any single bit flipped anywhere in a statement (payload, key or signature) and the host
    /// takes nothing from it.
    #[test]
    fn any_bit_flipped_in_a_rotation_statement_is_refused(byte in 0usize..600, bit in 0u8..8) {
        let (old, new) = (key(1), key(3));
        let st = rotation(&old, &new, 1);
        let mut json = serde_json::to_vec(&st).unwrap();
        let at = byte % json.len();
        json[at] ^= 1 << bit;
        let Ok(flipped) = serde_json::from_slice::<RootRotation>(&json) else {
            return Ok(());
        };
        if flipped == st {
            return Ok(());
        }
        let mut pins = RootPins::new(vec![root("olga", &old)]);
        prop_assert!(pins.accept(&flipped, NOW, OVERLAP).is_err());
        prop_assert_eq!(pins, RootPins::new(vec![root("olga", &old)]));
    }
}
