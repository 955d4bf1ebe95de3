//! The zero-trust scenario's fake agent, behind the real relay. An unsigned stream gets
//! today's far end ([`peer::serve`], the code every other scenario measures). A signed one is
//! first checked as a zero-trust host checks it, with the agent's own [`HostTrust`]: fresh
//! revocation list, signature, target, time and nonce (`proto::trust::header::check`), the
//! role from the certificate chain (`Verifier::role_of`, root → grant) and
//! `proto::rbac::authorize`. Then the body's hash is checked, and a stream naming a channel is
//! opened and answered sealed (`cm_client::e2e`). A header on a channel that carries the
//! channel's MAC is checked as the agent's gate checks it (`HostTrust::check_header_mac`: MAC,
//! fields, time, nonce; then role and `authorize`) and answered with its signature verified
//! beside the answer as the agent's gate does it (`IdleVerifier::beside`: the check starts when
//! the answer is done, or after its grace, on the idle-class thread).
//! `e2e_open` opens a channel: msg1 carries the operator's certificates, which the host
//! remembers for that device key.

use crate::events::EventHub;
use crate::peer::{self, Mode};
use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cm_agent::signature_check::Outcome;
use cm_agent::trust::HostTrust;
use cm_client::e2e::{Channel, ChannelId, HostKeyPair, Side, accept_channel, seal_stream};
use cm_client::framed::{FramedRecv, send_frame};
use cm_client::time::now_ms;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::{Op, StreamHeader};
use proto::message::Reply;
use proto::ops::ForwardHeader;
use proto::rbac::{Decision, Ownership, authorize};
use proto::trust::header::{CheckedHeader, body_hash};
use proto::trust::header_mac::read_unverified;
use proto::trust::{Cert, E2eOpen, E2eOpened, PendingSignature, PublicKey};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::broadcast::error::RecvError;

/// Chunk size of the bulk source (as [`peer`]'s).
const SOURCE_CHUNK: usize = 64 * 1024;

/// An open channel: its keys and the device key that opened it.
#[derive(Debug)]
struct Open {
    channel: Channel,
    key: PublicKey,
}

/// The fake zero-trust host.
#[derive(Debug)]
pub struct ZtAgent {
    trust: Arc<HostTrust>,
    host_key: HostKeyPair,
    hub: EventHub,
    channels: Mutex<HashMap<ChannelId, Open>>,
    /// Certificates each device key showed when it opened a channel.
    certs: Mutex<HashMap<PublicKey, Vec<Cert>>>,
}

/// What a checked header allows.
#[derive(Debug)]
struct Admitted {
    checked: CheckedHeader,
    channel: Option<Channel>,
}

fn locked<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| anyhow!("a fake-agent lock was poisoned"))
}

impl ZtAgent {
    /// A host with `trust`, its end-to-end key `host_key`, streaming events from `hub`.
    pub fn new(trust: Arc<HostTrust>, host_key: HostKeyPair, hub: EventHub) -> Arc<Self> {
        Arc::new(Self {
            trust,
            host_key,
            hub,
            channels: Mutex::default(),
            certs: Mutex::default(),
        })
    }

    /// Serves forwarded streams on the agent's relay connection until it closes.
    pub async fn serve(self: Arc<Self>, conn: quinn::Connection) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            let me = Arc::clone(&self);
            tokio::spawn(async move {
                if let Err(e) = me.stream(send, recv).await {
                    eprintln!("cm-bench: zero-trust fake agent refused a stream: {e:#}");
                }
            });
        }
    }

    async fn stream(&self, send: quinn::SendStream, recv: quinn::RecvStream) -> Result<()> {
        let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
        let fwd: ForwardHeader = recv.expect().await?;
        let header = fwd.header;
        if header.auth.is_none() {
            return peer::serve(Mode::of(&header)?, recv, send, self.hub.clone()).await;
        }
        if header.op == Op::E2eOpen {
            return self.open(&header, recv, send).await;
        }
        let (admitted, signature) = if header.mac.is_some() {
            let (admitted, signature) = self.admit_by_mac(&header)?;
            (admitted, Some(signature))
        } else {
            (self.admit(&header)?, None)
        };
        let mode = Mode::of(&header)?;
        let hash = admitted.checked.fields.body.clone();
        let rest = Cursor::new(recv.take_buffered()).chain(recv.into_inner());
        let served = async {
            match admitted.channel {
                None => serve_io(mode, hash.as_deref(), rest, send, &self.hub).await,
                Some(channel) => {
                    let keys = channel.stream_keys(&admitted.checked.nonce, Side::Agent);
                    let (recv, send) = seal_stream(keys, rest, send);
                    serve_io(mode, hash.as_deref(), recv, send, &self.hub).await
                }
            }
        };
        match signature {
            None => served.await?,
            // As the agent's gate: the answer (and its fin) first, then the owed check.
            Some(signature) => match self
                .trust
                .signature_checks()
                .beside(signature, served)
                .await
            {
                Outcome::Verified(served) => served?,
                Outcome::WorkDone(served, owed) => {
                    served?;
                    owed.verdict().await?;
                }
                Outcome::Failed(e) => return Err(e.into()),
            },
        }
        Ok(())
    }

    /// The per-request checks of a header on a channel by the channel's MAC; the signature is
    /// returned to verify beside the answer.
    fn admit_by_mac(&self, header: &StreamHeader) -> Result<(Admitted, PendingSignature)> {
        let now = now_ms();
        self.trust.check_fresh(now)?;
        let unverified = read_unverified(header)?;
        let hex = unverified
            .fields
            .channel
            .clone()
            .context("a MAC without a channel")?;
        let channel = {
            let channels = locked(&self.channels)?;
            let open = channels
                .get(&ChannelId::from_hex(&hex)?)
                .context("e2e_channel_unknown")?;
            ensure!(
                open.key == unverified.key,
                "the channel belongs to another device key"
            );
            open.channel.clone()
        };
        let (checked, signature) =
            self.trust
                .check_header_mac(header, unverified, now, &channel.header_mac_key())?;
        self.authorize(header, &checked, now)?;
        Ok((
            Admitted {
                checked,
                channel: Some(channel),
            },
            signature,
        ))
    }

    /// The role the device key's certificates give, allowed to do `header.op`.
    fn authorize(&self, header: &StreamHeader, checked: &CheckedHeader, now: u64) -> Result<()> {
        let certs = locked(&self.certs)?
            .get(&checked.key)
            .cloned()
            .context("no certificates from this device key: open a channel first")?;
        let role = self
            .trust
            .role_of(&checked.fields.user, &checked.key, &certs, now)?;
        ensure!(
            authorize(Some(role), header.op, Ownership::None) == Decision::Allow,
            "role {role:?} may not {:?}",
            header.op
        );
        Ok(())
    }

    /// The per-request checks of a signed header (see the module docs).
    fn admit(&self, header: &StreamHeader) -> Result<Admitted> {
        let now = now_ms();
        self.trust.check_fresh(now)?;
        let checked = self.trust.check_header(header, now)?;
        self.authorize(header, &checked, now)?;
        let channel = match &checked.fields.channel {
            None => None,
            Some(hex) => {
                let id = ChannelId::from_hex(hex)?;
                let channels = locked(&self.channels)?;
                let open = channels.get(&id).context("e2e_channel_unknown")?;
                ensure!(
                    open.key == checked.key,
                    "the channel belongs to another device key"
                );
                Some(open.channel.clone())
            }
        };
        Ok(Admitted { checked, channel })
    }

    /// `e2e_open`: the signed header's body hash covers msg1; msg1's payload is the
    /// operator's certificates, which must grant a role allowed to open a channel.
    async fn open(
        &self,
        header: &StreamHeader,
        mut recv: FramedRecv,
        mut send: quinn::SendStream,
    ) -> Result<()> {
        let now = now_ms();
        self.trust.check_fresh(now)?;
        let checked = self.trust.check_header(header, now)?;
        recv.set_max_len(MAX_FRAME_LEN);
        let body = recv.next_raw().await?.context("e2e_open without a body")?;
        ensure!(
            checked.fields.body.as_deref() == Some(body_hash(&body).as_str()),
            "the e2e_open body is not the one signed"
        );
        let open: E2eOpen = serde_json::from_slice(&body)?;
        let msg1 = URL_SAFE_NO_PAD.decode(open.msg1)?;
        let (channel, payload, msg2) = accept_channel(&self.host_key, &msg1)?;
        let certs: Vec<Cert> = serde_json::from_slice(&payload)?;
        let role = self
            .trust
            .role_of(&checked.fields.user, &checked.key, &certs, now)?;
        if authorize(Some(role), Op::E2eOpen, Ownership::None) != Decision::Allow {
            bail!("role {role:?} may not open a channel");
        }
        self.trust.record_certs(&certs, now);
        locked(&self.certs)?.insert(checked.key, certs);
        locked(&self.channels)?.insert(
            channel.id(),
            Open {
                channel,
                key: checked.key,
            },
        );
        let reply = Reply::Ok(E2eOpened {
            msg2: URL_SAFE_NO_PAD.encode(msg2),
            records: Some(cm_client::e2e::RECORD_FORMAT),
        });
        send_frame(&mut send, &reply, MAX_FRAME_LEN).await?;
        send.finish()?;
        Ok(())
    }

    /// Opens a channel for `msg1` without a stream (the watchers' channels: many at once would
    /// spend the agent connection's stream credit before the watches start). Returns msg2.
    ///
    /// # Errors
    /// As `e2e_open` over a stream.
    pub fn open_in_process(&self, key: PublicKey, msg1: &[u8]) -> Result<Vec<u8>> {
        let (channel, payload, msg2) = accept_channel(&self.host_key, msg1)?;
        let certs: Vec<Cert> = serde_json::from_slice(&payload)?;
        locked(&self.certs)?.insert(key, certs);
        locked(&self.channels)?.insert(channel.id(), Open { channel, key });
        Ok(msg2)
    }
}

/// The far end of a signed stream, plain or sealed: the body is read whole and its signed hash
/// checked before it is answered.
async fn serve_io<R, W>(
    mode: Mode,
    hash: Option<&str>,
    mut recv: R,
    mut send: W,
    hub: &EventHub,
) -> Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match mode {
        Mode::Echo => {
            let mut body = Vec::new();
            recv.read_to_end(&mut body).await?;
            if let Some(want) = hash {
                ensure!(body_hash(&body) == want, "the body is not the one signed");
            }
            send.write_all(&body).await?;
        }
        Mode::Source(n) => {
            let chunk = vec![0x5a; SOURCE_CHUNK];
            let mut left = n;
            while left > 0 {
                let k = usize::try_from(left)
                    .unwrap_or(SOURCE_CHUNK)
                    .min(SOURCE_CHUNK);
                send.write_all(&chunk[..k]).await?;
                left -= k as u64;
            }
        }
        Mode::Events => {
            let mut rx = hub.subscribe();
            loop {
                match rx.recv().await {
                    Ok(frame) if frame.is_empty() => break,
                    Ok(frame) => {
                        send.write_all(&frame).await?;
                        send.flush().await?;
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        }
    }
    send.shutdown().await?;
    Ok(())
}
