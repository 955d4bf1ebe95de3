//! Tampering (property tests): flipping any bit of any field of H1 or H2 makes its MAC fail.

use super::*;

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
