//! End-to-end encryption between an operator (cm-tui) and an agent (cm-agent), through a relay
//! that sees only headers and sizes (issue #20, docs/protocol.md).
//!
//! - **Channel** ([`open_channel`], [`accept_channel`]): Noise `NK_25519_ChaChaPoly_BLAKE2s`
//!   with prologue `codemantle e2e channel v1`. The operator knows the host's static key from
//!   its host certificate; msg1 (`e, es`) carries the operator's certificate chain encrypted to
//!   it, msg2 (`e, ee`) proves the answer comes from the holder of the host key (an impostor's
//!   msg2 fails to open in [`PendingChannel::finish`]). The operator is authenticated by the
//!   signed `e2e_open` header whose body hash covers msg1, not by Noise.
//! - **Channel key and id**: the channel key is `blake3::derive_key("codemantle e2e v1 channel
//!   key", k1 || k2 || h)` from the raw Noise split keys (`k1`, `k2`, snow's `risky-raw-split`)
//!   and the handshake hash `h`. This keeps the key contributory (both ephemerals and the host
//!   key, through `ee` and `es`) and bound to the whole transcript, which a random key sent in
//!   msg2's payload would not be (it would depend on the agent's randomness alone). The split
//!   keys are used only as KDF input, never as cipher keys. The id is the first 16 bytes of
//!   `blake3::derive_key("codemantle e2e v1 channel id", h)`: `h` is a hash of public
//!   transcript values, so the id reveals nothing about the key; both ends compute the same one.
//! - **Streams** ([`Channel::stream_keys`], [`seal_stream`]): two directional keys per stream,
//!   `blake3::derive_key("codemantle e2e v1 stream key operator to agent" | "… agent to
//!   operator", channel key || 16-byte stream nonce)`; records are `u32 BE length ||
//!   AES-256-GCM(key, nonce = 96-bit BE record counter)` over `flag || data` (flag 0
//!   data, 1 fin; at most [`MAX_RECORD_DATA`] data bytes). A stream that ends without the fin
//!   record, has bytes after it, or has any record that fails to open is an error; a reader
//!   never yields unauthenticated bytes.
//! - **Sealed boxes** ([`seal_to_host`], [`open_sealed`]): Noise `N` one-shot encryption to the
//!   host key, for prompts queued at the relay while the host is offline.

mod error;
mod handshake;
mod keys;
mod maybe_sealed;
mod record;
mod sealed_box;
mod stream;
#[cfg(test)]
mod tests;

pub use error::E2eError;
pub use handshake::{MAX_OPEN_PAYLOAD, PendingChannel, accept_channel, open_channel};
pub use keys::{Channel, ChannelId, HostKeyPair, Side, StreamKeys};
pub use maybe_sealed::{MaybeSealedRecv, MaybeSealedSend};
pub use record::{MAX_RECORD_DATA, RECORD_FORMAT, record_format_mismatch};
pub use sealed_box::{open_sealed, seal_to_host};
pub use stream::{SealedRecv, SealedSend, seal_stream};
