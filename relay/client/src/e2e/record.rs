//! The record layer, sans IO: `u32 BE ciphertext length || AES-256-GCM(key, nonce = 96-bit BE
//! record counter, no AAD)` over `flag (0 data, 1 fin) || data`. Keys are per stream and
//! direction, the counter starts at 0 and never repeats, so a replayed, reordered, dropped or
//! altered record fails to open.
//!
//! AES-256-GCM rather than ChaCha20-Poly1305 (the records' cipher before): with AES-NI and
//! carry-less multiply, as on the x86-64 and ARMv8 machines CodeMantle runs on, ring seals and
//! opens it about three times as fast, and a sealed bulk stream spends that CPU on every byte at
//! both ends (docs/performance.md §13e). ring uses a constant-time implementation without them.

use super::E2eError;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// The record format sealed here, sent in `e2e_open` and its answer so that a cm-tui and a
/// cm-agent sealing differently refuse the channel with a clear message instead of failing on
/// the first record: 1 was ChaCha20-Poly1305 (builds before this field, which sent none), 2 is
/// AES-256-GCM.
pub const RECORD_FORMAT: u32 = 2;

/// Why a peer's record format cannot be used: `None` when it is this build's, or when the peer
/// did not say (a build from before the field: its first record tells). `me` and `peer` name
/// the two programs as the reader of the message knows them ("this cm-tui", "host box's
/// cm-agent").
pub fn record_format_mismatch(me: &str, peer: &str, format: Option<u32>) -> Option<String> {
    let theirs = format.filter(|f| *f != RECORD_FORMAT)?;
    let older = if theirs < RECORD_FORMAT { peer } else { me };
    Some(format!(
        "{peer} seals end-to-end records in format {theirs} and {me} in format \
         {RECORD_FORMAT}: update {older}"
    ))
}

/// Most data bytes in one record.
pub const MAX_RECORD_DATA: usize = 16 * 1024;
/// The length prefix.
pub(crate) const LEN_PREFIX: usize = 4;
const TAG: usize = 16;
/// Ciphertext bounds: flag + data + tag.
pub(crate) const MIN_CIPHERTEXT: usize = 1 + TAG;
pub(crate) const MAX_CIPHERTEXT: usize = 1 + MAX_RECORD_DATA + TAG;

pub(crate) const FLAG_DATA: u8 = 0;
pub(crate) const FLAG_FIN: u8 = 1;

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    // ring refuses only keys of the wrong length; AES-256-GCM keys are 32 bytes by type.
    let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256-GCM key");
    LessSafeKey::new(key)
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals the records of one direction.
pub(crate) struct RecordSealer {
    key: LessSafeKey,
    counter: u64,
}

impl RecordSealer {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aead_key(key),
            counter: 0,
        }
    }

    /// Appends one record (`data` at most [`MAX_RECORD_DATA`] bytes) to `out`.
    pub(crate) fn seal(
        &mut self,
        flag: u8,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), E2eError> {
        debug_assert!(data.len() <= MAX_RECORD_DATA);
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(E2eError::CounterExhausted)?;
        let ciphertext_len = 1 + data.len() + TAG;
        let len = u32::try_from(ciphertext_len).map_err(|_| E2eError::RecordTooLarge {
            len: ciphertext_len,
            max: MAX_CIPHERTEXT,
        })?;
        out.reserve(LEN_PREFIX + ciphertext_len);
        out.extend_from_slice(&len.to_be_bytes());
        let start = out.len();
        out.push(flag);
        out.extend_from_slice(data);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), Aad::empty(), &mut out[start..])
            .map_err(|_| E2eError::CounterExhausted)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// What an opened record says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Data bytes at this range of the record buffer.
    Data(std::ops::Range<usize>),
    /// The fin record.
    Fin,
}

/// Opens the records of one direction, in order.
pub(crate) struct RecordOpener {
    key: LessSafeKey,
    counter: u64,
}

/// The ciphertext length a record's prefix announces, checked against the bounds.
pub(crate) fn ciphertext_len(prefix: [u8; LEN_PREFIX]) -> Result<usize, E2eError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > MAX_CIPHERTEXT {
        return Err(E2eError::RecordTooLarge {
            len,
            max: MAX_CIPHERTEXT,
        });
    }
    if len < MIN_CIPHERTEXT {
        return Err(E2eError::RecordTooShort {
            len,
            min: MIN_CIPHERTEXT,
        });
    }
    Ok(len)
}

impl RecordOpener {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            key: aead_key(key),
            counter: 0,
        }
    }

    /// Opens one record's ciphertext (without its length prefix) in place.
    pub(crate) fn open(&mut self, ciphertext: &mut [u8]) -> Result<Opened, E2eError> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(E2eError::CounterExhausted)?;
        let plain = self
            .key
            .open_in_place(nonce(counter), Aad::empty(), ciphertext)
            .map_err(|_| E2eError::RecordOpen)?;
        match plain.first().copied() {
            Some(FLAG_DATA) => Ok(Opened::Data(1..plain.len())),
            Some(FLAG_FIN) if plain.len() == 1 => Ok(Opened::Fin),
            Some(flag) => Err(E2eError::RecordFlag(flag)),
            None => Err(E2eError::RecordOpen),
        }
    }
}
