//! End-to-end tests of the HTTP server started in-process on `127.0.0.1:0`.

mod common;

use std::net::SocketAddr;

use common::{TIMEOUT, chat, send};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

async fn start() -> cm_test_model::TestModel {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    cm_test_model::spawn(addr).await.expect("test model starts")
}

fn request(user_text: &str) -> Value {
    json!({
        "model": "mock-model",
        "max_tokens": 4096,
        "messages": [
            {"role": "system", "content": "You are opencode.\n<env>\n  Working directory: /tmp/ws\n</env>"},
            {"role": "user", "content": user_text}
        ],
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

#[tokio::test]
async fn streamed_echo_concatenates_to_the_full_text_and_ends_with_done() {
    let model = start().await;
    let body = request("Say hello");
    let reply = chat(model.addr(), &body).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "text/event-stream");
    let (text, deltas) = reply.streamed_text();
    assert_eq!(text, "Hello from mock LLM. You said: Say hello");
    assert!(deltas > 1, "expected several deltas, got {deltas}");

    let data = reply.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].is_u64());
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "mock-model");
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }

    assert_eq!(model.requests(), vec![body]);
    let records = model.records();
    assert_eq!(records[0].authorization.as_deref(), Some("Bearer mock-key"));
    assert_eq!(
        records[0]
            .reply
            .as_ref()
            .and_then(cm_test_model::Reply::full_text)
            .as_deref(),
        Some("Hello from mock LLM. You said: Say hello")
    );
}

#[tokio::test]
async fn tool_calls_get_increasing_ids_and_finish_with_tool_calls() {
    let model = start().await;
    for (n, text) in ["RUN_BASH: ls -la", "WRITE_FILE: notes/a.txt hi"]
        .iter()
        .enumerate()
    {
        let reply = chat(model.addr(), &request(text)).await;
        let data = reply.sse_data();
        let header: Value = serde_json::from_str(&data[1]).unwrap();
        let call = &header["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["id"], format!("call_{}", n + 1));
        let args: Value = serde_json::from_str(&data[2]).unwrap();
        let args = args["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap()
            .to_owned();
        let args: Value = serde_json::from_str(&args).unwrap();
        let finish: Value = serde_json::from_str(&data[3]).unwrap();
        assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
        if n == 1 {
            assert_eq!(call["function"]["name"], "write");
            assert_eq!(
                args,
                json!({"filePath": "/tmp/ws/notes/a.txt", "content": "hi\n"})
            );
        }
    }
}

#[tokio::test]
async fn fail400_is_a_non_retryable_client_error() {
    let model = start().await;
    let reply = chat(model.addr(), &request("FAIL400")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let body = reply.json();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], "mock bad request requested");
    let text = reply.text().to_lowercase();
    for word in ["server_error", "500", "429", "overloaded", "rate limit"] {
        assert!(!text.contains(word), "{text} contains {word}");
    }
}

#[tokio::test]
async fn malformed_json_is_a_clear_400_and_is_logged() {
    let model = start().await;
    let reply = send(
        model.addr(),
        Method::POST,
        "/v1/chat/completions",
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("request body is not valid JSON"),
        "{message}"
    );
    assert_eq!(model.requests(), vec![json!("{not json")]);

    let reply = chat(model.addr(), &json!({"messages": []})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.json()["error"]["message"],
        "request has no message with role \"user\""
    );
}

#[tokio::test]
async fn stream_false_gives_one_chat_completion_object() {
    let model = start().await;
    let mut body = request("ECHO_DELTAS: 3");
    body["stream"] = json!(false);
    let reply = chat(model.addr(), &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "application/json");
    let completion = reply.json();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "delta-0 delta-1 delta-2"
    );
}

#[tokio::test]
async fn models_lists_the_mock_model() {
    let model = start().await;
    let reply = send(model.addr(), Method::GET, "/v1/models", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["data"][0]["id"], "mock-model");
    let unknown = send(model.addr(), Method::GET, "/v2/nothing", None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(model.requests().is_empty());
    assert_eq!(model.records().len(), 2);
}

#[tokio::test]
async fn slow_stream_can_be_abandoned_and_the_server_keeps_serving() {
    let model = start().await;
    // Read only the first chunk of a long slow stream, then hang up.
    let abandoned = tokio::time::timeout(
        TIMEOUT,
        common::first_frame(model.addr(), &request("SLOW 1000 1000ms")),
    )
    .await
    .expect("first chunk in time");
    assert!(abandoned.starts_with("data: "), "{abandoned}");
    assert_eq!(model.wait_for_requests(1).await.len(), 1);

    let reply = chat(model.addr(), &request("SLOW 3 10ms")).await;
    assert_eq!(
        reply.streamed_text(),
        ("chunk 0 chunk 1 chunk 2 ".to_owned(), 3)
    );
    assert_eq!(reply.sse_data().last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let model = start().await;
    let addr = model.addr();
    assert_eq!(chat(addr, &request("hi")).await.status, StatusCode::OK);
    model.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
