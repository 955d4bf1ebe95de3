//! The log of requests the test model received: kept in memory for assertions (with a way to
//! wait for new entries) and optionally appended to a JSON-lines file.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, watch};

use crate::script::Reply;

/// One received HTTP request, as logged. Serialized as one line of the `--log` file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// Arrival time in Unix seconds.
    pub time: f64,
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header, if any (OpenCode sends `Bearer <apiKey>`).
    pub authorization: Option<String>,
    /// The body: parsed JSON, or a JSON string holding the raw text if it was not valid JSON;
    /// `None` for an empty body.
    pub body: Option<Value>,
    /// The scripted reply, for chat completions that could be scripted.
    pub reply: Option<Reply>,
    /// Why the request was rejected, if it was.
    pub error: Option<String>,
}

impl RequestRecord {
    /// A record of a request that arrived now, without body, reply or error yet.
    pub(crate) fn new(method: &str, path: &str, authorization: Option<String>) -> Self {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            time,
            method: method.to_owned(),
            path: path.to_owned(),
            authorization,
            body: None,
            reply: None,
            error: None,
        }
    }

    /// Whether this is a chat-completions request.
    pub fn is_chat_completion(&self) -> bool {
        self.method == "POST" && self.path == crate::server::CHAT_COMPLETIONS_PATH
    }
}

/// The shared request log.
#[derive(Debug)]
pub(crate) struct RequestLog {
    records: watch::Sender<Vec<RequestRecord>>,
    file: Option<Mutex<tokio::fs::File>>,
}

impl RequestLog {
    /// A log kept in memory and, if `path` is given, appended to that file (created if missing).
    pub(crate) async fn open(path: Option<&Path>) -> std::io::Result<Self> {
        let file = match path {
            Some(path) => Some(Mutex::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?,
            )),
            None => None,
        };
        Ok(Self {
            records: watch::Sender::new(Vec::new()),
            file,
        })
    }

    /// Appends a record: first to the file (one JSON line), then in memory, waking waiters.
    pub(crate) async fn push(&self, record: RequestRecord) {
        if let Some(file) = &self.file {
            let mut line = serde_json::to_string(&record).unwrap_or_else(|e| {
                serde_json::json!({"error": format!("cannot serialize record: {e}")}).to_string()
            });
            line.push('\n');
            let mut file = file.lock().await;
            if let Err(e) = file.write_all(line.as_bytes()).await {
                eprintln!("cm-test-model: cannot write the request log: {e}");
            } else if let Err(e) = file.flush().await {
                eprintln!("cm-test-model: cannot flush the request log: {e}");
            }
        }
        self.records.send_modify(|records| records.push(record));
    }

    /// A copy of all records so far.
    pub(crate) fn snapshot(&self) -> Vec<RequestRecord> {
        self.records.borrow().clone()
    }

    /// Waits until `done` holds for the records, then returns a copy of them.
    pub(crate) async fn wait_until(
        &self,
        mut done: impl FnMut(&[RequestRecord]) -> bool,
    ) -> Vec<RequestRecord> {
        let mut rx = self.records.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we borrow it.
        match rx.wait_for(|records| done(records)).await {
            Ok(records) => records.clone(),
            Err(_) => self.snapshot(),
        }
    }
}
