//! One-shot sealed boxes to a host key (Noise N), for prompts queued at the relay while the host
//! is offline. Anyone can seal to a host; authorship comes from the signed header, whose body
//! hash covers the plaintext.
//!
//! Layout: the Noise N message (`e`, `es`, encrypted payload = the plaintext length as u64 BE:
//! 32 + 8 + 16 bytes), then the plaintext as Noise transport messages of at most 65,535 bytes
//! (nonces 0, 1, …). The authenticated length makes dropping whole trailing chunks fail.

use super::{E2eError, HostKeyPair};
use snow::Builder;

const N_PARAMS: &str = "Noise_N_25519_ChaChaPoly_BLAKE2s";
const N_PROLOGUE: &[u8] = b"codemantle e2e sealed box v1";
const TAG: usize = 16;
const HEAD: usize = 32 + 8 + TAG;
const NOISE_MAX: usize = 65_535;
const CHUNK: usize = NOISE_MAX - TAG;

fn setup(e: snow::Error) -> E2eError {
    E2eError::Setup(e.to_string())
}

fn builder<'a>() -> Result<Builder<'a>, E2eError> {
    let params = N_PARAMS.parse().map_err(setup)?;
    Builder::new(params).prologue(N_PROLOGUE).map_err(setup)
}

/// Seals `plaintext` so only the holder of `host_public`'s secret can open it.
///
/// # Errors
/// Setup or randomness failures.
pub fn seal_to_host(host_public: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, E2eError> {
    let mut handshake = builder()?
        .remote_public_key(host_public)
        .map_err(setup)?
        .build_initiator()
        .map_err(setup)?;
    let chunks = plaintext.len().div_ceil(CHUNK);
    let mut sealed = vec![0u8; HEAD + plaintext.len() + chunks * TAG];
    let total = u64::try_from(plaintext.len()).map_err(|e| E2eError::Setup(e.to_string()))?;
    let mut at = handshake
        .write_message(&total.to_be_bytes(), &mut sealed)
        .map_err(setup)?;
    let mut transport = handshake.into_transport_mode().map_err(setup)?;
    for chunk in plaintext.chunks(CHUNK) {
        at += transport
            .write_message(chunk, &mut sealed[at..])
            .map_err(setup)?;
    }
    sealed.truncate(at);
    Ok(sealed)
}

/// Opens a [`seal_to_host`] box with the host key.
///
/// # Errors
/// [`E2eError::SealedOpen`] when it was sealed to another key or altered in any way
/// (including truncation); [`E2eError::SealedTooShort`] when it cannot be a sealed box.
pub fn open_sealed(host: &HostKeyPair, sealed: &[u8]) -> Result<Vec<u8>, E2eError> {
    if sealed.len() < HEAD {
        return Err(E2eError::SealedTooShort {
            len: sealed.len(),
            min: HEAD,
        });
    }
    let secret = host.secret();
    let mut handshake = builder()?
        .local_private_key(&secret)
        .map_err(setup)?
        .build_responder()
        .map_err(setup)?;
    let mut total = [0u8; 8 + TAG];
    let len = handshake
        .read_message(&sealed[..HEAD], &mut total)
        .map_err(|_| E2eError::SealedOpen)?;
    let total: [u8; 8] = total
        .get(..len)
        .and_then(|t| t.try_into().ok())
        .ok_or(E2eError::SealedOpen)?;
    let total = usize::try_from(u64::from_be_bytes(total)).map_err(|_| E2eError::SealedOpen)?;
    let body = &sealed[HEAD..];
    let expected = total
        .div_ceil(CHUNK)
        .checked_mul(TAG)
        .and_then(|tags| tags.checked_add(total));
    if expected != Some(body.len()) {
        return Err(E2eError::SealedOpen);
    }
    let mut transport = handshake.into_transport_mode().map_err(setup)?;
    let mut plaintext = vec![0u8; total];
    let mut at = 0;
    for chunk in body.chunks(NOISE_MAX) {
        at += transport
            .read_message(chunk, &mut plaintext[at..])
            .map_err(|_| E2eError::SealedOpen)?;
    }
    if at != total {
        return Err(E2eError::SealedOpen);
    }
    Ok(plaintext)
}
