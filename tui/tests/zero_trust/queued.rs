//! A prompt for a zero-trust host that is offline: sealed on the laptop to the host's
//! certified key, signed without a channel, kept opaque by the relay, and run once when the
//! host is back.

use crate::world::{ZtWorld, relay_files_contain};
use anyhow::{Result, bail};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_to_an_offline_zero_trust_host_is_queued_sealed_and_runs_when_it_is_back()
-> Result<()> {
    let mut w = ZtWorld::start().await?;
    let new = w.owner.ok(&["new", "box", "demo", "--json"])?;
    let session = serde_json::from_str::<serde_json::Value>(&new)?["id"]
        .as_str()
        .expect("session id")
        .to_owned();

    w.stop_agent()?;
    let prompt = "zt-queued-prompt-6a1f";
    let deadline = Instant::now() + crate::harness::WAIT;
    let queued = loop {
        // Until the relay has noticed the host is gone, the prompt still goes to it directly.
        let out = w
            .owner
            .run(&["send", "box", "demo", "--session", &session, prompt])?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && text.contains("queued") {
            break text;
        }
        if Instant::now() > deadline {
            bail!(
                "the prompt was never queued: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    };
    let list = w.owner.ok(&["queue", "list"])?;
    assert!(list.contains("sealed"), "{list}");
    assert!(!list.contains(prompt), "the relay listed the text: {list}");
    assert!(
        !relay_files_contain(&w, prompt)?,
        "the relay stored the prompt's text"
    );

    w.start_agent()?;
    let deadline = Instant::now() + crate::harness::WAIT;
    loop {
        let history = w.owner.ok(&["messages", "box", "demo", &session])?;
        if history.contains(prompt) && history.contains("Hello from mock LLM") {
            assert_eq!(
                (
                    history.matches("--- user").count(),
                    history.matches("Hello from mock LLM").count()
                ),
                (1, 1),
                "the prompt ran once: {history}"
            );
            break;
        }
        if Instant::now() > deadline {
            bail!("the queued prompt never ran ({queued}): {history}");
        }
        std::thread::park_timeout(std::time::Duration::from_millis(100));
    }
    Ok(())
}
