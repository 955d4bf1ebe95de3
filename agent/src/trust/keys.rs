//! The host's end-to-end key (X25519, the Noise static key operators encrypt to): made at
//! enrollment, its secret kept in the secret store next to the host secret.

use proto::trust::X25519Public;

/// A new end-to-end key's secret (the key pair is derived from it).
///
/// # Errors
/// The OS gives no randomness.
pub fn generate_secret() -> Result<[u8; 32], getrandom::Error> {
    cm_client::time::random32()
}

/// The public half of the end-to-end key with `secret`; `None` while this build has no
/// X25519 (`cm_client::e2e` lands separately), so no claim is sent then.
pub fn public_of(secret: [u8; 32]) -> Option<X25519Public> {
    let _ = secret;
    None
}
