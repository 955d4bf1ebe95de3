//! The Noise NK handshake that opens a channel: msg1 operator -> agent (`e, es` + the encrypted
//! certificate chain), msg2 agent -> operator (`e, ee`, empty encrypted payload).

use super::{Channel, E2eError, HostKeyPair};
use snow::{Builder, HandshakeState};
use std::fmt;

const NK_PARAMS: &str = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
/// Bound into the handshake hash: a transcript of another protocol never verifies here.
const NK_PROLOGUE: &[u8] = b"codemantle e2e channel v1";
/// Largest Noise message.
const NOISE_MAX: usize = 65_535;
/// `e` (32) + the payload's tag (16).
const MSG_OVERHEAD: usize = 32 + 16;
/// Largest msg1 payload (the operator's certificate chain).
pub const MAX_OPEN_PAYLOAD: usize = NOISE_MAX - MSG_OVERHEAD;

fn setup(e: snow::Error) -> E2eError {
    E2eError::Setup(e.to_string())
}

fn builder<'a>(fixed_ephemeral: Option<&'a [u8; 32]>) -> Result<Builder<'a>, E2eError> {
    let params = NK_PARAMS.parse().map_err(setup)?;
    let builder = Builder::new(params).prologue(NK_PROLOGUE).map_err(setup)?;
    Ok(match fixed_ephemeral {
        Some(e) => builder.fixed_ephemeral_key_for_testing_only(e),
        None => builder,
    })
}

fn channel_of(mut hs: HandshakeState) -> Result<Channel, E2eError> {
    if !hs.is_handshake_finished() {
        return Err(E2eError::Setup("handshake not finished after msg2".into()));
    }
    let split = hs.dangerously_get_raw_split();
    Ok(Channel::from_handshake(split, hs.get_handshake_hash()))
}

/// The operator's half-open channel, between sending msg1 and reading msg2.
pub struct PendingChannel {
    handshake: HandshakeState,
}

impl fmt::Debug for PendingChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingChannel").finish_non_exhaustive()
    }
}

/// Operator: start NK to `host_public`; `payload` (the operator's certificate chain) goes
/// encrypted in msg1 (readable only by the holder of the host key).
///
/// # Errors
/// [`E2eError::PayloadTooLarge`] above [`MAX_OPEN_PAYLOAD`] bytes; setup or randomness failures.
pub fn open_channel(
    host_public: &[u8; 32],
    payload: &[u8],
) -> Result<(PendingChannel, Vec<u8>), E2eError> {
    open_channel_with(host_public, payload, None)
}

pub(crate) fn open_channel_with(
    host_public: &[u8; 32],
    payload: &[u8],
    fixed_ephemeral: Option<&[u8; 32]>,
) -> Result<(PendingChannel, Vec<u8>), E2eError> {
    if payload.len() > MAX_OPEN_PAYLOAD {
        return Err(E2eError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_OPEN_PAYLOAD,
        });
    }
    let mut handshake = builder(fixed_ephemeral)?
        .remote_public_key(host_public)
        .map_err(setup)?
        .build_initiator()
        .map_err(setup)?;
    let mut msg1 = vec![0u8; payload.len() + MSG_OVERHEAD];
    let len = handshake.write_message(payload, &mut msg1).map_err(setup)?;
    msg1.truncate(len);
    Ok((PendingChannel { handshake }, msg1))
}

impl PendingChannel {
    /// Reads the agent's msg2 and returns the channel.
    ///
    /// # Errors
    /// [`E2eError::Msg2Rejected`] when msg2 does not come from the holder of the host key the
    /// channel was opened to, or was altered.
    pub fn finish(mut self, msg2: &[u8]) -> Result<Channel, E2eError> {
        if msg2.len() > NOISE_MAX {
            return Err(E2eError::Msg2Rejected);
        }
        let mut payload = vec![0u8; msg2.len()];
        let len = self
            .handshake
            .read_message(msg2, &mut payload)
            .map_err(|_| E2eError::Msg2Rejected)?;
        if len != 0 {
            return Err(E2eError::Msg2Rejected);
        }
        channel_of(self.handshake)
    }
}

/// Agent: answers msg1 with the host key; returns the channel, msg1's decrypted payload (the
/// operator's certificate chain, still to be verified), and msg2 to send back.
///
/// # Errors
/// [`E2eError::Msg1Rejected`] when msg1 was made for another host key or altered.
pub fn accept_channel(
    host: &HostKeyPair,
    msg1: &[u8],
) -> Result<(Channel, Vec<u8>, Vec<u8>), E2eError> {
    accept_channel_with(host, msg1, None)
}

pub(crate) fn accept_channel_with(
    host: &HostKeyPair,
    msg1: &[u8],
    fixed_ephemeral: Option<&[u8; 32]>,
) -> Result<(Channel, Vec<u8>, Vec<u8>), E2eError> {
    if msg1.len() > NOISE_MAX {
        return Err(E2eError::Msg1Rejected);
    }
    let secret = host.secret();
    let mut handshake = builder(fixed_ephemeral)?
        .local_private_key(&secret)
        .map_err(setup)?
        .build_responder()
        .map_err(setup)?;
    let mut payload = vec![0u8; msg1.len()];
    let len = handshake
        .read_message(msg1, &mut payload)
        .map_err(|_| E2eError::Msg1Rejected)?;
    payload.truncate(len);
    let mut msg2 = vec![0u8; MSG_OVERHEAD];
    let len = handshake.write_message(&[], &mut msg2).map_err(setup)?;
    msg2.truncate(len);
    Ok((channel_of(handshake)?, payload, msg2))
}
