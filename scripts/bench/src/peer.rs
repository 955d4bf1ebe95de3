//! The far end of every bench stream, shared by the fake agent (behind the relay) and the
//! direct server (the raw-quinn baseline), so both paths run the same code. The stream's
//! `workspace` field selects the behaviour: `echo` copies bytes back, `source-N` writes N
//! bytes, `events` streams frames from the [`EventHub`].

use crate::events::EventHub;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use cm_client::framed::FramedRecv;
use proto::frame::MAX_HEADER_LEN;
use proto::header::StreamHeader;
use proto::ops::ForwardHeader;
use tokio::sync::broadcast::error::RecvError;

/// Chunk size of the bulk source.
const SOURCE_CHUNK: usize = 64 * 1024;

/// What the far end does with a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Copy every byte back, then finish.
    Echo,
    /// Write this many bytes, then finish.
    Source(u64),
    /// Write event frames until the hub ends.
    Events,
}

impl Mode {
    /// The `workspace` value that selects this mode (a plain name, as the relay requires).
    pub fn workspace(self) -> String {
        match self {
            Self::Echo => "echo".into(),
            Self::Source(n) => format!("source-{n}"),
            Self::Events => "events".into(),
        }
    }

    pub(crate) fn of(header: &StreamHeader) -> Result<Self> {
        let ws = header.workspace.as_deref().unwrap_or_default();
        Ok(match ws.split_once('-') {
            None if ws == "echo" => Self::Echo,
            None if ws == "events" => Self::Events,
            Some(("source", n)) => Self::Source(n.parse().context("source size")?),
            _ => bail!("unknown bench mode {ws:?}"),
        })
    }
}

pub(crate) async fn serve(
    mode: Mode,
    recv: FramedRecv,
    mut send: quinn::SendStream,
    hub: EventHub,
) -> Result<()> {
    match mode {
        Mode::Echo => {
            let mut recv = recv;
            let buffered = recv.take_buffered();
            let mut recv = recv.into_inner();
            if !buffered.is_empty() {
                send.write_chunk(buffered.freeze()).await?;
            }
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
                send.write_chunk(chunk.bytes).await?;
            }
        }
        Mode::Source(n) => {
            let chunk = Bytes::from(vec![0x5a; SOURCE_CHUNK]);
            let mut left = n;
            while left > 0 {
                let k = usize::try_from(left)
                    .unwrap_or(SOURCE_CHUNK)
                    .min(SOURCE_CHUNK);
                send.write_chunk(chunk.slice(..k)).await?;
                left -= k as u64;
            }
        }
        Mode::Events => {
            let mut rx = hub.subscribe();
            loop {
                match rx.recv().await {
                    Ok(frame) if frame.is_empty() => break,
                    Ok(frame) => send.write_chunk(frame).await?,
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        }
    }
    send.finish()?;
    Ok(())
}

/// Serves forwarded streams on an agent's relay connection until it closes.
pub async fn serve_agent(conn: quinn::Connection, hub: EventHub) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
            let fwd: ForwardHeader = recv.expect().await?;
            serve(Mode::of(&fwd.header)?, recv, send, hub).await
        });
    }
}

/// Serves bench streams on direct connections until the endpoint closes.
pub async fn serve_direct(ep: quinn::Endpoint, hub: EventHub) {
    while let Some(incoming) = ep.accept().await {
        let hub = hub.clone();
        tokio::spawn(async move {
            let conn = incoming.await?;
            while let Ok((send, recv)) = conn.accept_bi().await {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                    let header: StreamHeader = recv.expect().await?;
                    serve(Mode::of(&header)?, recv, send, hub).await
                });
            }
            Ok::<_, anyhow::Error>(())
        });
    }
}
