//! Many simulated agents against one server process: enrolled straight into the relay's store,
//! then connected with real QUIC + TLS handshakes (and h1/h2 for the relay) from a few shared
//! client endpoints, a bounded number in flight.

use crate::netutil;
use crate::worlds::heartbeat_loop;
use anyhow::{Context, Result};
use cm_client as client;
use cm_relay::state::StateDir;
use proto::handshake::{Key, PeerKind};
use proto::ids::{CredId, HostId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Connections carried by one client endpoint (one UDP socket).
pub const PER_ENDPOINT: usize = 500;
/// Handshakes in flight at once.
pub const IN_FLIGHT: usize = 64;

/// Name of simulated agent `i` (short, so the host list stays small).
pub fn name(i: usize) -> String {
    format!("s{i:05}")
}

fn key(i: usize) -> Key {
    let mut b = [0x5au8; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Key::from_bytes(b)
}

/// Enrolls agents `0..n` directly in the store (what `cm-relay host add` does, minus the
/// token and the per-host audit row).
///
/// # Errors
/// Store failures.
pub fn enroll(dir: &StateDir, n: usize) -> Result<()> {
    let store = dir.open_store()?;
    let now = cm_client::time::now_ms();
    for i in 0..n {
        store.add_host(&HostId(name(i)), &key(i), now)?;
    }
    Ok(())
}

/// What connecting produced.
#[derive(Debug)]
pub struct Swarm {
    /// The client endpoints (closing them closes every connection).
    pub endpoints: Vec<quinn::Endpoint>,
    /// Time from the first connection attempt to the last completed handshake.
    pub connect_time: Duration,
    /// Handshakes that failed.
    pub failed: usize,
    /// Flip to make the agents' status change on every heartbeat.
    pub vary: Arc<AtomicBool>,
}

impl Swarm {
    /// Closes every connection.
    pub fn close(&self) {
        for ep in &self.endpoints {
            ep.close(0u32.into(), b"done");
        }
    }
}

/// Connects `n` clients to `addr`. With `heartbeat`, each runs h1/h2 as agent `i` and then
/// heart-beats every `heartbeat` (first beat at once); without, the QUIC handshake alone.
///
/// # Errors
/// Endpoint setup failures (individual handshake failures are counted instead).
pub async fn connect(
    addr: SocketAddr,
    pin: &str,
    n: usize,
    heartbeat: Option<Duration>,
) -> Result<Swarm> {
    connect_range(addr, pin.to_owned(), 0..n, heartbeat).await
}

/// [`connect`] for agents `ids` (names [`name`]`(i)`), e.g. one relay's share of a fleet.
///
/// # Errors
/// Endpoint setup failures (individual handshake failures are counted instead).
pub async fn connect_range(
    addr: SocketAddr,
    pin: String,
    ids: std::ops::Range<usize>,
    heartbeat: Option<Duration>,
) -> Result<Swarm> {
    let n = ids.len();
    let endpoints = (0..n.div_ceil(PER_ENDPOINT).max(1))
        .map(|_| netutil::client_endpoint(&pin))
        .collect::<Result<Vec<_>>>()?;
    let sem = Arc::new(Semaphore::new(IN_FLIGHT));
    let vary = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (k, i) in ids.enumerate() {
        let ep = endpoints[k / PER_ENDPOINT].clone();
        let (sem, vary) = (Arc::clone(&sem), Arc::clone(&vary));
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.context("semaphore closed")?;
            let conn = netutil::connect(&ep, addr).await?;
            if let Some(every) = heartbeat {
                let s =
                    client::authenticate(conn, PeerKind::Agent, &CredId(name(i)), &key(i)).await?;
                tokio::spawn(heartbeat_loop(s.control_send, s.control_recv, every, vary));
            } else {
                // Hold the connection (keep-alives only) until the endpoint closes.
                tokio::spawn(async move { conn.closed().await });
            }
            Ok::<_, anyhow::Error>(Instant::now())
        }));
    }
    let mut last = start;
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(done) => last = last.max(done),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("cm-bench: a simulated client failed: {e:#}");
                }
            }
        }
    }
    Ok(Swarm {
        endpoints,
        connect_time: last - start,
        failed,
        vary,
    })
}
