//! Password rules shared by login (the network) and administration (the CLI and the relay's
//! admin operations): the shortest password accepted and its argon2id hash.

use argon2::password_hash::PasswordHasher;

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Whether `password` is long enough to be set.
#[must_use]
pub fn long_enough(password: &str) -> bool {
    password.chars().count() >= MIN_PASSWORD_LEN
}

/// Hashes a password with argon2id (slow on purpose: call it off the async threads).
///
/// # Errors
/// argon2 refused the input (the message says why).
pub fn hash_password(password: &str) -> Result<String, String> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}
