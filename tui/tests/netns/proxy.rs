//! A tiny HTTP CONNECT proxy, as a corporate network has: it answers `CONNECT host:port`
//! (with `Proxy-Authorization: Basic …` when it requires credentials) with `200` and then
//! copies bytes both ways; anything else gets `405`, wrong credentials `407`. It records every
//! tunnel it opened, so a test can tell its traffic went through here.

use crate::enter::{InNamespace, spawn_in};
use anyhow::Result;
use base64::Engine as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 8 * 1024;

/// What the proxy saw.
#[derive(Default)]
pub struct ProxyLog {
    /// `host:port` of every tunnel opened.
    pub tunnels: Vec<String>,
    /// Requests refused for missing or wrong credentials.
    pub refused_auth: usize,
}

/// The running proxy; stops on Drop.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<ProxyLog>>,
    _task: InNamespace,
}

impl ConnectProxy {
    /// Starts the proxy on `addr` inside the namespace at `ns_path`; with `credentials`
    /// (`user:pass`) it requires them.
    pub fn start(ns_path: &str, addr: SocketAddr, credentials: Option<&str>) -> Result<Self> {
        let log = Arc::new(Mutex::new(ProxyLog::default()));
        let expected = credentials.map(|c| base64::engine::general_purpose::STANDARD.encode(c));
        let shared = Arc::clone(&log);
        let (addr, task) = spawn_in(ns_path, move || {
            let std_listener = std::net::TcpListener::bind(addr)?;
            std_listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(std_listener)?;
            let bound = listener.local_addr()?;
            let serve = async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (log, expected) = (Arc::clone(&shared), expected.clone());
                    tokio::spawn(async move {
                        let _ = serve_one(client, expected.as_deref(), &log).await;
                    });
                }
            };
            Ok((bound, serve))
        })?;
        Ok(Self {
            addr,
            log,
            _task: task,
        })
    }

    /// The tunnels opened so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.log.lock().unwrap().tunnels.clone()
    }
}

/// Reads the request head (up to the blank line).
async fn read_head(client: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(head.len() < MAX_HEAD, "request head too long");
        anyhow::ensure!(client.read(&mut byte).await? == 1, "closed in the head");
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

async fn serve_one(
    mut client: TcpStream,
    expected: Option<&str>,
    log: &Mutex<ProxyLog>,
) -> Result<()> {
    let head = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
        client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    if let Some(want) = expected {
        let given = lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("proxy-authorization")
                .then(|| value.trim().to_owned())
        });
        // The scheme is case-insensitive, the token exact.
        let ok = given.is_some_and(|g| {
            g.split_once(' ').is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("basic") && token.trim() == want
            })
        });
        if !ok {
            log.lock().unwrap().refused_auth += 1;
            client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
                )
                .await?;
            return Ok(());
        }
    }
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    log.lock().unwrap().tunnels.push(target.to_owned());
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
