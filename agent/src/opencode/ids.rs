//! OpenCode-style ids for the user messages the agent sends, so `prompt` can answer with the
//! message id at once (it is needed for per-turn diffs).
//!
//! Format (OpenCode 1.18.33 `Identifier.ascending`, checked against the captured samples):
//! `msg_` + 12 hex digits of the low 48 bits of `unix_ms * 0x1000 + counter` + 14 base62
//! characters. OpenCode orders messages by id, so the time part must be the current time.

use std::sync::Mutex;

/// Random characters after the time part.
const RANDOM_LEN: usize = 14;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The id for `prefix` (`msg`), time `now_ms`, per-millisecond `counter` (from 1) and random
/// bytes.
pub fn format_id(prefix: &str, now_ms: u64, counter: u64, random: [u8; RANDOM_LEN]) -> String {
    let value = now_ms.wrapping_mul(0x1000).wrapping_add(counter) & 0xFFFF_FFFF_FFFF;
    let mut out = format!("{prefix}_{value:012x}");
    out.extend(
        random
            .iter()
            .map(|b| char::from(BASE62[usize::from(*b) % BASE62.len()])),
    );
    out
}

/// Last (millisecond, counter) handed out, so ids made in the same millisecond still ascend.
static LAST: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// A fresh ascending message id (`msg_…`) for now.
pub fn new_message_id() -> String {
    let now = cm_client::time::now_ms();
    let counter = {
        let mut last = LAST
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.0 == now {
            last.1 += 1;
        } else {
            *last = (now, 1);
        }
        last.1
    };
    let mut random = [0u8; RANDOM_LEN];
    // Uniqueness rests on the time part and counter; random bytes only separate agents.
    let _ = getrandom::fill(&mut random);
    format_id("msg", now, counter, random)
}

/// Whether `id` looks like an OpenCode id with `prefix` (`ses`, `msg`, `per`, `que`): safe to
/// put in a URL path.
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| {
            !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_captured_sample() {
        // msg_2141a047a001oLEJozsGkhCQsh was created at 1795633579130 (its time.created).
        let id = format_id("msg", 1_795_633_579_130, 1, [0; RANDOM_LEN]);
        assert_eq!(&id[..16], "msg_2141a047a001");
        assert_eq!(id.len(), "msg_2141a047a001oLEJozsGkhCQsh".len());
        assert!(is_id(&id, "msg"));
    }

    #[test]
    fn ids_ascend_within_a_millisecond() {
        let a = new_message_id();
        let b = new_message_id();
        assert!(a[..16] < b[..16], "{a} {b}");
        assert!(is_id(&a, "msg"));
    }

    #[test]
    fn only_plain_ids_are_accepted() {
        assert!(is_id("ses_debe5fba6ffeqG9YievfadTPxh", "ses"));
        assert!(!is_id("ses_../global/dispose", "ses"));
        assert!(!is_id("ses_", "ses"));
        assert!(!is_id("msg_abc", "ses"));
        assert!(!is_id("ses_a b", "ses"));
    }
}
