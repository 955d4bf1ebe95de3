//! The wall clock, read in one place so the sans-IO core can be handed `now_ms`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// 32 random bytes from the operating system.
///
/// # Errors
/// Fails only if the OS random source is unavailable.
pub fn random32() -> Result<[u8; 32], getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(b)
}

/// A random u64 (for jitter and ids).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Jitter and ids degrade gracefully to a fixed value if the OS source fails.
    let _ = getrandom::fill(&mut b);
    u64::from_le_bytes(b)
}
