//! The two halves of one tunnel connection as tasks: the writer sends what its
//! [`SendQueue`] holds (already encoded records, coalesced into one write), the reader splits
//! the byte stream into datagrams ([`record::Decoder`]) for the endpoint's receive queue.

use super::queue::SendQueue;
use super::record::{Decoder, RecordError};
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// A datagram received, with the address the endpoint is to see it from.
pub(crate) type Inbound = (SocketAddr, Bytes);

/// Why a reader stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadEnd {
    /// The peer closed the stream.
    #[error("the peer closed the TCP connection")]
    Eof,
    /// The stream failed.
    #[error("reading the TCP connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something else than records.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Nothing arrived for too long.
    #[error("nothing arrived for {0:?}")]
    Idle(Duration),
    /// The endpoint is gone.
    #[error("the endpoint was closed")]
    EndpointGone,
}

/// Reads records from `reader` until it ends, handing each to `inbound` under `from`. With
/// `idle`, a stream silent that long is given up (QUIC keep-alives arrive every few seconds
/// on a live connection).
pub(crate) async fn read_records<R: AsyncRead + Unpin>(
    mut reader: R,
    decoder: Decoder,
    from: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    idle: Option<Duration>,
) -> ReadEnd {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(datagram)) => {
                    if inbound.send((from, datagram)).await.is_err() {
                        return ReadEnd::EndpointGone;
                    }
                }
                Ok(None) => break,
                Err(e) => return e.into(),
            }
        }
        let read = reader.read_buf(&mut buf);
        let n = match idle {
            Some(idle) => match tokio::time::timeout(idle, read).await {
                Ok(n) => n,
                Err(_) => return ReadEnd::Idle(idle),
            },
            None => read.await,
        };
        match n {
            Ok(0) => return ReadEnd::Eof,
            Ok(_) => {}
            Err(e) => return e.into(),
        }
    }
}

/// Writes what `queue` holds to `writer` until the queue is closed and empty (then shuts the
/// stream down) or a write fails. The queue is closed on return either way.
pub(crate) async fn write_records<W: AsyncWrite + Unpin>(
    mut writer: W,
    queue: Arc<SendQueue>,
) -> std::io::Result<()> {
    let result = async {
        let mut batch = Vec::new();
        let mut out = BytesMut::new();
        loop {
            let open = std::future::poll_fn(|cx| queue.poll_drain(cx, &mut batch)).await;
            if !batch.is_empty() {
                for item in batch.drain(..) {
                    out.extend_from_slice(&item);
                }
                writer.write_all(&out).await?;
                writer.flush().await?;
                out.clear();
            }
            if !open {
                return writer.shutdown().await;
            }
        }
    }
    .await;
    queue.close();
    result
}

#[cfg(test)]
mod tests {
    use super::super::queue::Push;
    use super::super::record::encode;
    use super::*;

    fn record(d: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        encode(d, 100, &mut out).unwrap();
        out.freeze()
    }

    #[tokio::test]
    async fn written_records_are_read_back_in_order_from_the_given_address() {
        let (a, b) = tokio::io::duplex(16);
        let queue = Arc::new(SendQueue::new(8));
        for d in [&b"one"[..], b"two", b"three"] {
            assert_eq!(queue.try_push(record(d)), Push::Queued);
        }
        queue.close();
        let from: SocketAddr = "192.0.2.1:9".parse().unwrap();
        let (tx, mut rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_records(a, Arc::clone(&queue)));
        let end = read_records(b, Decoder::new(100), from, tx, None).await;
        assert!(matches!(end, ReadEnd::Eof), "{end}");
        writer.await.unwrap().unwrap();
        let mut got = Vec::new();
        while let Ok((addr, d)) = rx.try_recv() {
            assert_eq!(addr, from);
            got.push(d);
        }
        assert_eq!(got, vec![&b"one"[..], b"two", b"three"]);
    }

    #[tokio::test]
    async fn garbage_ends_the_reader_with_the_record_error() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"\0\0garbage").await.unwrap();
        let (tx, _rx) = mpsc::channel(8);
        let end = read_records(
            b,
            Decoder::new(100),
            "192.0.2.1:9".parse().unwrap(),
            tx,
            None,
        )
        .await;
        assert!(matches!(end, ReadEnd::Record(RecordError::Empty)), "{end}");
    }

    #[tokio::test]
    async fn a_failed_write_closes_the_queue() {
        let (a, b) = tokio::io::duplex(16);
        drop(b);
        let queue = Arc::new(SendQueue::new(8));
        assert_eq!(queue.try_push(record(b"x")), Push::Queued);
        assert!(write_records(a, Arc::clone(&queue)).await.is_err());
        assert!(queue.is_closed());
        assert_eq!(queue.try_push(record(b"y")), Push::Closed);
    }
}
