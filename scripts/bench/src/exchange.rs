//! The client side of one exchange, identical for both paths: a request/response round trip
//! on a new stream, an echo on a long-lived stream, and a bulk download.

use anyhow::{Result, ensure};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Opens a stream, sends `header` then `body`, finishes, and reads the echo to its end.
///
/// # Errors
/// Transport failures or a short echo.
pub async fn round_trip(
    conn: &quinn::Connection,
    header: &Bytes,
    body: &Bytes,
) -> Result<Duration> {
    let start = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all_chunks(&mut [header.clone(), body.clone()])
        .await?;
    send.finish()?;
    let mut got = 0;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        got += chunk.bytes.len();
    }
    ensure!(
        got == body.len(),
        "echo returned {got} of {} bytes",
        body.len()
    );
    Ok(start.elapsed())
}

/// One echo stream kept open for many round trips.
#[derive(Debug)]
pub struct EchoStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    buf: Vec<u8>,
}

impl EchoStream {
    /// Opens the stream and sends `header`.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn open(conn: &quinn::Connection, header: &Bytes) -> Result<Self> {
        let (mut send, recv) = conn.open_bi().await?;
        send.write_all(header).await?;
        Ok(Self {
            send,
            recv,
            buf: Vec::new(),
        })
    }

    /// Writes `body` and reads it back.
    ///
    /// # Errors
    /// Transport failures.
    pub async fn round_trip(&mut self, body: &Bytes) -> Result<Duration> {
        let start = Instant::now();
        self.send.write_all(body).await?;
        self.buf.resize(body.len(), 0);
        self.recv.read_exact(&mut self.buf).await?;
        Ok(start.elapsed())
    }

    /// Ends the stream.
    pub fn finish(mut self) {
        let _ = self.send.finish();
    }
}

/// Opens a stream with `header` (a `source:N` request) and reads everything; returns the
/// byte count and the time from opening to the last byte.
///
/// # Errors
/// Transport failures.
pub async fn download(conn: &quinn::Connection, header: &Bytes) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(header).await?;
    send.finish()?;
    let mut got = 0u64;
    while let Some(chunk) = recv.read_chunk(usize::MAX, true).await? {
        got += chunk.bytes.len() as u64;
    }
    Ok((got, start.elapsed()))
}
