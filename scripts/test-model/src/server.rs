//! The HTTP side: accepts connections, routes requests, logs them and sends the scripted reply.
//!
//! Routes: `POST /v1/chat/completions` (SSE unless the body says `"stream": false`) and
//! `GET /v1/models`. Everything else is 404 (or 405 for a known path with another method).
//! Every request is logged before its response is returned, so a client that has seen the
//! response (or its first byte) can rely on the log containing the request.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::MODEL_ID;
use crate::body::ReplyBody;
use crate::chunks::{self, ChunkMeta};
use crate::record::{RequestLog, RequestRecord};
use crate::script::{self, Reply};

/// The chat-completions route.
pub(crate) const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// The model-list route.
const MODELS_PATH: &str = "/v1/models";
/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// SSE events buffered ahead of the connection.
const STREAM_BUFFER: usize = 8;

/// State shared by all connections.
#[derive(Debug)]
pub(crate) struct State {
    log: Arc<RequestLog>,
    completions: AtomicU64,
    tool_calls: AtomicU64,
}

impl State {
    pub(crate) fn new(log: Arc<RequestLog>) -> Self {
        Self {
            log,
            completions: AtomicU64::new(0),
            tool_calls: AtomicU64::new(0),
        }
    }

    /// Fresh ids for one response: `chatcmpl-<n>`, and `call_<n>` if it is a tool call.
    fn meta(&self, request: &Value, reply: &Reply) -> ChunkMeta {
        let completion = self.completions.fetch_add(1, Ordering::Relaxed) + 1;
        let tool_call_id = match reply {
            Reply::ToolCall { .. } => {
                format!(
                    "call_{}",
                    self.tool_calls.fetch_add(1, Ordering::Relaxed) + 1
                )
            }
            Reply::Text { .. } | Reply::Error { .. } => String::new(),
        };
        ChunkMeta {
            id: format!("chatcmpl-{completion}"),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(MODEL_ID)
                .to_owned(),
            tool_call_id,
        }
    }
}

/// Accepts connections forever. Aborting this future's task aborts every connection too.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    eprintln!("cm-test-model: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    let service = service_fn(move |request| handle(request, Arc::clone(&state)));
    // Errors here are clients hanging up mid-request; nothing to do about them.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<ReplyBody>, Infallible> {
    let authorization = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().path().to_owned();
    let mut record = RequestRecord::new(request.method().as_str(), &path, authorization);
    let response = match (request.method(), path.as_str()) {
        (&Method::POST, CHAT_COMPLETIONS_PATH) => chat(request, &state, &mut record).await,
        (&Method::GET, MODELS_PATH) => json_response(StatusCode::OK, &models()),
        (_, CHAT_COMPLETIONS_PATH | MODELS_PATH) => reject(
            &mut record,
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this path",
        ),
        _ => reject(&mut record, StatusCode::NOT_FOUND, "no such route"),
    };
    state.log.push(record).await;
    Ok(response)
}

async fn chat(
    request: Request<Incoming>,
    state: &State,
    record: &mut RequestRecord,
) -> Response<ReplyBody> {
    let bytes = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return reject(
                record,
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body is larger than 64 MiB",
            );
        }
        Err(e) => {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                &format!("cannot read request body: {e}"),
            );
        }
    };
    let request: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            if !bytes.is_empty() {
                record.body = Some(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            }
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                &format!("request body is not valid JSON: {e}"),
            );
        }
    };
    record.body = Some(request.clone());
    let reply = match script::plan(&request) {
        Ok(reply) => reply,
        Err(e) => return reject(record, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    record.reply = Some(reply.clone());
    respond(state, &request, &reply)
}

/// Sends a planned reply: an error, an SSE stream, or (for `"stream": false`) one JSON object.
fn respond(state: &State, request: &Value, reply: &Reply) -> Response<ReplyBody> {
    if let Reply::Error {
        status,
        error_type,
        message,
    } = reply
    {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
        return json_response(status, &chunks::error_body(error_type, message));
    }
    let meta = state.meta(request, reply);
    let streaming = request.get("stream").and_then(Value::as_bool) != Some(false);
    if streaming {
        sse_response(chunks::stream_events(reply, &meta))
    } else {
        let completion = chunks::completion(reply, &meta).unwrap_or(Value::Null);
        json_response(StatusCode::OK, &completion)
    }
}

fn models() -> Value {
    json!({"object": "list", "data": [
        {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "cm-test-model"}
    ]})
}

/// Records why a request was rejected and answers it with an `invalid_request_error` body.
fn reject(record: &mut RequestRecord, status: StatusCode, message: &str) -> Response<ReplyBody> {
    record.error = Some(message.to_owned());
    json_response(
        status,
        &chunks::error_body("invalid_request_error", message),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<ReplyBody> {
    let mut response = Response::new(ReplyBody::full(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Streams the events from a producer task that honours each event's delay. The task stops
/// as soon as the client is gone (the body, and with it the receiver, is dropped).
fn sse_response(events: Vec<chunks::SseEvent>) -> Response<ReplyBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    tokio::spawn(async move {
        for event in events {
            if !event.delay.is_zero() {
                tokio::time::sleep(event.delay).await;
            }
            if tx.send(Bytes::from(event.data)).await.is_err() {
                break;
            }
        }
    });
    let mut response = Response::new(ReplyBody::Channel(rx));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
