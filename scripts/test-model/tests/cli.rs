//! The `cm-test-model` binary: readiness line, `--log` file, and clean exit on SIGTERM.
#![cfg(unix)]

mod common;

use std::process::Stdio;

use common::{TIMEOUT, chat};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn binary_prints_its_address_logs_requests_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("cm-test-model-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("requests.jsonl");
    let _ = std::fs::remove_file(&log);

    let mut child = Command::new(env!("CARGO_BIN_EXE_cm-test-model"))
        .args(["--listen", "127.0.0.1:0", "--log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(TIMEOUT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("cm-test-model listening on http://")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .parse()
        .unwrap();

    let body =
        json!({"model": "mock-model", "messages": [{"role": "user", "content": "Say hello"}]});
    let reply = chat(addr, &body).await;
    assert_eq!(
        reply.streamed_text().0,
        "Hello from mock LLM. You said: Say hello"
    );

    // The log line is written before the response is sent.
    let logged = std::fs::read_to_string(&log).unwrap();
    let record: Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(record["path"], "/v1/chat/completions");
    assert_eq!(record["authorization"], "Bearer mock-key");
    assert_eq!(record["body"], body);
    assert_eq!(record["reply"]["kind"], "text");

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
