//! Handshake tests: golden vectors, round trips, tamper properties, every refusal path, clock
//! skew edges, the generic public error, and replay-window hygiene.

use super::*;
use crate::replay::DEFAULT_REPLAY_CAPACITY;
use crate::wire_error::ErrorCode;
use proptest::prelude::*;
use rstest::rstest;

const KEY: [u8; 32] = [0x11; 32];
const CRED: &str = "cred-1";
const NONCE_C: [u8; 32] = [0x22; 32];
const TS: u64 = 1_700_000_000_000;
const EXPORTER: [u8; 32] = [0x33; 32];
const CONN: &str = "conn-1";
const NONCE_R: [u8; 32] = [0x44; 32];

/// mac1 for the fixed inputs above. Verified independently of this crate with the Python
/// `blake3` package (1.0.11): `blake3.blake3(h1_input, key=bytes([0x11]) * 32).hexdigest()`,
/// where `h1_input` was assembled by hand from the documented layout.
const GOLDEN_MAC1: &str = "54ef56d697d257f3823b3292ff35959fabec5afa5cdac32a59e2426455485881";
/// mac2 for the fixed inputs above, verified the same way.
const GOLDEN_MAC2: &str = "d9512f52f44c418f20bbc98c7b3ad735059422d470a892d5809c46c569a0daa1";

fn key() -> Key {
    Key::from_bytes(KEY)
}

fn record(kind: PeerKind) -> CredentialRecord {
    CredentialRecord {
        key: key(),
        kind,
        revoked: false,
        expires_at_ms: None,
    }
}

fn window() -> ReplayWindow {
    ReplayWindow::new(DEFAULT_REPLAY_CAPACITY, 2 * MAX_CLOCK_SKEW_MS)
}

fn h1_at(nonce: [u8; 32], ts_ms: u64) -> H1 {
    build_h1(
        &key(),
        PeerKind::Agent,
        CredId::from(CRED),
        nonce,
        ts_ms,
        &EXPORTER,
    )
}

fn good_h1() -> H1 {
    h1_at(NONCE_C, TS)
}

fn good_h2(h1: &H1) -> H2 {
    build_h2(&key(), h1, ConnId::from(CONN), NONCE_R, TS)
}

/// Verifies `h1` at `now` on [`EXPORTER`] with an agent record and a fresh window.
fn verify_fresh(h1: &H1, now_ms: u64) -> Result<(), HandshakeError> {
    verify_h1(
        h1,
        Some(&record(PeerKind::Agent)),
        &EXPORTER,
        now_ms,
        &mut window(),
    )
}

// ---------------------------------------------------------------------------------------------
// Golden vectors
// ---------------------------------------------------------------------------------------------

#[test]
fn golden_h1_mac_input_bytes() {
    let mut expected = Vec::new();
    expected.extend_from_slice(b"cm/h1");
    expected.extend_from_slice(&[0, 0, 0, 1]); // v = 1, u32 big-endian
    expected.push(1); // kind tag: agent
    expected.extend_from_slice(&[0, 6]); // len("cred-1"), u16 big-endian
    expected.extend_from_slice(b"cred-1");
    expected.extend_from_slice(&[0x22; 32]); // nonce_c
    expected.extend_from_slice(&[0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]); // ts_ms u64be
    expected.extend_from_slice(&[0x33; 32]); // exporter
    assert_eq!(expected.len(), 90);

    let input = h1_mac_input(
        crate::PROTOCOL_VERSION,
        PeerKind::Agent,
        &CredId::from(CRED),
        &NONCE_C,
        TS,
        &EXPORTER,
    );
    assert_eq!(input, expected);

    // The operator tag is 2, in the same position.
    let op_input = h1_mac_input(
        1,
        PeerKind::Operator,
        &CredId::from(CRED),
        &NONCE_C,
        TS,
        &EXPORTER,
    );
    let mut op_expected = expected.clone();
    op_expected[9] = 2;
    assert_eq!(op_input, op_expected);
}

#[test]
fn golden_mac1() {
    let h1 = good_h1();
    assert_eq!(h1.v, 1);
    assert_eq!(hex::encode(h1.mac.0), GOLDEN_MAC1);
    // And it is the plain BLAKE3 keyed hash of the documented input.
    let direct = blake3::keyed_hash(
        &KEY,
        &h1_mac_input(
            1,
            PeerKind::Agent,
            &CredId::from(CRED),
            &NONCE_C,
            TS,
            &EXPORTER,
        ),
    );
    assert_eq!(direct.to_hex().as_str(), GOLDEN_MAC1);
}

#[test]
fn golden_h2_mac_input_bytes() {
    let mac1: [u8; 32] = hex::decode(GOLDEN_MAC1).unwrap().try_into().unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(b"cm/h2");
    expected.extend_from_slice(&[0, 0, 0, 1]); // v = 1
    expected.extend_from_slice(&mac1);
    expected.extend_from_slice(&[0, 6]); // len("conn-1")
    expected.extend_from_slice(b"conn-1");
    expected.extend_from_slice(&[0x44; 32]); // nonce_r
    expected.extend_from_slice(&[0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00]); // ts_ms
    assert_eq!(expected.len(), 89);

    let input = h2_mac_input(1, &mac1, &ConnId::from(CONN), &NONCE_R, TS);
    assert_eq!(input, expected);
}

#[test]
fn golden_mac2() {
    let h2 = good_h2(&good_h1());
    assert_eq!(hex::encode(h2.mac.0), GOLDEN_MAC2);
}

#[test]
fn golden_client_hello_h1_json() {
    let hello = ClientHello::H1(good_h1());
    let json = serde_json::to_string(&hello).unwrap();
    let expected = format!(
        concat!(
            r#"{{"type":"h1","v":1,"kind":"agent","cred_id":"cred-1","#,
            r#""nonce":"{nonce}","ts_ms":1700000000000,"mac":"{mac}"}}"#
        ),
        nonce = "22".repeat(32),
        mac = GOLDEN_MAC1,
    );
    assert_eq!(json, expected);
    let back: ClientHello = serde_json::from_str(&json).unwrap();
    assert_eq!(back, hello);
}

#[test]
fn golden_server_hello_h2_json() {
    let hello = ServerHello::H2(good_h2(&good_h1()));
    let json = serde_json::to_string(&hello).unwrap();
    let expected = format!(
        concat!(
            r#"{{"type":"h2","conn_id":"conn-1","nonce":"{nonce}","#,
            r#""ts_ms":1700000000000,"mac":"{mac}"}}"#
        ),
        nonce = "44".repeat(32),
        mac = GOLDEN_MAC2,
    );
    assert_eq!(json, expected);
    let back: ServerHello = serde_json::from_str(&json).unwrap();
    assert_eq!(back, hello);
}

#[test]
fn bytes32_json_rejects_bad_hex() {
    let short = format!("\"{}\"", "22".repeat(31));
    assert!(serde_json::from_str::<Bytes32>(&short).is_err());
    let not_hex = format!("\"{}\"", "zz".repeat(32));
    assert!(serde_json::from_str::<Bytes32>(&not_hex).is_err());
}

#[test]
fn key_debug_is_redacted() {
    let dbg = format!("{:?}", key());
    assert_eq!(dbg, "Key(<redacted>)");
    assert!(!dbg.contains("11"));
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_h1_h2() {
    let h1 = good_h1();
    let mut replay = window();
    verify_h1(
        &h1,
        Some(&record(PeerKind::Agent)),
        &EXPORTER,
        TS,
        &mut replay,
    )
    .unwrap();
    assert_eq!(replay.len(), 1, "an accepted nonce is remembered");
    let h2 = good_h2(&h1);
    verify_h2(&key(), &h1, &h2, TS).unwrap();
}

#[test]
fn round_trip_operator() {
    let h1 = build_h1(
        &key(),
        PeerKind::Operator,
        CredId::from(CRED),
        NONCE_C,
        TS,
        &EXPORTER,
    );
    verify_h1(
        &h1,
        Some(&record(PeerKind::Operator)),
        &EXPORTER,
        TS,
        &mut window(),
    )
    .unwrap();
    verify_h2(&key(), &h1, &good_h2(&h1), TS).unwrap();
}

#[test]
fn longest_cred_id_is_accepted_and_one_more_byte_is_refused() {
    let id = "x".repeat(MAX_ID_LEN);
    let h1 = build_h1(
        &key(),
        PeerKind::Agent,
        CredId::from(id.as_str()),
        NONCE_C,
        TS,
        &EXPORTER,
    );
    assert_eq!(verify_fresh(&h1, TS), Ok(()));

    let id = "x".repeat(MAX_ID_LEN + 1);
    let h1 = build_h1(
        &key(),
        PeerKind::Agent,
        CredId::from(id.as_str()),
        NONCE_C,
        TS,
        &EXPORTER,
    );
    assert_eq!(
        verify_fresh(&h1, TS),
        Err(HandshakeError::CredentialIdTooLong)
    );

    let h1 = good_h1();
    let mut h2 = good_h2(&h1);
    h2.conn_id = ConnId::from("c".repeat(MAX_ID_LEN + 1));
    assert_eq!(
        verify_h2(&key(), &h1, &h2, TS),
        Err(HandshakeError::CredentialIdTooLong)
    );
}

// ---------------------------------------------------------------------------------------------
// Tampering (property tests)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum H1Field {
    V,
    Kind,
    CredId,
    Nonce,
    TsMs,
    Mac,
}

#[derive(Debug, Clone, Copy)]
enum H2Field {
    ConnId,
    Nonce,
    TsMs,
    Mac,
}

fn flip(bytes: &mut [u8], idx: prop::sample::Index, bit: u8) {
    let i = idx.index(bytes.len());
    bytes[i] ^= 1 << bit;
}

/// Flips one bit of a string's bytes. A flip of bit 7 makes invalid UTF-8, which could not
/// arrive in a JSON string as such; it is mapped lossily, which still changes the id.
fn flip_str(s: &str, idx: prop::sample::Index, bit: u8) -> String {
    let mut bytes = s.as_bytes().to_vec();
    flip(&mut bytes, idx, bit);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn h1_field() -> impl Strategy<Value = H1Field> {
    prop_oneof![
        Just(H1Field::V),
        Just(H1Field::Kind),
        Just(H1Field::CredId),
        Just(H1Field::Nonce),
        Just(H1Field::TsMs),
        Just(H1Field::Mac),
    ]
}

fn h2_field() -> impl Strategy<Value = H2Field> {
    prop_oneof![
        Just(H2Field::ConnId),
        Just(H2Field::Nonce),
        Just(H2Field::TsMs),
        Just(H2Field::Mac),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bit_flip_in_h1_is_refused(
        field in h1_field(),
        idx in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let original = good_h1();
        // Sanity: the untouched h1 verifies, so any refusal below is due to the flip.
        prop_assert_eq!(verify_fresh(&original, TS), Ok(()));

        let mut h1 = original.clone();
        match field {
            H1Field::V => {
                let mut b = h1.v.to_be_bytes();
                flip(&mut b, idx, bit);
                h1.v = u32::from_be_bytes(b);
            }
            // The kind is an enum on the wire: any change makes it the other kind.
            H1Field::Kind => {
                h1.kind = match h1.kind {
                    PeerKind::Agent => PeerKind::Operator,
                    PeerKind::Operator => PeerKind::Agent,
                };
            }
            H1Field::CredId => h1.cred_id = CredId::from(flip_str(h1.cred_id.as_str(), idx, bit)),
            H1Field::Nonce => flip(&mut h1.nonce.0, idx, bit),
            H1Field::TsMs => {
                let mut b = h1.ts_ms.to_be_bytes();
                flip(&mut b, idx, bit);
                h1.ts_ms = u64::from_be_bytes(b);
            }
            H1Field::Mac => flip(&mut h1.mac.0, idx, bit),
        }
        prop_assert_ne!(&h1, &original);

        // The relay looks the credential up by the (possibly tampered) id.
        let agent = record(PeerKind::Agent);
        let lookup = (h1.cred_id == original.cred_id).then_some(&agent);
        let res = verify_h1(&h1, lookup, &EXPORTER, TS, &mut window());
        prop_assert!(res.is_err(), "tampered {:?} accepted: {:?}", field, h1);
        let err = res.unwrap_err();
        let expected = match field {
            H1Field::V => matches!(err, HandshakeError::UnsupportedVersion { .. }),
            H1Field::Kind => err == HandshakeError::KindMismatch,
            H1Field::CredId => matches!(
                err,
                HandshakeError::UnknownCredential | HandshakeError::BadMac
            ),
            H1Field::Nonce | H1Field::Mac => err == HandshakeError::BadMac,
            H1Field::TsMs => matches!(
                err,
                HandshakeError::BadMac | HandshakeError::ClockSkew { .. }
            ),
        };
        prop_assert!(expected, "{:?} flip gave unexpected {:?}", field, err);
    }

    /// Same, with a lookup that ignores the id (as if the tampered id named a credential with
    /// the same key): the MAC alone must still catch a changed id.
    #[test]
    fn cred_id_flip_is_caught_by_the_mac(idx in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut h1 = good_h1();
        h1.cred_id = CredId::from(flip_str(CRED, idx, bit));
        prop_assert_eq!(verify_fresh(&h1, TS), Err(HandshakeError::BadMac));
    }

    #[test]
    fn any_bit_flip_in_h2_is_refused(
        field in h2_field(),
        idx in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let h1 = good_h1();
        let original = good_h2(&h1);
        prop_assert_eq!(verify_h2(&key(), &h1, &original, TS), Ok(()));

        let mut h2 = original.clone();
        match field {
            H2Field::ConnId => h2.conn_id = ConnId::from(flip_str(h2.conn_id.as_str(), idx, bit)),
            H2Field::Nonce => flip(&mut h2.nonce.0, idx, bit),
            H2Field::TsMs => {
                let mut b = h2.ts_ms.to_be_bytes();
                flip(&mut b, idx, bit);
                h2.ts_ms = u64::from_be_bytes(b);
            }
            H2Field::Mac => flip(&mut h2.mac.0, idx, bit),
        }
        prop_assert_ne!(&h2, &original);
        let res = verify_h2(&key(), &h1, &h2, TS);
        prop_assert!(res.is_err(), "tampered {:?} accepted: {:?}", field, h2);
        let err = res.unwrap_err();
        let expected = match field {
            H2Field::TsMs => matches!(
                err,
                HandshakeError::BadMac | HandshakeError::ClockSkew { .. }
            ),
            H2Field::ConnId | H2Field::Nonce | H2Field::Mac => err == HandshakeError::BadMac,
        };
        prop_assert!(expected, "{:?} flip gave unexpected {:?}", field, err);
    }

    /// Arbitrary timestamps and clocks (including the u64 extremes) never panic, and an h1 is
    /// accepted exactly when it is within the skew limit.
    #[test]
    fn skew_decision_matches_the_limit(ts in any::<u64>(), now in any::<u64>()) {
        let h1 = h1_at(NONCE_C, ts);
        let res = verify_fresh(&h1, now);
        let within = ts.abs_diff(now) <= MAX_CLOCK_SKEW_MS;
        if within {
            prop_assert_eq!(res, Ok(()));
        } else {
            let is_skew = matches!(res, Err(HandshakeError::ClockSkew { skew_ms })
                if (skew_ms > 0) == (ts > now));
            prop_assert!(is_skew, "ts {} now {}: {:?}", ts, now, res);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Refusal paths
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_key_is_bad_mac() {
    let h1 = good_h1();
    let mut rec = record(PeerKind::Agent);
    rec.key = Key::from_bytes([0x12; 32]);
    assert_eq!(
        verify_h1(&h1, Some(&rec), &EXPORTER, TS, &mut window()),
        Err(HandshakeError::BadMac)
    );
}

#[test]
fn h1_from_another_connection_is_bad_mac() {
    // Captured on a connection whose exporter was EXPORTER, presented on one with another.
    let h1 = good_h1();
    let other_exporter = [0x34; 32];
    assert_eq!(
        verify_h1(
            &h1,
            Some(&record(PeerKind::Agent)),
            &other_exporter,
            TS,
            &mut window()
        ),
        Err(HandshakeError::BadMac)
    );
}

#[test]
fn replayed_h1_is_refused() {
    let h1 = good_h1();
    let rec = record(PeerKind::Agent);
    let mut replay = window();
    assert_eq!(
        verify_h1(&h1, Some(&rec), &EXPORTER, TS, &mut replay),
        Ok(())
    );
    assert_eq!(
        verify_h1(&h1, Some(&rec), &EXPORTER, TS + 1_000, &mut replay),
        Err(HandshakeError::Replay)
    );
    // A fresh nonce from the same credential is fine.
    let h1b = h1_at([0x23; 32], TS + 1_000);
    assert_eq!(
        verify_h1(&h1b, Some(&rec), &EXPORTER, TS + 1_000, &mut replay),
        Ok(())
    );
}

#[test]
fn full_replay_window_fails_closed() {
    let rec = record(PeerKind::Agent);
    let mut replay = ReplayWindow::new(1, 2 * MAX_CLOCK_SKEW_MS);
    assert_eq!(
        verify_h1(&good_h1(), Some(&rec), &EXPORTER, TS, &mut replay),
        Ok(())
    );
    let h1b = h1_at([0x23; 32], TS);
    assert_eq!(
        verify_h1(&h1b, Some(&rec), &EXPORTER, TS, &mut replay),
        Err(HandshakeError::ReplayWindowFull)
    );
}

#[test]
fn unknown_credential() {
    assert_eq!(
        verify_h1(&good_h1(), None, &EXPORTER, TS, &mut window()),
        Err(HandshakeError::UnknownCredential)
    );
}

#[test]
fn kind_mismatch_both_ways() {
    // An agent h1 against an operator credential...
    assert_eq!(
        verify_h1(
            &good_h1(),
            Some(&record(PeerKind::Operator)),
            &EXPORTER,
            TS,
            &mut window()
        ),
        Err(HandshakeError::KindMismatch)
    );
    // ...and an operator h1 against an agent credential.
    let op = build_h1(
        &key(),
        PeerKind::Operator,
        CredId::from(CRED),
        NONCE_C,
        TS,
        &EXPORTER,
    );
    assert_eq!(
        verify_h1(
            &op,
            Some(&record(PeerKind::Agent)),
            &EXPORTER,
            TS,
            &mut window()
        ),
        Err(HandshakeError::KindMismatch)
    );
}

#[test]
fn kind_is_bound_by_the_mac() {
    // An agent's h1 relabelled as operator, checked against an operator record with the same
    // key: the kind check passes, the MAC must not.
    let mut h1 = good_h1();
    h1.kind = PeerKind::Operator;
    assert_eq!(
        verify_h1(
            &h1,
            Some(&record(PeerKind::Operator)),
            &EXPORTER,
            TS,
            &mut window()
        ),
        Err(HandshakeError::BadMac)
    );
}

#[test]
fn revoked_credential() {
    let mut rec = record(PeerKind::Agent);
    rec.revoked = true;
    assert_eq!(
        verify_h1(&good_h1(), Some(&rec), &EXPORTER, TS, &mut window()),
        Err(HandshakeError::Revoked)
    );
}

#[rstest]
#[case::one_ms_before(TS + 1, Ok(()))]
#[case::exactly_at(TS, Err(HandshakeError::Expired))]
#[case::one_ms_after(TS - 1, Err(HandshakeError::Expired))]
#[case::long_after(TS - 86_400_000, Err(HandshakeError::Expired))]
fn expiry_edges(#[case] expires_at_ms: u64, #[case] expected: Result<(), HandshakeError>) {
    let mut rec = record(PeerKind::Agent);
    rec.expires_at_ms = Some(expires_at_ms);
    assert_eq!(
        verify_h1(&good_h1(), Some(&rec), &EXPORTER, TS, &mut window()),
        expected
    );
}

#[test]
fn version_mismatch() {
    // A v2 h1 with a MAC that is valid for v2: the version alone refuses it.
    let v = crate::PROTOCOL_VERSION + 1;
    let cred = CredId::from(CRED);
    let mac = blake3::keyed_hash(
        &KEY,
        &h1_mac_input(v, PeerKind::Agent, &cred, &NONCE_C, TS, &EXPORTER),
    );
    let h1 = H1 {
        v,
        kind: PeerKind::Agent,
        cred_id: cred,
        nonce: Bytes32(NONCE_C),
        ts_ms: TS,
        mac: Bytes32(*mac.as_bytes()),
    };
    assert_eq!(
        verify_fresh(&h1, TS),
        Err(HandshakeError::UnsupportedVersion { got: v })
    );
    // And v = 0 (a downgrade).
    let mut h1 = good_h1();
    h1.v = 0;
    assert_eq!(
        verify_fresh(&h1, TS),
        Err(HandshakeError::UnsupportedVersion { got: 0 })
    );
}

#[test]
fn h2_from_an_impostor_or_another_handshake_is_refused() {
    let h1 = good_h1();
    // An impostor relay without K.
    let impostor = build_h2(
        &Key::from_bytes([0x99; 32]),
        &h1,
        ConnId::from(CONN),
        NONCE_R,
        TS,
    );
    assert_eq!(
        verify_h2(&key(), &h1, &impostor, TS),
        Err(HandshakeError::BadMac)
    );
    // A genuine h2 answering another h1 (another nonce_c) replayed here.
    let other_h1 = h1_at([0x55; 32], TS);
    let stale = good_h2(&other_h1);
    assert_eq!(
        verify_h2(&key(), &h1, &stale, TS),
        Err(HandshakeError::BadMac)
    );
}

#[test]
fn h1_mac_is_never_a_valid_h2_mac() {
    // Domain separation: the client's mac1 copied into an h2 must not verify.
    let h1 = good_h1();
    let mut h2 = good_h2(&h1);
    h2.mac = h1.mac;
    assert_eq!(verify_h2(&key(), &h1, &h2, TS), Err(HandshakeError::BadMac));
}

// ---------------------------------------------------------------------------------------------
// Clock skew edges
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::exact(0, None)]
#[case::ahead_at_limit(30_000, None)]
#[case::behind_at_limit(-30_000, None)]
#[case::ahead_over_limit(30_001, Some(30_001))]
#[case::behind_over_limit(-30_001, Some(-30_001))]
#[case::far_behind(-3_600_000, Some(-3_600_000))]
fn clock_skew_edges(#[case] offset_ms: i64, #[case] refused_skew: Option<i64>) {
    let now = TS;
    let peer_ts = now.checked_add_signed(offset_ms).unwrap();
    let expected = match refused_skew {
        None => Ok(()),
        Some(skew_ms) => Err(HandshakeError::ClockSkew { skew_ms }),
    };

    // h1 side: the relay checks the client's clock.
    let h1 = h1_at(NONCE_C, peer_ts);
    let mut replay = window();
    assert_eq!(
        verify_h1(
            &h1,
            Some(&record(PeerKind::Agent)),
            &EXPORTER,
            now,
            &mut replay
        ),
        expected,
        "h1 at offset {offset_ms}"
    );
    assert_eq!(replay.len(), usize::from(refused_skew.is_none()));

    // h2 side: the client checks the relay's clock.
    let h1 = good_h1();
    let h2 = build_h2(&key(), &h1, ConnId::from(CONN), NONCE_R, peer_ts);
    assert_eq!(
        verify_h2(&key(), &h1, &h2, now),
        expected,
        "h2 at offset {offset_ms}"
    );
}

// ---------------------------------------------------------------------------------------------
// The generic public error
// ---------------------------------------------------------------------------------------------

/// Every variant, with distinctive payloads. The exhaustive match makes a new variant fail to
/// compile here until it is added to the list.
fn all_errors() -> Vec<HandshakeError> {
    let all = vec![
        HandshakeError::UnsupportedVersion { got: 4242 },
        HandshakeError::UnknownCredential,
        HandshakeError::CredentialIdTooLong,
        HandshakeError::KindMismatch,
        HandshakeError::BadMac,
        HandshakeError::Revoked,
        HandshakeError::Expired,
        HandshakeError::ClockSkew { skew_ms: -98_765 },
        HandshakeError::ClockSkew { skew_ms: 98_765 },
        HandshakeError::Replay,
        HandshakeError::ReplayWindowFull,
    ];
    for e in &all {
        match e {
            HandshakeError::UnsupportedVersion { .. }
            | HandshakeError::UnknownCredential
            | HandshakeError::CredentialIdTooLong
            | HandshakeError::KindMismatch
            | HandshakeError::BadMac
            | HandshakeError::Revoked
            | HandshakeError::Expired
            | HandshakeError::ClockSkew { .. }
            | HandshakeError::Replay
            | HandshakeError::ReplayWindowFull => {}
        }
    }
    all
}

#[test]
fn public_error_is_one_generic_error() {
    let generic = WireError::auth_failed();
    assert_eq!(generic.code, ErrorCode::AuthFailed);
    let generic_json = serde_json::to_string(&ServerHello::Error(generic.clone())).unwrap();
    let lower = generic.message.to_lowercase();

    for e in all_errors() {
        let public = e.public_error();
        assert_eq!(public, generic, "{e:?}");
        // Byte-identical on the wire.
        assert_eq!(
            serde_json::to_string(&ServerHello::Error(public.clone())).unwrap(),
            generic_json,
            "{e:?}"
        );
        // Nothing of the precise cause leaks: not its text, not its payload.
        let detail = e.to_string().to_lowercase();
        assert!(!lower.contains(&detail), "{e:?} leaks {detail:?}");
        assert!(
            !public.to_string().to_lowercase().contains(&detail),
            "{e:?}"
        );
    }
    for word in [
        "mac", "nonce", "replay", "version", "kind", "window", "4242", "98765", "98 765",
    ] {
        assert!(!lower.contains(word), "generic message mentions {word:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Replay-window hygiene
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_mac_does_not_consume_the_nonce() {
    let rec = record(PeerKind::Agent);
    let mut replay = window();

    // An unauthenticated peer sends an h1 with the victim's nonce and a garbage MAC.
    let mut forged = good_h1();
    forged.mac = Bytes32([0xaa; 32]);
    assert_eq!(
        verify_h1(&forged, Some(&rec), &EXPORTER, TS, &mut replay),
        Err(HandshakeError::BadMac)
    );
    assert!(replay.is_empty(), "a bad-MAC nonce must not be remembered");

    // The genuine h1 with that nonce still gets in.
    assert_eq!(
        verify_h1(&good_h1(), Some(&rec), &EXPORTER, TS, &mut replay),
        Ok(())
    );
    assert_eq!(replay.len(), 1);
}

#[test]
fn no_refusal_before_the_replay_check_consumes_the_nonce() {
    let good = record(PeerKind::Agent);
    let mut revoked = good.clone();
    revoked.revoked = true;
    let mut expired = good.clone();
    expired.expires_at_ms = Some(TS);
    let skewed = h1_at(NONCE_C, TS + MAX_CLOCK_SKEW_MS + 1);
    let mut too_new = good_h1();
    too_new.v = 9;

    let mut replay = window();
    let refusals: [(&H1, Option<&CredentialRecord>, &[u8; 32]); 7] = [
        (&too_new, Some(&good), &EXPORTER),
        (&good_h1(), None, &EXPORTER),
        (&good_h1(), Some(&record(PeerKind::Operator)), &EXPORTER),
        (&good_h1(), Some(&good), &[0u8; 32]),
        (&good_h1(), Some(&revoked), &EXPORTER),
        (&good_h1(), Some(&expired), &EXPORTER),
        (&skewed, Some(&good), &EXPORTER),
    ];
    for (i, (h1, rec, exporter)) in refusals.into_iter().enumerate() {
        assert!(
            verify_h1(h1, rec, exporter, TS, &mut replay).is_err(),
            "case {i}"
        );
        assert!(replay.is_empty(), "case {i} consumed the nonce");
    }
    assert_eq!(
        verify_h1(&good_h1(), Some(&good), &EXPORTER, TS, &mut replay),
        Ok(())
    );
}
