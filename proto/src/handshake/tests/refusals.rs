//! Every refusal path, clock skew edges, the generic public error, and replay-window hygiene.

use super::*;

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
