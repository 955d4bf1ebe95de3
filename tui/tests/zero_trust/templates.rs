//! `template apply` to a zero-trust host through the real binaries: the owner's laptop fetches
//! the published template and sends it inside the signed, sealed body; the host checks the
//! operator's signature and role and applies it; the relay audits the template's name, version
//! and hash from the signed header and never sees the content. A relay that changes the sealed
//! body is refused by the host.

use crate::world::{ZtWorld, relay_files_contain};
use anyhow::Result;
use proto::header::Op;

const TEMPLATE: &str =
    r#"{"description":"zt-template-desc-41f0","opencode":{"instructions":["zt-instr-77aa.md"]}}"#;

fn publish(w: &ZtWorld) -> Result<()> {
    let file = w.tmp.path().join("team.json");
    std::fs::write(&file, TEMPLATE)?;
    let path = file.to_string_lossy().into_owned();
    w.owner.ok(&["template", "publish", "team", &path])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_is_applied_to_a_zero_trust_host_sealed_and_signed_by_the_operator() -> Result<()>
{
    let w = ZtWorld::start().await?;
    publish(&w)?;
    let out = w
        .owner
        .ok(&["template", "apply", "box", "demo", "team", "--json"])?;
    let applied: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(applied["template"]["name"], "team", "{out}");
    assert_eq!(applied["template"]["version"], 1, "{out}");
    w.wait_agent_log(&["template applied", "team"])?;
    // The workspace now runs it: the host reports the template it recorded.
    let hash = applied["template"]["hash"].as_str().unwrap_or_default();
    assert!(hash.starts_with("blake3:"), "{out}");

    // The relay audited name, version and hash from the signed header …
    let store = cm_relay::state::StateDir::new(w.tmp.path().join("relay")).open_store()?;
    let rows: Vec<String> = store
        .audit_tail(100)?
        .into_iter()
        .filter(|r| r.event.op == "template_apply")
        .filter_map(|r| r.event.reason)
        .collect();
    let want = format!("template team v1 {hash} (sealed)");
    assert!(
        rows.iter().any(|r| r.contains(&want)),
        "no audit row naming the applied template: {rows:?}"
    );
    // … and never saw what the body carried on its way to the host.
    assert!(
        w.evil.saw("\"op\":\"template_apply\""),
        "the capture is live"
    );
    for secret in ["zt-instr-77aa", "zt-template-desc-41f0"] {
        assert!(
            !w.evil.saw(secret),
            "the relay forwarded {secret:?} in clear"
        );
    }
    // (It stores the published template itself, as before: publishing is not end to end.)
    assert!(relay_files_contain(&w, "zt-instr-77aa")?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_changes_the_sealed_template_body_is_refused_by_the_host() -> Result<()> {
    let w = ZtWorld::start().await?;
    publish(&w)?;
    w.evil.set(|p| p.corrupt_body_of = Some(Op::TemplateApply));
    let refused = w
        .owner
        .fails(&["template", "apply", "box", "demo", "team"])?;
    assert_eq!(*w.evil.corrupted.lock().unwrap(), 1, "the body was altered");
    assert!(
        refused.contains("failed to open") || refused.contains("tampered"),
        "{refused}"
    );
    w.wait_agent_log(&["refused: relay tampered", "template_apply"])?;
    assert!(
        !w.agent_logged(&["template applied"]),
        "the host applied an altered template"
    );
    // The relay stops tampering: the same apply goes through.
    w.evil.set(|p| p.corrupt_body_of = None);
    w.owner.ok(&["template", "apply", "box", "demo", "team"])?;
    w.wait_agent_log(&["template applied", "team"])?;
    Ok(())
}
