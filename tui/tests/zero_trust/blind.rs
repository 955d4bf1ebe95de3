//! What a relay that keeps every byte it forwards learns: metadata (who, which host, which
//! operation, sizes), and nothing of the prompt, the answer, a file name or a diff line.

use crate::world::ZtWorld;
use anyhow::Result;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_reading_every_forwarded_byte_sees_no_prompt_answer_file_name_or_diff_line()
-> Result<()> {
    let w = ZtWorld::start().await?;
    // An uncommitted change and a new file: the diff and the listing carry them.
    std::fs::write(w.workspace.join("README.md"), "hello\nzt-diff-line-5e90\n")?;
    std::fs::write(w.workspace.join("zt-file-name-81c2.txt"), "x\n")?;

    let new = w.owner.ok(&["new", "box", "demo", "--json"])?;
    let session = serde_json::from_str::<serde_json::Value>(&new)?["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let answer = w.owner.ok(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        "zt-prompt-3b7d",
        "--wait",
    ])?;
    assert!(
        answer.contains("Hello from mock LLM") && answer.contains("zt-prompt-3b7d"),
        "the answer streamed back end to end: {answer}"
    );
    let listing = w.owner.ok(&["fs", "box", "demo", "ls"])?;
    assert!(listing.contains("zt-file-name-81c2.txt"), "{listing}");
    let diff = w
        .owner
        .ok(&["diff", "box", "demo", &session, "--worktree"])?;
    assert!(diff.contains("zt-diff-line-5e90"), "{diff}");
    let history = w.owner.ok(&["messages", "box", "demo", &session])?;
    assert!(history.contains("zt-prompt-3b7d"), "{history}");

    // The relay did see the traffic: the headers' metadata (operation names) is there …
    assert!(w.evil.saw("\"op\":\"prompt\""), "the capture is live");
    assert!(w.evil.seen.lock().unwrap().len() > 10_000, "and large");
    // … and none of the content.
    for secret in [
        "zt-prompt-3b7d",
        "Hello from mock LLM",
        "zt-file-name-81c2",
        "zt-diff-line-5e90",
    ] {
        assert!(!w.evil.saw(secret), "the relay saw {secret:?}");
    }
    Ok(())
}
