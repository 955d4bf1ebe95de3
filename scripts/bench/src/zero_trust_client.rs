//! The operator's side of the zero-trust scenario, on one relay connection: requests plain
//! (today), with a signed header, or signed and sealed end to end. The channel is opened once
//! per connection with an `e2e_open` stream; each later sealed stream derives its keys from
//! the channel and the signed header's nonce.

use crate::exchange;
use crate::peer::Mode;
use crate::worlds::{HOST, header};
use crate::zero_trust_identity::Identity;
use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cm_client::Session;
use cm_client::e2e::{Channel, MaybeSealedRecv, MaybeSealedSend, Side, open_channel, seal_stream};
use cm_client::framed::FramedRecv;
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN, to_frame};
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, ReqId};
use proto::message::Reply;
use proto::trust::header::body_hash;
use proto::trust::header_mac::attach_mac;
use proto::trust::{E2eOpen, E2eOpened};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How a request travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Today: an unsigned header, plaintext body (the relay's word is the host's).
    Plain,
    /// A signed header (nonce, time, body hash), plaintext body.
    Signed,
    /// A signed header naming the channel; everything after it sealed both ways.
    Sealed,
}

impl Path {
    /// All three, in table order.
    pub const ALL: [Self; 3] = [Self::Plain, Self::Signed, Self::Sealed];

    /// For the table.
    pub fn label(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Signed => "signed header",
            Self::Sealed => "signed + E2E",
        }
    }
}

/// A stream's halves after its header.
type Halves = (
    MaybeSealedSend<quinn::SendStream>,
    MaybeSealedRecv<quinn::RecvStream>,
);

/// One operator connection with its end-to-end channel to the fake agent.
#[derive(Debug)]
pub struct ZtOperator {
    /// The relay session (its connection carries every stream).
    pub session: Session,
    identity: Arc<Identity>,
    channel: Channel,
}

/// The certificates the operator shows in msg1.
fn chain(identity: &Identity) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&identity.certs)?)
}

impl ZtOperator {
    /// Opens the channel with an `e2e_open` stream through the relay.
    ///
    /// # Errors
    /// The host refuses, or transport failures.
    pub async fn open(session: Session, identity: Arc<Identity>) -> Result<Self> {
        let (pending, msg1) = open_channel(&identity.host_key.public(), &chain(&identity)?)?;
        let body = serde_json::to_vec(&E2eOpen {
            msg1: URL_SAFE_NO_PAD.encode(msg1),
            records: Some(cm_client::e2e::RECORD_FORMAT),
        })?;
        let mut h = StreamHeader::new(Op::E2eOpen, ReqId(1));
        h.host = Some(HostId::from(HOST));
        identity.sign(&mut h, Some(body_hash(&body)), None)?;
        let (mut send, recv) = session.conn.open_bi().await?;
        send.write_all(&to_frame(&h, MAX_HEADER_LEN)?).await?;
        let mut framed_body = Vec::with_capacity(body.len() + 4);
        framed_body.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
        framed_body.extend_from_slice(&body);
        send.write_all(&framed_body).await?;
        send.finish()?;
        let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
        let opened = recv
            .expect::<Reply<E2eOpened>>()
            .await
            .context("the fake agent refused e2e_open (see its message above)")?
            .into_result()?;
        let channel = pending.finish(&URL_SAFE_NO_PAD.decode(opened.msg2)?)?;
        Ok(Self {
            session,
            identity,
            channel,
        })
    }

    /// Opens the channel directly with `agent` (no stream; see
    /// [`crate::zero_trust_agent::ZtAgent::open_in_process`]).
    ///
    /// # Errors
    /// The agent refuses.
    pub fn open_in_process(
        session: Session,
        identity: Arc<Identity>,
        agent: &crate::zero_trust_agent::ZtAgent,
    ) -> Result<Self> {
        let (pending, msg1) = open_channel(&identity.host_key.public(), &chain(&identity)?)?;
        let msg2 = agent.open_in_process(identity.device.public(), &msg1)?;
        let channel = pending.finish(&msg2)?;
        Ok(Self {
            session,
            identity,
            channel,
        })
    }

    /// Opens a stream for `op` in `mode` on `path` and writes its header; `body` is hashed
    /// into the signature when given. Plain headers are encoded here too (as a client does).
    async fn stream(&self, path: Path, op: Op, mode: Mode, body: Option<&[u8]>) -> Result<Halves> {
        if path == Path::Plain {
            let hdr = header(op, mode)?;
            let (mut send, recv) = self.session.conn.open_bi().await?;
            send.write_all(&hdr).await?;
            return Ok((MaybeSealedSend::Plain(send), MaybeSealedRecv::Plain(recv)));
        }
        let mut h = StreamHeader::new(op, ReqId(1));
        h.host = Some(HostId::from(HOST));
        h.workspace = Some(mode.workspace());
        let channel = (path == Path::Sealed).then(|| self.channel.id());
        let nonce = self.identity.sign(&mut h, body.map(body_hash), channel)?;
        if path == Path::Sealed {
            // As cm-tui: the channel's MAC over the signature (the host checks it on the path).
            attach_mac(&mut h, &self.channel.header_mac_key())?;
        }
        let hdr = to_frame(&h, MAX_HEADER_LEN)?;
        let (mut send, recv) = self.session.conn.open_bi().await?;
        send.write_all(&hdr).await?;
        Ok(match path {
            Path::Sealed => {
                let keys = self.channel.stream_keys(&nonce, Side::Operator);
                let (recv, send) = seal_stream(keys, recv, send);
                (MaybeSealedSend::Sealed(send), MaybeSealedRecv::Sealed(recv))
            }
            Path::Plain | Path::Signed => {
                (MaybeSealedSend::Plain(send), MaybeSealedRecv::Plain(recv))
            }
        })
    }

    /// One echo request on a new stream: header, body, end; the whole echo read back.
    /// `plain_header` is today's pre-encoded header (the other scenarios' fast path).
    ///
    /// # Errors
    /// Transport failures or a short echo.
    pub async fn round_trip(
        &self,
        path: Path,
        plain_header: &Bytes,
        body: &Bytes,
    ) -> Result<Duration> {
        if path == Path::Plain {
            return exchange::round_trip(&self.session.conn, plain_header, body).await;
        }
        let start = Instant::now();
        let (mut send, mut recv) = self
            .stream(path, Op::Messages, Mode::Echo, Some(body))
            .await?;
        send.write_all(body).await?;
        send.shutdown().await?;
        let mut echo = Vec::with_capacity(body.len());
        recv.read_to_end(&mut echo).await?;
        ensure!(
            echo.len() == body.len(),
            "echo returned {} of {} bytes",
            echo.len(),
            body.len()
        );
        Ok(start.elapsed())
    }

    /// Downloads `bytes` from the agent's source on `path`; returns the byte count and the
    /// time from opening to the last byte.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn download(&self, path: Path, bytes: u64) -> Result<(u64, Duration)> {
        if path == Path::Plain {
            let hdr = header(Op::Diff, Mode::Source(bytes))?;
            return exchange::download(&self.session.conn, &hdr).await;
        }
        let start = Instant::now();
        let (mut send, mut recv) = self
            .stream(path, Op::Diff, Mode::Source(bytes), None)
            .await?;
        send.shutdown().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = recv.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok((got, start.elapsed()))
    }

    /// A watch stream on `path`: its reading half, which yields event frames.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn watch(&self, path: Path) -> Result<MaybeSealedRecv<quinn::RecvStream>> {
        let (mut send, recv) = self
            .stream(path, Op::WatchEvents, Mode::Events, None)
            .await?;
        send.shutdown().await?;
        Ok(recv)
    }
}
