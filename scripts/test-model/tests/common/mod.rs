//! A minimal hyper HTTP/1.1 client for talking to the test model in integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// Upper bound for any single exchange; a hang fails the test instead of blocking CI.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A received response, body fully read, with the body frames as they arrived.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub frames: Vec<Bytes>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8(self.frames.concat()).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text()).expect("JSON body")
    }

    /// The `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        let text = self.text();
        assert!(
            text.ends_with("\n\n"),
            "SSE body must end with a blank line: {text:?}"
        );
        text.split_terminator("\n\n")
            .map(|event| {
                event
                    .strip_prefix("data: ")
                    .unwrap_or_else(|| panic!("not a data event: {event:?}"))
                    .to_owned()
            })
            .collect()
    }

    /// The concatenated `delta.content` of an SSE chat-completion stream and the number of
    /// non-empty deltas.
    pub fn streamed_text(&self) -> (String, usize) {
        let mut text = String::new();
        let mut deltas = 0;
        for data in self.sse_data() {
            if data == "[DONE]" {
                continue;
            }
            let chunk: Value = serde_json::from_str(&data).expect("chunk JSON");
            if let Some(content) = chunk["choices"][0]["delta"]["content"].as_str()
                && !content.is_empty()
            {
                deltas += 1;
                text.push_str(content);
            }
        }
        (text, deltas)
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn send(addr: SocketAddr, method: Method, path: &str, body: Option<Vec<u8>>) -> Reply {
    tokio::time::timeout(TIMEOUT, send_inner(addr, method, path, body))
        .await
        .expect("request timed out")
}

async fn send_inner(addr: SocketAddr, method: Method, path: &str, body: Option<Vec<u8>>) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, "Bearer mock-key");
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    finish(sender.send_request(request).await.expect("response")).await
}

async fn finish(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("body frame").into_data() {
            frames.push(data);
        }
    }
    Reply {
        status,
        content_type,
        frames,
    }
}

/// POSTs a JSON body to `/v1/chat/completions`.
pub async fn chat(addr: SocketAddr, body: &Value) -> Reply {
    send(
        addr,
        Method::POST,
        "/v1/chat/completions",
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// POSTs a chat request and returns only the first body frame, then drops the connection.
pub async fn first_frame(addr: SocketAddr, body: &Value) -> String {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let connection = tokio::spawn(connection);
    let request = Request::post("/v1/chat/completions")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let mut body = response.into_body();
    let frame = body
        .frame()
        .await
        .expect("a frame")
        .expect("frame ok")
        .into_data()
        .expect("data frame");
    connection.abort();
    String::from_utf8(frame.to_vec()).expect("utf-8")
}
