//! Handshake tests: golden vectors, round trips, tamper properties, every refusal path, clock
//! skew edges, the generic public error, and replay-window hygiene.

use super::*;
use crate::replay::DEFAULT_REPLAY_CAPACITY;
use crate::wire_error::ErrorCode;
use proptest::prelude::*;
use rstest::rstest;

mod refusals;
mod tamper;

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
