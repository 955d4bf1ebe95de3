//! The per-request costs of zero trust, measured in process one operation at a time (no
//! network, one thread): signing a header on the laptop, the host's whole check of it, and
//! sealing / opening a body end to end.

use crate::peer::Mode;
use crate::stats::Percentiles;
use crate::worlds::HOST;
use crate::zero_trust_identity::Identity;
use anyhow::{Context as _, Result, bail, ensure};
use cm_agent::trust::HostTrust;
use cm_client::e2e::{Channel, Side, StreamKeys, accept_channel, open_channel, seal_stream};
use cm_client::time::now_ms;
use proto::frame::{FrameDecoder, MAX_HEADER_LEN, to_frame};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, HostId, ReqId};
use proto::ops::ForwardHeader;
use proto::rbac::{Decision, Ownership, Role, authorize};
use proto::trust::header::body_hash;
use proto::trust::header_mac::{attach_mac, read_unverified};
use proto::trust::revocation::Revoked;
use proto::trust::signed::SignedKind as _;
use proto::trust::{PendingSignature, SignedFields, Verifier};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What one request costs, per operation.
#[derive(Debug)]
pub struct Costs {
    /// Operator: nonce, body hash, Ed25519 signature, header encoding.
    pub sign: Percentiles,
    /// Host: forwarded header decoding, revocation freshness, `header::check` (signature,
    /// fields, time, nonce window) and `role_of` (kept from the channel's first) + `authorize`.
    pub verify: Percentiles,
    /// Host, a stream on a channel: forwarded header decoding, revocation freshness, the
    /// channel MAC, fields, time and nonce (`HostTrust::check_header_mac`), `role_of` +
    /// `authorize`: what the agent checks before the work; the signature is verified beside it.
    pub mac_check: Percentiles,
    /// Host: `role_of` + `authorize` alone (part of `verify`): a role the host already worked
    /// out for this device key and these certificates (every stream after a channel's first).
    pub role_of: Percentiles,
    /// Host: the chain walked without the cache (`Verifier::role_of`: the grant's signature),
    /// what `e2e_open` pays once per channel.
    pub chain: Percentiles,
    /// Host: one Ed25519 verification of a header's signed bytes alone (part of `verify`).
    pub ed25519: Percentiles,
    /// Per body size: derive the stream's keys, seal the body and the fin record.
    pub seal: Vec<(usize, Percentiles)>,
    /// Per body size: derive the stream's keys, open the records to the end.
    pub open: Vec<(usize, Percentiles)>,
}

/// Runs a future that never waits (in-memory I/O) to completion.
fn now<F: Future>(fut: F) -> Result<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => bail!("in-memory I/O waited"),
    }
}

fn template() -> StreamHeader {
    let mut h = StreamHeader::new(Op::Messages, ReqId(1));
    h.host = Some(HostId::from(HOST));
    h.workspace = Some(Mode::Echo.workspace());
    h
}

fn timed(n: usize, mut op: impl FnMut() -> Result<()>) -> Result<Percentiles> {
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    // Warm-up: caches, allocator.
    for _ in 0..n.min(50) {
        op()?;
    }
    for _ in 0..n {
        let t = Instant::now();
        op()?;
        samples.push(t.elapsed());
    }
    Ok(Percentiles::of(samples))
}

fn signed_forward(identity: &Identity, channel: &Channel, body: &[u8]) -> Result<Vec<u8>> {
    forward(identity, channel, body, false)
}

fn maced_forward(identity: &Identity, channel: &Channel, body: &[u8]) -> Result<Vec<u8>> {
    forward(identity, channel, body, true)
}

fn forward(identity: &Identity, channel: &Channel, body: &[u8], mac: bool) -> Result<Vec<u8>> {
    let mut h = template();
    identity.sign(&mut h, Some(body_hash(body)), Some(channel.id()))?;
    if mac {
        attach_mac(&mut h, &channel.header_mac_key())?;
    }
    let fwd = ForwardHeader {
        header: h,
        principal: identity.user.clone(),
        role: Role::Owner,
        cred_id: CredId("bench".into()),
    };
    Ok(to_frame(&fwd, MAX_HEADER_LEN)?.to_vec())
}

/// The forwarded header in `frame`, and now, once the revocation list is fresh.
fn decode_fresh(trust: &HostTrust, frame: &[u8]) -> Result<(ForwardHeader, u64)> {
    let mut buf = bytes::BytesMut::from(frame);
    let Some(fwd) = FrameDecoder::new(MAX_HEADER_LEN).decode_json::<ForwardHeader>(&mut buf)?
    else {
        bail!("a whole header frame did not decode");
    };
    let now = now_ms();
    trust.check_fresh(now)?;
    Ok((fwd, now))
}

/// What the fake agent does before it touches a signed stream's body.
fn verify(trust: &HostTrust, identity: &Identity, frame: &[u8]) -> Result<()> {
    let (fwd, now) = decode_fresh(trust, frame)?;
    let checked = trust.check_header(&fwd.header, now)?;
    let role = trust.role_of(&checked.fields.user, &checked.key, &identity.certs, now)?;
    ensure!(authorize(Some(role), fwd.header.op, Ownership::None) == Decision::Allow);
    Ok(())
}

/// What the agent checks before the work on a stream whose header carries the channel's MAC
/// (the signature comes back, to verify beside the work).
fn check_by_mac(
    trust: &HostTrust,
    identity: &Identity,
    channel: &Channel,
    frame: &[u8],
) -> Result<PendingSignature> {
    let (fwd, now) = decode_fresh(trust, frame)?;
    let unverified = read_unverified(&fwd.header)?;
    ensure!(unverified.fields.channel == Some(channel.id().to_hex()));
    let (checked, signature) =
        trust.check_header_mac(&fwd.header, unverified, now, &channel.header_mac_key())?;
    let role = trust.role_of(&checked.fields.user, &checked.key, &identity.certs, now)?;
    ensure!(authorize(Some(role), fwd.header.op, Ownership::None) == Decision::Allow);
    Ok(signature)
}

fn seal(keys: StreamKeys, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let (_, mut send) = seal_stream(keys, &[][..], out);
    now(async {
        send.write_all(body).await?;
        send.shutdown().await
    })??;
    Ok(())
}

fn open(keys: StreamKeys, sealed: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    let (mut recv, _) = seal_stream(keys, sealed, Vec::new());
    now(recv.read_to_end(out))??;
    Ok(())
}

/// Measures each operation `n` times (after a warm-up) for each body size.
///
/// # Errors
/// A check refuses (not expected) or no OS randomness.
pub fn measure(identity: &Identity, sizes: &[usize], n: usize) -> Result<Costs> {
    let trust = identity.host_trust()?;
    let (pending, msg1) = open_channel(&identity.host_key.public(), b"[]")?;
    let (agent_side, _, msg2) = accept_channel(&identity.host_key, &msg1)?;
    let operator_side = pending.finish(&msg2)?;
    let body64 = vec![0x42u8; 64];
    let sign = timed(n, || {
        let mut h = template();
        identity.sign(&mut h, Some(body_hash(&body64)), Some(operator_side.id()))?;
        to_frame(&h, MAX_HEADER_LEN)?;
        Ok(())
    })?;
    // Every check spends its header's nonce: one signed header per check, made beforehand.
    let headers: Vec<Vec<u8>> = (0..n + n.min(50))
        .map(|_| signed_forward(identity, &operator_side, &body64))
        .collect::<Result<_>>()?;
    let mut unused = headers.iter();
    let verify = timed(n, || match unused.next() {
        Some(h) => verify(&trust, identity, h),
        None => bail!("out of signed headers"),
    })?;
    let maced: Vec<Vec<u8>> = (0..n + n.min(50))
        .map(|_| maced_forward(identity, &agent_side, &body64))
        .collect::<Result<_>>()?;
    let mut unused = maced.iter();
    let mac_check = timed(n, || match unused.next() {
        Some(h) => check_by_mac(&trust, identity, &agent_side, h).map(drop),
        None => bail!("out of signed headers"),
    })?;
    let key = identity.device.public();
    let role_of = timed(n, || {
        let role = trust.role_of(&identity.user, &key, &identity.certs, now_ms())?;
        ensure!(authorize(Some(role), Op::Messages, Ownership::None) == Decision::Allow);
        Ok(())
    })?;
    let (roots, revoked) = (vec![identity.root.clone()], Revoked::default());
    let host = HostId::from(HOST);
    let chain = timed(n, || {
        let role = Verifier::new(&roots, &revoked).role_of(
            &identity.user,
            &key,
            &host,
            &identity.certs,
            now_ms(),
        )?;
        ensure!(authorize(Some(role), Op::Messages, Ownership::None) == Decision::Allow);
        Ok(())
    })?;
    let mut h = template();
    identity.sign(&mut h, Some(body_hash(&body64)), Some(operator_side.id()))?;
    let auth = h.auth.context("the signed header has no signature")?;
    let signed = auth.payload_bytes()?;
    let ed25519 = timed(n, || {
        Ok(auth.key.verify(SignedFields::DOMAIN, &signed, &auth.sig)?)
    })?;
    let nonce = [7u8; 16];
    let mut seal_rows = Vec::new();
    let mut open_rows = Vec::new();
    for &size in sizes {
        let body = vec![0x42u8; size];
        let mut out = Vec::new();
        seal_rows.push((
            size,
            timed(n, || {
                seal(
                    operator_side.stream_keys(&nonce, Side::Operator),
                    &body,
                    &mut out,
                )
            })?,
        ));
        let mut sealed = Vec::new();
        seal(
            operator_side.stream_keys(&nonce, Side::Operator),
            &body,
            &mut sealed,
        )?;
        let mut plain = Vec::new();
        open_rows.push((
            size,
            timed(n, || {
                open(
                    agent_side.stream_keys(&nonce, Side::Agent),
                    &sealed,
                    &mut plain,
                )
            })?,
        ));
        ensure!(plain == body, "the opened body differs from the sealed one");
    }
    Ok(Costs {
        sign,
        verify,
        mac_check,
        role_of,
        chain,
        ed25519,
        seal: seal_rows,
        open: open_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Result<(Identity, std::sync::Arc<HostTrust>, Channel)> {
        let identity = Identity::new()?;
        let trust = identity.host_trust()?;
        let (pending, msg1) = open_channel(&identity.host_key.public(), b"[]")?;
        let (_, _, msg2) = accept_channel(&identity.host_key, &msg1)?;
        let channel = pending.finish(&msg2)?;
        Ok((identity, trust, channel))
    }

    #[test]
    fn measured_host_check_refuses_a_replayed_header() -> Result<()> {
        let (identity, trust, channel) = setup()?;
        let frame = signed_forward(&identity, &channel, b"body")?;
        verify(&trust, &identity, &frame)?;
        assert!(verify(&trust, &identity, &frame).is_err());
        Ok(())
    }

    #[test]
    fn measured_mac_check_takes_a_maced_header_once_and_its_signature_verifies() -> Result<()> {
        let (identity, trust, channel) = setup()?;
        let frame = maced_forward(&identity, &channel, b"body")?;
        check_by_mac(&trust, &identity, &channel, &frame)?.verify()?;
        assert!(check_by_mac(&trust, &identity, &channel, &frame).is_err());
        // A header without the MAC is not taken on this path.
        let frame = signed_forward(&identity, &channel, b"body")?;
        assert!(check_by_mac(&trust, &identity, &channel, &frame).is_err());
        Ok(())
    }

    #[test]
    fn measured_host_check_refuses_an_altered_header_or_an_ungranted_key() -> Result<()> {
        let (identity, trust, channel) = setup()?;
        let frame = signed_forward(&identity, &channel, b"body")?;
        // The plaintext workspace the relay forwards, "echo" → "echp" (same length).
        let mut altered = frame.clone();
        let at = frame
            .windows(6)
            .position(|w| w == b"\"echo\"")
            .ok_or_else(|| anyhow::anyhow!("no workspace in the header"))?;
        altered[at + 4] = b'p';
        assert!(verify(&trust, &identity, &altered).is_err());
        // Another user's grant does not cover this device key.
        let mut stranger = Identity::new()?;
        stranger.certs = Identity::new()?.certs;
        let frame = signed_forward(&stranger, &channel, b"body")?;
        assert!(verify(&trust, &stranger, &frame).is_err());
        Ok(())
    }
}
