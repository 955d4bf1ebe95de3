//! The channel MAC on a signed header: made by the channel's key holder, over the signature and
//! the exact signed bytes, and nothing a relay changes passes it.

use super::TrustError;
use super::header::{self, nonce_window};
use super::header_mac::{attach_mac, header_mac, read_unverified};
use super::tests::{NOW, StreamHeader, key, signed_header};
use crate::ids::{HostId, UserId};
use crate::opcode::Op;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

const MAC_KEY: [u8; 32] = [0x55; 32];

fn box_host() -> HostId {
    HostId::from("box")
}

fn maced_header() -> StreamHeader {
    let mut h = signed_header(&key(2), [1; 16], NOW);
    attach_mac(&mut h, &MAC_KEY).unwrap();
    h
}

fn check_mac(
    h: &StreamHeader,
    mac_key: &[u8; 32],
) -> Result<(header::CheckedHeader, super::PendingSignature), TrustError> {
    read_unverified(h)?.check_mac(h, &box_host(), NOW + 1_000, mac_key)
}

#[test]
fn a_header_with_its_channel_mac_checks_and_its_signature_verifies_beside() {
    let h = maced_header();
    let unverified = read_unverified(&h).unwrap();
    assert_eq!(unverified.fields.user, UserId::from("bob"));
    assert_eq!(unverified.key, key(2).public());
    let (checked, pending) = check_mac(&h, &MAC_KEY).unwrap();
    assert_eq!(checked.fields.op, Op::Prompt);
    assert_eq!(checked.nonce, [1; 16]);
    assert_eq!(pending.verify(), Ok(()));
    // The nonce is recorded as for a signature-checked header: once.
    let mut nonces = nonce_window();
    header::record_nonce(&checked, NOW, &mut nonces).unwrap();
    assert_eq!(
        header::record_nonce(&checked, NOW, &mut nonces),
        Err(TrustError::Replayed)
    );
}

#[test]
fn another_key_no_mac_or_a_damaged_mac_is_refused() {
    let h = maced_header();
    assert!(matches!(
        check_mac(&h, &[0x56; 32]),
        Err(TrustError::MacMismatch)
    ));
    let mut bare = h.clone();
    bare.mac = None;
    assert!(matches!(read_unverified(&bare), Err(TrustError::NoMac)));
    let mut short = h;
    short.mac = Some("abcd".into());
    assert!(matches!(
        read_unverified(&short),
        Err(TrustError::Payload(_))
    ));
}

#[test]
fn a_relay_that_rewrites_the_fields_payload_or_signature_is_caught() {
    let h = maced_header();
    // The forwarded header's own fields: as with a signature, the field check names them.
    let mut t = h.clone();
    t.workspace = Some("other".into());
    assert!(matches!(
        check_mac(&t, &MAC_KEY),
        Err(TrustError::HeaderMismatch { field: "workspace" })
    ));
    // The signed payload, rewritten to another user.
    let mut t = h.clone();
    let auth = t.auth.as_mut().unwrap();
    let forged = String::from_utf8(auth.payload_bytes().unwrap())
        .unwrap()
        .replace("\"bob\"", "\"olga\"");
    auth.payload = URL_SAFE_NO_PAD.encode(forged);
    assert!(matches!(
        check_mac(&t, &MAC_KEY),
        Err(TrustError::MacMismatch)
    ));
    // The signature swapped for another (valid) one of the same device over other fields.
    let mut t = h;
    let other = signed_header(&key(2), [9; 16], NOW);
    t.auth.as_mut().unwrap().sig = other.auth.unwrap().sig;
    assert!(matches!(
        check_mac(&t, &MAC_KEY),
        Err(TrustError::MacMismatch)
    ));
}

#[test]
fn a_bad_signature_under_a_good_mac_passes_the_mac_and_fails_beside() {
    // Only the channel's other end can make this: the host stops the stream and the channel.
    let mut h = signed_header(&key(2), [1; 16], NOW);
    h.auth.as_mut().unwrap().sig.0[0] ^= 1;
    attach_mac(&mut h, &MAC_KEY).unwrap();
    let (_, pending) = check_mac(&h, &MAC_KEY).unwrap();
    assert!(matches!(
        pending.verify(),
        Err(TrustError::BadSignature { .. })
    ));
}

/// The golden vector in docs/protocol.md ("Signed stream header"): the golden header's MAC under
/// the MAC key 32 × 0x55.
#[test]
fn header_mac_golden_vector() {
    let h = signed_header(&key(2), [0xab; 16], NOW);
    assert_eq!(
        header_mac(&MAC_KEY, h.auth.as_ref().unwrap()),
        "ef3eb89d661f673fe4fd0a629ba53eac37bfdc6caebdc87716f9bc4c2be77c4a"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bit flipped anywhere in the payload, the signature or the MAC: refused before any
    /// work starts (a damaged payload, a MAC mismatch or, when the fields no longer parse, a
    /// payload error).
    #[test]
    fn any_bit_flipped_in_payload_signature_or_mac_is_refused(
        at in 0usize..700,
        bit in 0u8..8,
    ) {
        let mut h = maced_header();
        let auth = h.auth.as_mut().unwrap();
        let payload_len = auth.payload.len();
        let mac = h.mac.clone().unwrap();
        if at < payload_len {
            let mut bytes = auth.payload.clone().into_bytes();
            bytes[at] ^= 1 << bit;
            auth.payload = String::from_utf8_lossy(&bytes).into_owned();
        } else if at < payload_len + 64 {
            auth.sig.0[at - payload_len] ^= 1 << bit;
        } else {
            let mut bytes = mac.into_bytes();
            let i = (at - payload_len - 64) % bytes.len();
            bytes[i] ^= 1 << bit;
            h.mac = Some(String::from_utf8_lossy(&bytes).into_owned());
        }
        prop_assert!(check_mac(&h, &MAC_KEY).is_err());
    }
}
