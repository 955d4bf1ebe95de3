//! Scenario 7, port forwarding: a plain HTTP/1.1 server on the host's loopback, fetched
//! directly (TCP) and through `port_forward` (operator → relay → agent → TCP), in the same
//! run, with the release `cm-relay` and `cm-agent`. The forwarded side speaks HTTP straight
//! over the `port_forward` stream, as `cm-tui forward` does for each accepted connection (its
//! extra loopback TCP hop on the laptop is not included).
//!
//! Rows: bulk throughput of one large body; request latency on one kept-alive connection; a
//! new connection (TCP) or stream (forward) per request; and a prompt's first text delta
//! (OpenCode on the test model, watched through the relay on the operator connection that
//! also carries the forward) while a large download runs through the forward, against the
//! same with no download.

use crate::options::Options;
use crate::real::{self, RealWorld, Tools};
use crate::report::Row;
use crate::stats::Percentiles;
use anyhow::{Context, Result, bail, ensure};
use cm_client::framed::{FramedRecv, send_frame};
use proto::event::{Event, EventFrame};
use proto::forward::{ForwardOpened, ForwardTarget, STREAM_PRIORITY};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::header::Op;
use proto::message::Reply;
use proto::ops::WatchQuery;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

const SCENARIO: &str = "7 forward";
/// Size of one chunk the server writes.
const CHUNK: usize = 256 * 1024;
/// Requests with a new connection each.
const NEW_CONNECTIONS: usize = 200;
/// Prompts timed idle, and again during the download.
const PROMPTS: usize = 5;

/// The server: `GET /big/<bytes>` answers that many bytes, anything else `ok`; keep-alive.
async fn serve(listener: TcpListener) {
    let chunk = vec![b'x'; CHUNK];
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.set_nodelay(true);
        let chunk = chunk.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let Ok(Some(head)) = read_head(&mut s, &mut buf).await else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let len: usize = path
                    .strip_prefix("/big/")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(2);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = len;
                while left > 0 {
                    let n = left.min(CHUNK);
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
            }
        });
    }
}

/// Reads one request or response head (up to the blank line) from `r`, keeping what follows
/// in `buf`; `None` at a clean end.
async fn read_head<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<Option<String>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        let mut more = [0u8; 4096];
        let n = r.read(&mut more).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&more[..n]);
    }
}

/// One HTTP/1.1 client connection over any byte stream.
struct Http<R, W> {
    r: R,
    w: W,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Http<R, W> {
    /// `GET path`; returns the body length read.
    async fn get(&mut self, path: &str) -> Result<usize> {
        self.w
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
            .await?;
        self.w.flush().await?;
        let head = read_head(&mut self.r, &mut self.buf)
            .await?
            .context("the connection ended before an answer")?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .context("no Content-Length")?
            .trim()
            .parse()?;
        let mut got = self.buf.len().min(len);
        self.buf.drain(..got);
        let mut sink = vec![0u8; CHUNK];
        while got < len {
            let n = self.r.read(&mut sink).await?;
            ensure!(n > 0, "the body ended after {got} of {len} bytes");
            let used = n.min(len - got);
            got += used;
            self.buf.extend_from_slice(&sink[used..n]);
        }
        Ok(got)
    }
}

type Direct = Http<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf>;
type Forwarded = Http<quinn::RecvStream, quinn::SendStream>;

async fn direct(port: u16) -> Result<Direct> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let (r, w) = s.into_split();
    Ok(Http {
        r,
        w,
        buf: Vec::new(),
    })
}

async fn forwarded(world: &RealWorld, conn: &quinn::Connection, port: u16) -> Result<Forwarded> {
    let mut header = world.header(Op::PortForward, None);
    header.workspace = None;
    let (mut send, recv) = conn.open_bi().await?;
    let _ = send.set_priority(STREAM_PRIORITY);
    send_frame(&mut send, &header, MAX_HEADER_LEN).await?;
    send_frame(&mut send, &ForwardTarget { port }, MAX_FRAME_LEN).await?;
    let mut recv = FramedRecv::new(recv, MAX_FRAME_LEN);
    let first: Reply<ForwardOpened> = recv.expect().await?;
    if let Reply::Error(e) = first {
        bail!("port_forward refused: {}", e.message);
    }
    let buf = recv.take_buffered().to_vec();
    Ok(Http {
        r: recv.into_inner(),
        w: send,
        buf,
    })
}

/// Sends a prompt and times its first text delta on a watch over `conn`; returns once the
/// turn is idle again.
async fn first_delta(
    world: &RealWorld,
    conn: &quinn::Connection,
    session: &str,
) -> Result<Duration> {
    let h = world.header(Op::WatchEvents, None);
    let (mut send, mut recv) = cm_client::subscribe(conn, &h).await?;
    send_frame(&mut send, &WatchQuery { after_seq: None }, MAX_FRAME_LEN).await?;
    let _ = send.finish();
    if let Reply::Error(e) = recv.expect::<Reply<u64>>().await? {
        bail!("watch_events refused: {}", e.message);
    }
    let t = Instant::now();
    world.prompt(session, "ECHO_DELTAS: 5").await?;
    let mut first = None;
    loop {
        let Some(frame) = recv.next::<EventFrame>().await? else {
            bail!("the relay ended the watch");
        };
        match frame.event {
            Event::TextDelta { session: s, .. } if s == session && first.is_none() => {
                first = Some(t.elapsed());
            }
            Event::SessionIdle { session: s } if s == session && first.is_some() => {
                return first.context("no delta");
            }
            _ => {}
        }
    }
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    v.get(v.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// The prompt row: first text delta idle, then while a download runs through a forward on the
/// same operator connection.
async fn prompt_during_download(
    world: &RealWorld,
    conn: &quinn::Connection,
    port: u16,
) -> Result<Row> {
    world.start_opencode().await?;
    let session = world.create_session().await?;
    first_delta(world, conn, &session).await?;
    let mut idle = Vec::new();
    for _ in 0..PROMPTS {
        idle.push(first_delta(world, conn, &session).await?);
    }
    // Far more than can arrive while the prompts run: the download is still going at the end.
    let mut download = forwarded(world, conn, port).await?;
    let running = tokio::spawn(async move { download.get(&format!("/big/{}", 1u64 << 40)).await });
    let mut busy = Vec::new();
    for _ in 0..PROMPTS {
        busy.push(first_delta(world, conn, &session).await?);
    }
    ensure!(
        !running.is_finished(),
        "the download ended before the prompts did"
    );
    running.abort();
    let (i, b) = (median_ms(idle), median_ms(busy));
    Ok(Row {
        raw: format!("{i:.1} (no download)"),
        delta: format!("×{:.2}", b / i),
        goal: "≤ 2× idle".into(),
        verdict: crate::report::Verdict::check(b <= 2.0 * i),
        ..Row::info(
            SCENARIO,
            &format!(
                "ms from prompt to its first text delta on the watch, median of {PROMPTS}, while a download runs through a forward on the same connection"
            ),
            format!("{b:.1}"),
        )
    })
}

fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

async fn timed_get<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    c: &mut Http<R, W>,
    path: &str,
) -> Result<Duration> {
    let t = Instant::now();
    c.get(path).await?;
    Ok(t.elapsed())
}

async fn measure(opts: &Options, world: &RealWorld, port: u16) -> Result<Vec<Row>> {
    let op = world.operator().await?;
    let conn = op.conn.clone();
    let bulk = usize::try_from(opts.bulk_mib)? * 1024 * 1024;
    let big = format!("/big/{bulk}");
    // Warm both paths (the agent's /proc scan, TCP slow start).
    direct(port).await?.get("/small").await?;
    forwarded(world, &conn, port).await?.get("/small").await?;

    let mut rows = Vec::new();
    let d = timed_get(&mut direct(port).await?, &big).await?;
    let f = timed_get(&mut forwarded(world, &conn, port).await?, &big).await?;
    let (fm, dm) = (mb_per_s(bulk, f), mb_per_s(bulk, d));
    rows.push(Row {
        raw: format!("{dm:.0} (direct TCP)"),
        delta: format!("×{:.2}", fm / dm),
        ..Row::info(
            SCENARIO,
            &format!("MB/s, one HTTP GET of {} MiB", opts.bulk_mib),
            format!("{fm:.0}"),
        )
    });

    let n = opts.round_trips;
    let (mut dc, mut fc) = (direct(port).await?, forwarded(world, &conn, port).await?);
    let (mut ds, mut fs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        ds.push(timed_get(&mut dc, "/small").await?);
        fs.push(timed_get(&mut fc, "/small").await?);
    }
    let (dp, fp) = (Percentiles::of(ds), Percentiles::of(fs));
    rows.push(Row {
        raw: dp.two(),
        delta: format!("+{}", fp.minus(&dp).two()),
        ..Row::info(
            SCENARIO,
            &format!("p50/p99 µs per HTTP request, one kept-alive connection (n={n})"),
            fp.two(),
        )
    });

    let (mut ds, mut fs) = (Vec::new(), Vec::new());
    for _ in 0..NEW_CONNECTIONS.min(n) {
        let t = Instant::now();
        direct(port).await?.get("/small").await?;
        ds.push(t.elapsed());
        let t = Instant::now();
        forwarded(world, &conn, port).await?.get("/small").await?;
        fs.push(t.elapsed());
    }
    let (dp, fp) = (Percentiles::of(ds), Percentiles::of(fs));
    rows.push(Row {
        raw: dp.two(),
        delta: format!("+{}", fp.minus(&dp).two()),
        ..Row::info(
            SCENARIO,
            &format!(
                "p50/p99 µs per HTTP request on a new connection (forward: a new stream) (n={})",
                dp.n
            ),
            fp.two(),
        )
    });
    rows.push(prompt_during_download(world, &conn, port).await?);
    op.conn.close(0u32.into(), b"done");
    Ok(rows)
}

fn run_world(opts: &Options, tools: &Tools) -> Result<Vec<Row>> {
    let rt = tokio::runtime::Runtime::new()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = server_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    server_rt.spawn(serve(listener));
    let extra = format!("\n[forward]\nallow = [{port}]\n");
    let world = RealWorld::start_with(opts, tools, &rt, &extra)?;
    let rows = rt.block_on(measure(opts, &world, port));
    world.stop();
    rows
}

/// Runs scenario 7.
///
/// # Errors
/// Never for a missing tool (the row says skipped); a failed measurement is a failed row.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let metric = "forwarded HTTP vs direct";
    let tools = match real::tools(opts) {
        Ok(t) => t,
        Err(why) => return Ok(vec![real::skipped(SCENARIO, metric, &why)]),
    };
    Ok(match run_world(opts, &tools) {
        Ok(rows) => rows,
        Err(e) => vec![real::failed(SCENARIO, metric, &e)],
    })
}
