//! The host's end-to-end key (X25519, the Noise static key operators encrypt to): made at
//! enrollment, its secret kept in the secret store next to the host secret.

use cm_client::e2e::HostKeyPair;
use proto::trust::X25519Public;

/// A new end-to-end key's secret (the key pair is derived from it).
///
/// # Errors
/// The OS gives no randomness.
pub fn generate_secret() -> Result<[u8; 32], cm_client::e2e::E2eError> {
    HostKeyPair::generate().map(|k| k.secret())
}

/// The public half of the end-to-end key with `secret`.
pub fn public_of(secret: [u8; 32]) -> X25519Public {
    X25519Public(HostKeyPair::from_secret(secret).public())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_the_e2e_key_pairs_and_secrets_differ() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert_eq!(public_of(a).0, HostKeyPair::from_secret(a).public());
        assert_ne!(public_of(a), public_of(b));
    }
}
