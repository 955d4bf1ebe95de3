//! Starting the test model in-process and the handle that controls it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::record::{RequestLog, RequestRecord};
use crate::server::{self, State};

/// How to start a test model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to bind; port 0 picks a free port (see [`TestModel::addr`]).
    pub listen: SocketAddr,
    /// If set, every request is appended to this file as one JSON line ([`RequestRecord`]).
    pub log_file: Option<PathBuf>,
}

impl Config {
    /// Listen on `listen`, no log file.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            log_file: None,
        }
    }
}

impl Default for Config {
    /// `127.0.0.1:0`, no log file.
    fn default() -> Self {
        Self::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }
}

/// A running test model. Dropping it stops the server (the listener and every open
/// connection, including streams in progress); [`TestModel::shutdown`] also waits for that.
#[derive(Debug)]
pub struct TestModel {
    addr: SocketAddr,
    log: Arc<RequestLog>,
    task: JoinHandle<()>,
}

/// Starts a test model on `addr` (e.g. `127.0.0.1:0`) on the current Tokio runtime.
///
/// # Errors
/// If the address cannot be bound.
pub async fn spawn(addr: SocketAddr) -> anyhow::Result<TestModel> {
    spawn_with(Config::new(addr)).await
}

/// Starts a test model with a full [`Config`].
///
/// # Errors
/// If the address cannot be bound or the log file cannot be opened.
pub async fn spawn_with(config: Config) -> anyhow::Result<TestModel> {
    let log = RequestLog::open(config.log_file.as_deref())
        .await
        .with_context(|| format!("cannot open log file {:?}", config.log_file))?;
    let log = Arc::new(log);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let state = Arc::new(State::new(Arc::clone(&log)));
    let task = tokio::spawn(server::serve(listener, state));
    Ok(TestModel { addr, log, task })
}

impl TestModel {
    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL to configure in clients, e.g. `http://127.0.0.1:4101/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The bodies of all `POST /v1/chat/completions` requests so far, in arrival order. A body
    /// that was not valid JSON appears as a JSON string holding its text.
    pub fn requests(&self) -> Vec<Value> {
        chat_bodies(&self.log.snapshot())
    }

    /// Every request so far (any route), with method, path, `Authorization` header, body and
    /// the scripted reply.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.log.snapshot()
    }

    /// Waits until at least `count` chat-completion requests have arrived and returns their
    /// bodies (as [`TestModel::requests`]). Never times out: wrap it in
    /// `tokio::time::timeout` in tests.
    pub async fn wait_for_requests(&self, count: usize) -> Vec<Value> {
        let records = self
            .log
            .wait_until(|records| {
                records.iter().filter(|r| r.is_chat_completion()).count() >= count
            })
            .await;
        chat_bodies(&records)
    }

    /// Stops the server and waits until the listener and all connections are closed.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // The task never ends by itself, so this only reports the cancellation.
        let _ = (&mut self.task).await;
    }
}

impl Drop for TestModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn chat_bodies(records: &[RequestRecord]) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r.is_chat_completion())
        .filter_map(|r| r.body.clone())
        .collect()
}
