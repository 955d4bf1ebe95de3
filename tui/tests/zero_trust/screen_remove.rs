//! The administration screen removing a user revokes their certificates and device keys for
//! zero-trust hosts, as `cm-tui admin user remove` does: the owner's app (its connection task,
//! as the screen drives it) removes bob at the relay, then signs and publishes a revocation
//! list naming his certificate, and says so in the answer.

use crate::owner_app::OwnerApp;
use crate::world::ZtWorld;
use anyhow::{Result, bail, ensure};
use cm_tui::call::{AdminCall, Response};
use proto::admin::UserRequest;
use proto::header::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_from_the_admin_screen_revokes_their_certificates() -> Result<()> {
    let w = ZtWorld::start().await?;
    w.user("bob", "operator", true)?;
    let certified = |show: &serde_json::Value| {
        show["certs"].as_array().and_then(|c| {
            c.iter()
                .find(|x| x["subject"] == "bob")
                .map(|x| x["valid"] == true)
        })
    };
    let show: serde_json::Value =
        serde_json::from_str(&w.owner.ok(&["admin", "trust", "show", "--json"])?)?;
    ensure!(certified(&show) == Some(true), "bob is certified: {show}");

    let mut app = OwnerApp::connect(&w).await?;
    // What the screen's "remove bob" sends.
    let call = AdminCall::User(Op::UserManage, UserRequest::Remove { name: "bob".into() });
    let done = match app.ask(9, call).await? {
        Ok(Response::Done(done)) => done,
        other => bail!("user remove answered {other:?}"),
    };
    ensure!(
        done.summary
            .contains("revoked 1 certificate(s) and 1 device key(s) of bob"),
        "{}",
        done.summary
    );
    let show: serde_json::Value =
        serde_json::from_str(&w.owner.ok(&["admin", "trust", "show", "--json"])?)?;
    ensure!(
        certified(&show) != Some(true),
        "bob's certificate still counts: {show}"
    );
    Ok(())
}
