//! Owner key rotation through the real binaries: the owner's laptop rotates its root; the host
//! (which pinned the old root at enrollment) verifies the old root's statement, pins the new
//! root and keeps the old one for its overlap, so a grant the old root signed still works; the
//! owner retires the old root early and the host stops trusting it, while the grants the
//! laptop re-signed with the new root keep working. `rotate-device` refuses for a root and
//! points at `rotate-owner`.

use crate::world::ZtWorld;
use anyhow::{Context, Result};

/// `cm-agent trust show --json` for the world's host.
fn trust_show(w: &ZtWorld) -> Result<serde_json::Value> {
    crate::world::trust_show(&w.agent_config, &w.agent_state)
}

/// (fingerprint, state) of each root `trust show` lists.
fn roots(show: &serde_json::Value) -> Vec<(String, String)> {
    show["roots"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["fingerprint"].as_str().unwrap_or_default().to_owned(),
                        r["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_rotates_their_root_and_the_host_follows_without_re_enrolling() -> Result<()> {
    let w = ZtWorld::start().await?;
    let bob = w.user("bob", "viewer", true)?;
    bob.ok(&["workspaces", "box"])?;

    // rotate-device does not replace a root, and says what does.
    let refused = w.owner.fails(&["admin", "trust", "rotate-device"])?;
    assert!(
        refused.contains("cm-tui admin trust rotate-owner"),
        "{refused}"
    );

    let out = w.owner.ok(&["admin", "trust", "rotate-owner", "--json"])?;
    let rotated: serde_json::Value = serde_json::from_str(&out)?;
    let old = rotated["old"].as_str().context("old")?.to_owned();
    let new = rotated["new"].as_str().context("new")?.to_owned();
    assert_ne!(old, new);
    assert!(rotated["resigned"].as_u64().unwrap_or(0) >= 2, "{out}");

    // The relay pushed the statement; the host took it and wrote it down.
    w.wait_agent_log(&["owner root rotated", &new])?;
    assert_eq!(
        roots(&trust_show(&w)?),
        vec![
            (new.clone(), "active".into()),
            (old.clone(), "retiring".into())
        ]
    );
    // The owner's laptop works with its new key; bob's grant, signed by the old root, still
    // works within the overlap.
    let listing = w.until_ok(&w.owner, &["workspaces", "box"], false)?;
    assert!(listing.contains("demo"), "{listing}");
    bob.ok(&["workspaces", "box"])?;

    // The owner retires the old root now: the host stops trusting it at once.
    w.owner.ok(&["admin", "trust", "retire-old-root"])?;
    w.wait_agent_log(&["retired by its owner"])?;
    // The host logs the retirement before it saves its pins, which `trust show` reads.
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    while roots(&trust_show(&w)?)
        .iter()
        .all(|(_, state)| state != "retired")
        && std::time::Instant::now() < deadline
    {
        // Polling another process's saved state; bounded by the deadline.
        std::thread::park_timeout(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        roots(&trust_show(&w)?),
        vec![
            (new.clone(), "active".into()),
            (old.clone(), "retired".into())
        ]
    );
    // Bob's laptop holds only the old root's grant: the host refuses it, the laptop fetches
    // the grant the owner re-signed with the new root, and bob works on.
    let listing = bob.ok(&["workspaces", "box"])?;
    assert!(listing.contains("demo"), "{listing}");
    w.owner.ok(&["workspaces", "box"])?;
    Ok(())
}
