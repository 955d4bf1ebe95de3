//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, ±1 step accepted), as pure
//! functions of the secret and the time. A code is accepted at most once: the caller stores the
//! step of the last accepted code and passes it back.

use hmac::{KeyInit, Mac};

/// Seconds per step.
pub const STEP_S: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted on each side of now (clock drift between phone and relay).
pub const WINDOW: u64 = 1;

/// The code for time step `step` (HOTP of RFC 4226 with the step as counter).
pub fn code_at(secret: &[u8], step: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bin = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    bin % 10u32.pow(digits)
}

/// Checks `code` at `now_ms`. Returns the matching step, which must be greater than
/// `last_used_step` (so a code cannot be replayed), or `None`.
pub fn verify(secret: &[u8], code: &str, now_ms: u64, last_used_step: Option<u64>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now_step = now_ms / 1000 / STEP_S;
    (now_step.saturating_sub(WINDOW)..=now_step + WINDOW)
        .filter(|s| last_used_step.is_none_or(|last| *s > last))
        .find(|s| code_at(secret, *s, DIGITS) == wanted)
}

/// RFC 4648 base32 without padding (the `secret` of an `otpauth://` URI).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The enrollment URI for authenticator apps.
pub fn otpauth_uri(user: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/CodeMantle:{user}?secret={}&issuer=CodeMantle&algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B (8 digits), times in seconds.
        for (t, expected) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(code_at(RFC_KEY, t / STEP_S, 8), expected, "t={t}");
        }
        assert_eq!(code_at(RFC_KEY, 59 / STEP_S, 6), 287_082);
    }

    #[test]
    fn current_and_neighbour_steps_accepted_old_refused_and_no_replay() {
        let now_ms = 1_234_567_890_000;
        let step = now_ms / 1000 / STEP_S;
        let code = |s| format!("{:06}", code_at(RFC_KEY, s, 6));
        assert_eq!(verify(RFC_KEY, &code(step), now_ms, None), Some(step));
        assert_eq!(
            verify(RFC_KEY, &code(step - 1), now_ms, None),
            Some(step - 1)
        );
        assert_eq!(
            verify(RFC_KEY, &code(step + 1), now_ms, None),
            Some(step + 1)
        );
        assert_eq!(
            verify(RFC_KEY, &code(step - 2), now_ms, None),
            None,
            "an old code"
        );
        assert_eq!(
            verify(RFC_KEY, &code(step), now_ms, Some(step)),
            None,
            "replayed"
        );
        assert_eq!(verify(RFC_KEY, "12345", now_ms, None), None);
        assert_eq!(verify(RFC_KEY, "abcdef", now_ms, None), None);
    }

    #[test]
    fn base32_and_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let uri = otpauth_uri("ann", RFC_KEY);
        assert!(
            uri.starts_with(
                "otpauth://totp/CodeMantle:ann?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&"
            ),
            "{uri}"
        );
    }
}
