//! The full-screen app's administration screen enrolls hosts zero-trust, as `cm-tui admin host
//! add` does: the owner's app (its connection task, as the screen drives it) asks the relay for
//! a token, finishes it on the laptop with the owner's root and a bind secret it keeps, and a
//! real `cm-agent enroll` with that token pins the same root as the host the CLI enrolled.

use crate::owner_app::OwnerApp;
use crate::world::{ZtWorld, enroll, trust_show};
use anyhow::{Context, Result, bail};
use cm_tui::call::{AdminCall, Response};
use proto::admin::HostAdd;
use proto::ids::HostId;
use proto::token::EnrollmentToken;
use std::path::Path;

/// The fingerprints of the roots `cm-agent trust show --json` lists for an agent.
fn pinned_roots(config: &Path, state: &Path) -> Result<Vec<String>> {
    let show = trust_show(config, state)?;
    Ok(show["roots"]
        .as_array()
        .context("no roots array in trust show")?
        .iter()
        .filter_map(|r| r["fingerprint"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_enrolled_from_the_admin_screen_pins_the_owners_root() -> Result<()> {
    let w = ZtWorld::start().await?;
    let mut app = OwnerApp::connect(&w).await?;
    let profile = app.profile.clone();
    // What the screen's "enroll host: box2" sends.
    let call = AdminCall::HostAdd(HostAdd {
        name: "box2".into(),
        relay_addr: None,
    });
    let enrolled = match app.ask(7, call).await? {
        Ok(Response::Enrolled(e)) => e,
        other => bail!("host_add answered {other:?}"),
    };

    let token = EnrollmentToken::decode(&enrolled.token)?;
    assert!(!token.roots.is_empty(), "the token pins owner roots");
    let bind = token.bind.context("the token carries a bind secret")?;
    // The laptop keeps the bind secret (its next runs certify the host's key claim by it).
    let file = cm_tui::trust::file::TrustFile::read(&cm_tui::trust::file_path(&profile))?;
    assert_eq!(file.binds.get(&HostId::from("box2")), Some(&bind));

    // A real agent enrolled with it pins the owner's root, as the CLI-enrolled host does.
    let config = w.tmp.path().join("agent2/agent.toml");
    let state = w.tmp.path().join("agent2/state");
    enroll(&config, &state, &enrolled.token)?;
    let screen_host = pinned_roots(&config, &state)?;
    assert!(!screen_host.is_empty(), "zero-trust: roots pinned");
    assert_eq!(screen_host, pinned_roots(&w.agent_config, &w.agent_state)?);
    Ok(())
}
