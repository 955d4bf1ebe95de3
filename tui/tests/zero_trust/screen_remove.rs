//! The administration screen removing or killing a user revokes their certificates and device
//! keys for zero-trust hosts, as `cm-tui admin user remove` and `admin kill --user` do: the
//! owner's app (its connection task, as the screen drives it) acts at the relay, then signs and
//! publishes a revocation list naming bob's certificate and key, and says so in the answer.

use crate::owner_app::OwnerApp;
use crate::world::ZtWorld;
use anyhow::{Result, bail, ensure};
use cm_tui::call::{AdminCall, Response};
use proto::admin::{KillTarget, UserRequest};
use proto::header::Op;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_from_the_admin_screen_revokes_their_certificates() -> Result<()> {
    let call = AdminCall::User(Op::UserManage, UserRequest::Remove { name: "bob".into() });
    revokes_bob(call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_user_from_the_admin_screen_revokes_their_certificates() -> Result<()> {
    revokes_bob(AdminCall::Kill(KillTarget::User { name: "bob".into() })).await
}

/// bob, certified, then `call` from the owner's screen: his certificate and key revoked.
async fn revokes_bob(call: AdminCall) -> Result<()> {
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
    let done = match app.ask(9, call).await? {
        Ok(Response::Done(done)) => done,
        other => bail!("the screen's call answered {other:?}"),
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
