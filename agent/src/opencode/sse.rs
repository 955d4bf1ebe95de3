//! Server-sent events from OpenCode's `GET /event`: a pure incremental parser and the stream
//! that feeds it from the HTTP body. OpenCode sends `data: <json>` blocks, no `id:` lines (so
//! there is no resume), and a `server.heartbeat` every 10 s.

use super::client::ClientError;
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::collections::VecDeque;

/// Longest line kept while waiting for its end; a longer one is dropped (and logged) rather
/// than growing without bound.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// Incremental SSE parser: feed bytes, get the `data` of each complete event.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
    overflow: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `chunk`; returns the data of every event it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            rest = &tail[1..];
            if self.overflow {
                self.overflow = false;
                self.line.clear();
                continue;
            }
            self.line.extend_from_slice(head);
            let line = std::mem::take(&mut self.line);
            self.handle_line(&line, &mut out);
        }
        if !self.overflow {
            self.line.extend_from_slice(rest);
            if self.line.len() > MAX_LINE {
                tracing::warn!(
                    len = self.line.len(),
                    "dropping an oversize event line from OpenCode"
                );
                self.line.clear();
                self.overflow = true;
            }
        }
        out
    }

    fn handle_line(&mut self, line: &[u8], out: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !self.data.is_empty() {
                out.push(self.data.join("\n"));
                self.data.clear();
            }
            return;
        }
        if line.starts_with(b":") {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        if field == "data" {
            self.data.push(value.to_owned());
        }
    }
}

/// OpenCode's event stream: JSON events as they arrive.
#[derive(Debug)]
pub struct EventStream {
    body: hyper::body::Incoming,
    parser: SseParser,
    ready: VecDeque<String>,
}

impl EventStream {
    pub(crate) fn new(body: hyper::body::Incoming) -> Self {
        Self {
            body,
            parser: SseParser::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next event; `Ok(None)` when OpenCode ended the stream.
    ///
    /// # Errors
    /// The connection failed.
    pub async fn next(&mut self) -> Result<Option<Value>, ClientError> {
        loop {
            while let Some(data) = self.ready.pop_front() {
                match serde_json::from_str(&data) {
                    Ok(v) => return Ok(Some(v)),
                    Err(e) => {
                        tracing::debug!(error = %e, "skipping a non-JSON event from OpenCode")
                    }
                }
            }
            let Some(frame) = self.body.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| ClientError::Transport {
                what: "GET /event".into(),
                reason: e.to_string(),
            })?;
            if let Ok(data) = frame.into_data() {
                self.ready.extend(self.parser.push(&data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: {\"type\":\"server.conn").is_empty());
        assert_eq!(
            p.push(b"ected\"}\n\nda"),
            vec![r#"{"type":"server.connected"}"#]
        );
        assert_eq!(
            p.push(b"ta: {\"a\":1}\r\n\r\n: comment\n\ndata:x\ndata: y\n\n"),
            vec![r#"{"a":1}"#.to_owned(), "x\ny".to_owned()]
        );
        assert!(p.push(b"event: ping\n\n").is_empty());
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        let text = b"data: {\"n\":1}\n\ndata: {\"n\":2}\n\n";
        let mut p = SseParser::new();
        let got: Vec<String> = text.iter().flat_map(|b| p.push(&[*b])).collect();
        assert_eq!(got, vec![r#"{"n":1}"#, r#"{"n":2}"#]);
    }
}
