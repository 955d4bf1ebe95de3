//! One forwarded connection: the operator's stream and the TCP connection, bytes copied both
//! ways until both sides finished (a finish is passed on as a half-close), either side fails,
//! the operator stops reading, or nothing moved for the idle timeout.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Size of one read.
const CHUNK: usize = 64 * 1024;

/// What one connection carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// Bytes from the operator to the port.
    pub up: u64,
    /// Bytes from the port to the operator.
    pub down: u64,
    /// How it ended.
    pub end: End,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum End {
    /// Both sides finished.
    #[default]
    Finished,
    /// A side failed (reset, refused write).
    Failed,
    /// The operator stopped reading.
    PeerGone,
    /// Nothing moved for the idle timeout.
    Idle,
}

struct Meter {
    start: Instant,
    last_ms: AtomicU64,
}

impl Meter {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed();
        now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

async fn copy<R, W>(
    from: &mut R,
    to: &mut W,
    count: &AtomicU64,
    meter: &Meter,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        meter.touch();
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        meter.touch();
    }
}

/// Splices the operator's stream (`op_recv`, after the `prefix` already read from it, and
/// `op_send`) with `tcp` until it ends.
pub async fn splice<R, W, T, G>(
    op_recv: &mut R,
    prefix: &[u8],
    op_send: &mut W,
    tcp: T,
    idle_timeout: Duration,
    peer_gone: G,
) -> Carried
where
    R: AsyncRead + Unpin + Send + ?Sized,
    W: AsyncWrite + Unpin + Send + ?Sized,
    T: AsyncRead + AsyncWrite + Send,
    G: Future<Output = ()> + Send,
{
    let (mut tcp_r, mut tcp_w) = tokio::io::split(tcp);
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    let meter = Meter {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    let upward = async {
        if !prefix.is_empty() {
            tcp_w.write_all(prefix).await?;
            up.fetch_add(prefix.len() as u64, Ordering::Relaxed);
        }
        copy(op_recv, &mut tcp_w, &up, &meter).await
    };
    let downward = copy(&mut tcp_r, op_send, &down, &meter);
    let idle = async {
        let check = (idle_timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(check).await;
            if meter.idle_for() >= idle_timeout {
                return;
            }
        }
    };
    let end = tokio::select! {
        r = async { tokio::try_join!(upward, downward) } => match r {
            Ok(_) => End::Finished,
            Err(e) => {
                tracing::debug!(error = %e, "forwarded connection failed");
                End::Failed
            }
        },
        () = idle => End::Idle,
        () = peer_gone => End::PeerGone,
    };
    Carried {
        up: up.load(Ordering::Relaxed),
        down: down.load(Ordering::Relaxed),
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_go_both_ways_and_a_finish_is_passed_on() {
        let (mut op_side, agent_side) = tokio::io::duplex(1024);
        let (mut server, tcp) = tokio::io::duplex(1024);
        let (mut agent_r, mut agent_w) = tokio::io::split(agent_side);
        let spliced = tokio::spawn(async move {
            splice(
                &mut agent_r,
                b"GET ",
                &mut agent_w,
                tcp,
                Duration::from_secs(60),
                std::future::pending(),
            )
            .await
        });
        op_side.write_all(b"/ HTTP/1.0\r\n\r\n").await.unwrap();
        op_side.shutdown().await.unwrap();
        let mut request = Vec::new();
        server.read_to_end(&mut request).await.unwrap();
        assert_eq!(request, b"GET / HTTP/1.0\r\n\r\n");
        server
            .write_all(b"HTTP/1.0 200 OK\r\n\r\nhi")
            .await
            .unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        let mut answer = Vec::new();
        op_side.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"HTTP/1.0 200 OK\r\n\r\nhi");
        let carried = spliced.await.unwrap();
        assert_eq!(
            carried,
            Carried {
                up: 18,
                down: 21,
                end: End::Finished
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_with_no_traffic_ends_after_the_idle_timeout() {
        let (_op_side, agent_side) = tokio::io::duplex(64);
        let (_server, tcp) = tokio::io::duplex(64);
        let (mut r, mut w) = tokio::io::split(agent_side);
        let carried = splice(
            &mut r,
            b"",
            &mut w,
            tcp,
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await;
        assert_eq!(carried.end, End::Idle);
    }
}
